"""Published ports (--publish, network.publish): a server inside a sandbox that
has no network, reached from the host with a real HTTP client.

Every server is started by the test: busybox httpd inside the sandbox, on
its own loopback, and (for the check that the relay cannot reach the host's
loopback) a listener of the test's on the host.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import Caller, outcome
from vectraguard.network.publish_spec import PublishedPort, parse

P = ["run", "-p", "test-untrusted"]
# Serves /tmp/www on the sandbox's 127.0.0.1:3000 (httpd daemonizes once it listens), then waits for stdin to close.
SERVE = ("mkdir -p /tmp/www && echo hello-from-sandbox > /tmp/www/index.html && "
         "httpd -p 127.0.0.1:3000 -h /tmp/www && echo ready && cat >/dev/null")


@dataclass
class Private(Caller):
    """A caller whose runs record into an audit store of their own: other runs on
    this host (other suites run at the same time) must not become "the last session"."""

    data: str = ""

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return super().environment({"VECTRAGUARD_DATA_DIR": self.data, **(extra or {})})


@contextlib.contextmanager
def _private(caller: Caller) -> Iterator[Private]:
    path = Path(tempfile.mkdtemp(prefix="vg-publish-data-"))
    path.chmod(0o777)  # the rootless user makes its store below
    try:
        yield Private(caller.user, caller.config_home, str(path / "data"))
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def me(root: Caller) -> Iterator[Private]:
    with _private(root) as caller:
        yield caller


@pytest.fixture
def me_rootless(rootless: Caller) -> Iterator[Private]:
    with _private(rootless) as caller:
        yield caller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connect_error(address: str, port: int) -> int:
    """0 if a TCP connection to address:port is accepted, else its errno."""
    with socket.socket() as client:
        client.settimeout(10)
        return client.connect_ex((address, port))


def global_address() -> str | None:
    """One non-loopback IPv4 address of this host (no packet is sent to find it)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True,
                         check=False).stdout.split()
    return next((word.split("/")[0] for before, word in itertools.pairwise(out) if before == "inet"), None)


@contextlib.contextmanager
def serving(caller: Caller, cwd: Path, options: list[str], profile: str = "test-untrusted",
            script: str = SERVE, before: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """A sandbox running SERVE with these options (before: vectraguard's own, e.g. -q), once its server
    listens; ended (stdin closed) on leaving."""
    argv, env = caller.argv(caller.vg([*before, "run", "-p", profile, "--yes", *options, "--", "sh", "-c", script]))
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = proc.stdout.readline()
        assert line == b"ready\n", (line, proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)
        caller.wait_for_removals()


def published_record(caller: Caller, cwd: Path) -> dict[str, Any]:
    return outcome(caller.last_session(cwd)["events"])


@pytest.mark.parametrize(("text", "port"), [
    ("8080:3000", PublishedPort("127.0.0.1", 8080, 3000)),
    ("127.0.0.2:8080:3000", PublishedPort("127.0.0.2", 8080, 3000)),
    ("[::1]:8080:3000", PublishedPort("::1", 8080, 3000)),
    (":8080:3000", PublishedPort("127.0.0.1", 8080, 3000)),
])
def test_specs_parse(text: str, port: PublishedPort) -> None:
    assert parse(text) == port


@pytest.mark.parametrize(("spec", "message"), [
    ("70000:3000", "network.publish: '70000:3000': host port 70000 is outside 1-65535"),
    ("8080:0", "network.publish: '8080:0': port 0 is outside 1-65535"),
    ("foo", "network.publish: 'foo' is not [HOST_ADDR:]HOST_PORT:PORT (e.g. 8080:3000 or 127.0.0.1:8080:3000)"),
    ("localhost:8080:3000", "'localhost:8080:3000': host address 'localhost' is not an IP address"),
    ("[127.0.0.1]:8080:3000", "brackets are for IPv6 addresses only"),
    ("0.0.0.0:8080:3000", ("0.0.0.0:8080:3000: host address 0.0.0.0 is not a loopback address; refused by the "
                           "built-in rule (loopback only); the system policy's network.publish_addresses")),
])
def test_bad_or_forbidden_specs_are_refused_before_anything_runs(me: Caller, workspace: Path, spec: str,
                                                                 message: str) -> None:
    result = me.run([*P, "--yes", "--publish", spec, "--", "true"], cwd=workspace)
    assert result.returncode == 125 and message in result.stderr.decode(), result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    assert published_record(me, workspace)["status"] == "refused"


@pytest.mark.parametrize("level", ["lite", "gvisor"])
def test_levels_without_an_enterable_namespace_refuse(me: Caller, workspace: Path, level: str) -> None:
    result = me.run([*P, "--yes", "--isolation", level, "--publish", "8080:3000", "--", "true"], cwd=workspace)
    assert result.returncode == 125
    assert f"isolation {level} cannot publish a port" in result.stderr.decode(), result.stderr.decode()


def test_a_host_port_in_use_is_refused_with_its_name(me: Caller, workspace: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = me.run([*P, "--yes", "--publish", f"{port}:3000", "--", "true"], cwd=workspace)
    err = result.stderr.decode()
    assert result.returncode == 125, err
    assert f"command line: network.publish: 127.0.0.1:{port}:3000: cannot listen on 127.0.0.1:{port} " \
           "(Address already in use); nothing ran" in err
    assert published_record(me, workspace)["status"] == "refused"  # before the sandbox existed


def test_publishing_asks_and_without_a_terminal_is_refused(me: Caller, workspace: Path) -> None:
    result = me.run([*P, "--publish", f"{free_port()}:3000", "--", "true"], cwd=workspace)
    err = result.stderr.decode()
    assert result.returncode == 125 and "needs approval, and there is no terminal to ask on" in err, err
    assert "network (network-publish): publish" in err


def test_the_system_policy_can_forbid_publishing_or_allow_an_address(me: Caller, workspace: Path,
                                                                     tmp_path: Path) -> None:
    system = tmp_path / "system"
    system.mkdir()
    (system / "policy.yaml").write_text("version: 1\nnetwork:\n  publish: false\n")
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    result = me.run([*P, "--yes", "--publish", "8080:3000", "--", "true"], cwd=workspace, extra_env=env)
    assert result.returncode == 125
    assert "publishing ports is forbidden; refused by policy rule network.publish" in result.stderr.decode()
    # An address the policy does not name: the message names this policy's file, not /etc's (issue 18).
    (system / "policy.yaml").write_text("version: 1\nnetwork:\n  publish_addresses: ['192.0.2.1']\n")
    result = me.run([*P, "--yes", "--publish", f"0.0.0.0:{free_port()}:3000", "--", "true"], cwd=workspace,
                    extra_env=env)
    assert result.returncode == 125
    assert (f"refused by policy rule network.publish_addresses ({system / 'policy.yaml'}:3); the system policy's "
            f"network.publish_addresses ({system / 'policy.yaml'}) must name it") in result.stderr.decode()
    address = global_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    (system / "policy.yaml").write_text(f"version: 1\nnetwork:\n  publish_addresses: ['{address}']\n")
    port = free_port()
    result = me.run([*P, "--yes", "--publish", f"{address}:{port}:3000", "--", "true"], cwd=workspace,
                      extra_env=env)
    assert result.returncode == 0, result.stderr.decode()


def test_a_server_inside_is_reached_from_the_host_and_audited(me: Caller, workspace: Path) -> None:
    port, idle = free_port(), free_port()
    with serving(me, workspace, ["--publish", f"{port}:3000", "--publish", f"{idle}:3001"]):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=30) as response:
            assert response.read() == b"hello-from-sandbox\n"
        # Nothing listens on 3001 inside: the host's connection is accepted, then closed cleanly.
        with socket.create_connection(("127.0.0.1", idle), timeout=30) as client:
            assert client.recv(100) == b""
        # Bound to 127.0.0.1 only: not to another loopback address, nor to the host's own.
        assert connect_error("127.0.0.2", port) == errno.ECONNREFUSED
        address = global_address()
        if address is not None:
            assert connect_error(address, port) == errno.ECONNREFUSED
    # The run is over: nothing listens any more.
    assert connect_error("127.0.0.1", port) == errno.ECONNREFUSED
    assert connect_error("127.0.0.1", idle) == errno.ECONNREFUSED
    record = published_record(me, workspace)
    assert record["status"] == "ok" and record["network_published_connections"] == 2, record
    served, refused = record["network_published"]
    assert (served["outcome"], served["host"], served["port"]) == ("relayed", f"127.0.0.1:{port}", 3000)
    assert served["peer"].startswith("127.0.0.1:") and served["ended_at"] >= served["at"]
    assert served["bytes_to_sandbox"] > 0 and served["bytes_from_sandbox"] > len(b"hello-from-sandbox\n")
    assert (refused["outcome"], refused["port"]) == ("refused", 3001)
    assert refused["reason"] == ("nothing listens on port 3001 in the sandbox "
                                  "(127.0.0.1: Connection refused; ::1: Connection refused)"), refused
    assert refused["bytes_to_sandbox"] == refused["bytes_from_sandbox"] == 0
    started = next(e for e in published_record_events(me, workspace) if e.get("status") == "started")
    assert started["network"]["publish"] == [f"{port}:3000", f"{idle}:3001"]


def test_logs_show_reads_as_nested_text_with_iso_times(me: Private, workspace: Path) -> None:
    """`logs show` printed Python reprs (`None`, `{'command': ...}`, a one-line several-KB `sandbox: {...}`) and
    published connections' times as epoch floats: now nested `key: value` lines, times in ISO 8601."""
    port = free_port()
    with serving(me, workspace, ["--publish", f"{port}:3000"]), \
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
        assert response.read() == b"hello-from-sandbox\n"
    session = me.last_session(workspace)["id"]
    shown = me.run(["logs", "show", session], cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.decode().splitlines()
    for line in lines:
        assert "{'" not in line and "': " not in line and not line.endswith(": None"), line
    assert max(len(line) for line in lines) < 1000, max(lines, key=len)[:200]
    assert "  sandbox:" in lines and "    profile:" in lines  # nested below its key
    at = lines.index("  network_published:")
    iso = r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(rf"    - at: {iso}", lines[at + 1]), lines[at:at + 4]
    assert any(re.fullmatch(rf"      ended_at: {iso}", line) for line in lines[at + 2:at + 12]), lines[at:at + 12]
    assert f"      host: 127.0.0.1:{port}" in lines[at:at + 12]


def published_record_events(caller: Caller, cwd: Path) -> list[dict[str, Any]]:
    return caller.last_session(cwd)["events"]  # type: ignore[no-any-return]


def test_the_relay_reaches_the_sandboxs_loopback_only(me: Caller, workspace: Path) -> None:
    """The relay connects from the sandbox's namespace: a server on the host's own
    127.0.0.1 at the sandbox port is never reached through the published port."""
    with socket.socket() as host_server:
        host_server.bind(("127.0.0.1", 0))
        host_server.listen(8)
        host_server.setblocking(False)
        inner = host_server.getsockname()[1]
        port = free_port()
        with serving(me, workspace, ["--publish", f"{port}:{inner}"]), \
                socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert client.recv(100) == b""
        with pytest.raises(BlockingIOError):
            host_server.accept()
    [entry] = published_record(me, workspace)["network_published"]
    assert entry["outcome"] == "refused" and entry["port"] == inner


ECHO = "nc -ll -p 3002 -e cat & " + SERVE  # an echo server on the sandbox's port 3002 as well


def echoed(port: int) -> socket.socket:
    """A connection through published `port` once the echo server inside answers (it may start after "ready")."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(b"ping\n")
        if client.recv(100) == b"ping\n":
            return client
        client.close()  # refused inside: nc is not listening yet
    raise AssertionError("the echo server inside never answered through the published port")


def test_connections_end_with_the_run_and_the_record_stays_bounded(me: Caller, workspace: Path) -> None:
    port, echo = free_port(), free_port()
    with serving(me, workspace, ["--publish", f"{port}:3000", "--publish", f"{echo}:3002"], script=ECHO) as proc:
        held = echoed(echo)
        for _ in range(25):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
                assert response.read() == b"hello-from-sandbox\n"
    with held:  # the run is over: the relayed connection it held open was closed
        held.settimeout(30)
        assert held.recv(100) == b""
    assert proc.returncode == 0
    record = published_record(me, workspace)
    assert len(record["network_published"]) == 20
    rest = {(bucket["host"], bucket["port"]): bucket for bucket in record["network_published_rest"]}
    total = record["network_published_connections"]
    assert total == sum(1 for e in record["network_published"]) + sum(b["connections"] for b in rest.values())
    served = rest[(f"127.0.0.1:{port}", 3000)]
    assert served["refused"] == 0 and served["bytes_from_sandbox"] > 0


# A dev server bound to `localhost` where localhost is ::1 first (node's listen(3000, 'localhost')): ::1 only.
SERVE6 = SERVE.replace("httpd -p 127.0.0.1:3000", "httpd -p [::1]:3000")


@pytest.mark.parametrize("who", ["me", "me_rootless"])
def test_a_server_on_the_sandboxs_ipv6_loopback_is_reached(who: str, request: pytest.FixtureRequest) -> None:
    """`localhost` inside means 127.0.0.1 and ::1, as it does for a host's `curl localhost`."""
    caller: Caller = request.getfixturevalue(who)
    cwd: Path = request.getfixturevalue("workspace" if who == "me" else "rootless_workspace")
    port = free_port()
    with serving(caller, cwd, ["--publish", f"{port}:3000"], profile="test-best-effort", script=SERVE6) as proc, \
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
        assert response.read() == b"hello-from-sandbox\n"
    assert proc.stderr is not None and b"nothing listens" not in proc.stderr.read()
    [entry] = published_record(caller, cwd)["network_published"]
    assert entry["outcome"] == "relayed" and entry["bytes_from_sandbox"] > 0, entry


def test_docker_engine_relays_where_its_sandbox_has_no_ipv6(me: Private, workspace: Path,
                                                            docker_test_image: str) -> None:
    """Under Docker Engine a --network none sandbox has no ::1 (Docker turns IPv6 off there): a server on
    127.0.0.1 is reached, and a port nothing listens on is refused naming both addresses, ::1 with its own error."""
    port, idle = free_port(), free_port()
    with serving(me, workspace, ["--engine", "docker", "--publish", f"{port}:3000", "--publish", f"{idle}:3001"]):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.read() == b"hello-from-sandbox\n"
        with socket.create_connection(("127.0.0.1", idle), timeout=30) as client:
            assert client.recv(100) == b""
    served, refused = published_record(me, workspace)["network_published"]
    assert served["outcome"] == "relayed" and served["bytes_from_sandbox"] > 0, served
    assert refused["outcome"] == "refused", refused
    assert refused["reason"].startswith("nothing listens on port 3001 in the sandbox (127.0.0.1: Connection refused; "
                                      "::1: "), refused


@pytest.mark.parametrize("quiet", [False, True])
def test_nothing_listening_inside_is_said_once_per_port(me: Caller, workspace: Path, quiet: bool) -> None:
    port, other = free_port(), free_port()
    with serving(me, workspace, ["--publish", f"{port}:3001", "--publish", f"{other}:3002"],
                 before=("-q",) if quiet else ()) as proc:
        for target in (port, port, port, other):
            with socket.create_connection(("127.0.0.1", target), timeout=30) as client:
                assert client.recv(100) == b""
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    said = [line for line in err.splitlines() if "nothing listens" in line]
    if quiet:
        assert said == [], err
        return
    assert said == [f"vectraguard: published port 127.0.0.1:{host} -> {inner}: nothing listens on port {inner} in "
                    "the sandbox (neither 127.0.0.1 nor ::1); its connections are closed (said once per port)"
                    for host, inner in ((port, 3001), (other, 3002))], err


def test_rootless_a_server_inside_is_reached_from_the_host(me_rootless: Caller, rootless_workspace: Path) -> None:
    port = free_port()
    with serving(me_rootless, rootless_workspace, ["--publish", f"{port}:3000"], profile="test-best-effort"), \
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
        assert response.read() == b"hello-from-sandbox\n"
    assert connect_error("127.0.0.1", port) == errno.ECONNREFUSED
    [entry] = published_record(me_rootless, rootless_workspace)["network_published"]
    assert entry["outcome"] == "relayed" and entry["bytes_from_sandbox"] > 0
