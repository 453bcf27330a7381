"""`vectraguard kube gateway`: the egress gateway of a Kubernetes sandbox pod.

The gateway runs as the real CLI, in a private network namespace with only
`lo` (tests/support/netns.py), where the test's web servers and its
clients are too: nothing can leave the machine even if a check were
broken. Loopback destinations are opened as the allowlist tests open them,
by a CIDR entry naming 127.0.0.1/32 and the port; everything else stays
refused by the allowlist's own rules.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import polling
from tests.support.netns import TRAP_ADDRESSES, Netns, private_netns
from tests.support.web import serve
from vectraguard.kube.gateway_log import LINES_PER_WINDOW, WINDOW_S, GatewayLog

REPO = Path(__file__).resolve().parent.parent
SESSION = "019a2b3c4d5e6f70819a"
DIGEST = "ab" * 32
DEADLINE_S = 30.0

def vg_argv(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "vectraguard", *args]


def environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))}


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    return polling.wait_for(condition, what, DEADLINE_S)


class Gateway:
    """The gateway program, running in `netns` on 127.0.0.1 (a free port), its stdout read into `lines`."""

    def __init__(self, netns: Netns, allow: list[str], *extra: str, python: list[str] | None = None) -> None:
        argv = [*netns.prefix(), *(python or [sys.executable, "-P"]), "-m", "vectraguard", "kube", "gateway",
                "--listen", "127.0.0.1:0", "--session", SESSION, "--profile-digest", DIGEST,
                *(word for entry in allow for word in ("--allow", entry)), *extra]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment())
        self.netns = netns
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        listening = wait_for(lambda: self.events("listening") or self.process.poll() is not None, "the gateway")
        assert listening is not True, self.process.stderr.read().decode() if self.process.stderr else ""
        self.port = int(listening[0]["listen"].rpartition(":")[2])

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(json.loads(raw))

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in list(self.lines) if line["event"] == event]

    def exchange(self, request: bytes) -> bytes:
        """Send `request` to the gateway from inside the namespace; all it answers until it closes."""
        client = self.netns.connect("127.0.0.1", self.port, timeout=DEADLINE_S)
        with client:
            client.sendall(request)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        return answer

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Its exit status and stderr, after `sig`."""
        self.process.send_signal(sig)
        status = self.process.wait(timeout=DEADLINE_S)
        self._reader.join(DEADLINE_S)
        assert self.process.stderr is not None
        return status, self.process.stderr.read().decode()


@pytest.fixture
def ground() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("a private network namespace needs root")
    if shutil.which("nsenter") is None:
        pytest.skip("nsenter (util-linux) is missing")
    with private_netns(TRAP_ADDRESSES) as netns:
        yield netns


@contextlib.contextmanager
def running(netns: Netns, allow: list[str], *extra: str) -> Iterator[Gateway]:
    gateway = Gateway(netns, allow, *extra)
    try:
        yield gateway
    finally:
        if gateway.process.poll() is None:
            gateway.process.kill()
            gateway.process.wait()


def test_an_allowed_plain_get_passes_and_its_decision_and_bytes_are_logged(ground: Netns) -> None:
    with serve(ground.listen("127.0.0.1")) as (port, hits), running(ground, [f"127.0.0.1/32:{port}"]) as gateway:
        answer = gateway.exchange(f"GET http://127.0.0.1:{port}/allowed HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                  "Connection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"hello /allowed\n") and hits == ["/allowed"]
        [closed] = wait_for(lambda: gateway.events("closed"), "the closed line")
        status, stderr = gateway.stop()
    assert (status, stderr) == (0, "")
    [decision] = gateway.events("connection")
    assert {k: decision[k] for k in ("session", "profile_digest", "via", "host", "port", "address", "decision")} == {
        "session": SESSION, "profile_digest": DIGEST, "via": "proxy", "host": "127.0.0.1", "port": port,
        "address": "127.0.0.1", "decision": "allowed"}
    assert decision["reason"] == f"rule 127.0.0.1/32:{port}" and isinstance(decision["at"], float)
    assert closed["session"] == SESSION and closed["at"] == decision["at"] and closed["closed_at"] >= decision["at"]
    assert closed["bytes_out"] > 0 and closed["bytes_in"] >= len(b"hello /allowed\n")
    assert gateway.lines[-1] == {"event": "stopped", "session": SESSION, "profile_digest": DIGEST,
                                 "network_attempts": 1}


def test_connect_tunnels_to_an_allowed_destination_and_its_bytes_arrive(ground: Netns) -> None:
    with serve(ground.listen("127.0.0.1")) as (port, hits), running(ground, [f"127.0.0.1/32:{port}"]) as gateway:
        answer = gateway.exchange(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                                  "GET /tunnel HTTP/1.0\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\n")
        assert answer.endswith(b"hello /tunnel\n") and hits == ["/tunnel"]
        wait_for(lambda: gateway.events("closed"), "the closed line")
        assert gateway.stop()[0] == 0
    [decision] = gateway.events("connection")
    assert (decision["decision"], decision["host"], decision["port"], decision["session"]) == (
        "allowed", "127.0.0.1", port, SESSION)


def test_destinations_not_on_the_list_are_refused_with_403_logged_and_never_reached(ground: Netns) -> None:
    with serve(ground.listen("127.0.0.1")) as (port, hits), serve(ground.listen("127.0.0.1")) as (other, other_hits), \
            serve(ground.listen("169.254.169.254", 0)) as (metadata, metadata_hits), \
            running(ground, [f"127.0.0.1/32:{port}", f"169.254.169.254/32:{metadata}"]) as gateway:
        plain = gateway.exchange(f"GET http://127.0.0.1:{other}/x HTTP/1.1\r\nHost: 127.0.0.1:{other}\r\n\r\n".encode())
        tunnel = gateway.exchange(f"CONNECT unlisted.invalid:{port} HTTP/1.1\r\n\r\n".encode())
        cloud = gateway.exchange(f"CONNECT 169.254.169.254:{metadata} HTTP/1.1\r\n\r\n".encode())
        assert gateway.stop()[0] == 0
    for answer in (plain, tunnel, cloud):
        assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n"), answer
    assert b"port %d is not allowed for this host" % other in plain
    assert b"no network.allow entry matches" in tunnel
    assert hits == other_hits == metadata_hits == []
    decisions = gateway.events("connection")
    assert [(d["decision"], d["host"], d["port"], d.get("refusal"), d["session"]) for d in decisions] == [
        ("denied", "127.0.0.1", other, "port", SESSION),
        ("denied", "unlisted.invalid", port, "not-allowlisted", SESSION),
        ("denied", "169.254.169.254", metadata, "always-refused", SESSION)]
    assert gateway.events("closed") == []


def test_a_flood_of_refused_connections_is_counted_not_written_line_by_line(ground: Netns) -> None:
    attempts = LINES_PER_WINDOW + 30
    with running(ground, ["127.0.0.1/32:9"]) as gateway:
        for number in range(attempts):
            assert gateway.exchange(f"CONNECT flood-{number}.invalid:443 HTTP/1.1\r\n\r\n".encode()).startswith(
                b"HTTP/1.1 403")
        assert gateway.stop()[0] == 0
    written, rests = gateway.events("connection"), gateway.events("rest")
    assert rests and len(written) <= LINES_PER_WINDOW * len(rests)  # one window, unless the test outlived one
    assert len(written) + sum(rest["network_attempts"] for rest in rests) == attempts
    assert gateway.lines[-1]["network_attempts"] == attempts
    last = rests[-1]
    assert last["session"] == SESSION and last["network"][0]["refusal"] == "not-allowlisted"
    assert "network_rest" in last or last["network_attempts"] == len(last["network"])


def test_sigterm_and_sigint_end_it_with_status_0(ground: Netns) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        with running(ground, ["pypi.org"]) as gateway:
            assert gateway.stop(sig) == (0, "")
        assert [line["event"] for line in gateway.lines] == ["listening", "stopped"]
        assert gateway.lines[0]["allow"] == ["pypi.org"] and gateway.lines[0]["max_connections"] == 256


@pytest.mark.parametrize(("options", "message"), [
    (["--allow", "x y"], ("vectraguard kube gateway: --allow 'x y': 'x y' is not a valid host name; "
                         "an entry is host[:port], *.domain[:port] or cidr[:port]")),
    (["--allow", "*.com"], ("vectraguard kube gateway: --allow '*.com': '*.com' is too wide: a wildcard needs at "
                           "least two labels after '*.'; an entry is host[:port], *.domain[:port] or cidr[:port]")),
    (["--allow", "a.org", "--allow", "a.org:99999"],
     ("vectraguard kube gateway: --allow 'a.org:99999': 'a.org:99999': port out of range; "
     "an entry is host[:port], *.domain[:port] or cidr[:port]")),
    (["--allow", "a.org", "--listen", "localhost:3128"],
     ("vectraguard kube gateway: --listen 'localhost:3128': expected ADDR:PORT with an IP address, "
     "e.g. 0.0.0.0:3128 or [::]:3128")),
    (["--allow", "a.org", "--listen", "127.0.0.1:\u0663"],  # an Arabic-Indic digit is no port
     ("vectraguard kube gateway: --listen '127.0.0.1:\u0663': expected ADDR:PORT with an IP address, "
     "e.g. 0.0.0.0:3128 or [::]:3128")),
    (["--allow", "a.org", "--max-connections", "0"], "vectraguard kube gateway: --max-connections 0: expected 1 to 65536"),
    (["--allow", "a.org", "--profile-digest", "abc"],
     ("vectraguard kube gateway: --profile-digest 'abc': expected the 64 lowercase hex digits of the resolved "
     "profile's SHA-256")),
    ([], ("vectraguard kube gateway: the following arguments are required: --allow; "
         "see `vectraguard kube gateway --help`")),
])
def test_bad_arguments_are_refused_with_one_line_and_125(options: list[str], message: str) -> None:
    done = subprocess.run(vg_argv("kube", "gateway", "--session", SESSION, *options), capture_output=True,
                          env=environment(), timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr.decode()) == (125, b"", message + "\n")


def test_it_imports_no_profile_policy_or_audit_machinery(ground: Netns) -> None:
    """-X importtime lists every module the serving gateway imported, on stderr."""
    with serve(ground.listen("127.0.0.1")) as (port, _):
        gateway = Gateway(ground, [f"127.0.0.1/32:{port}"], python=[sys.executable, "-P", "-X", "importtime"])
        gateway.exchange(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n".encode())
        status, stderr = gateway.stop()
    assert status == 0
    imported = {line.rpartition("|")[2].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    assert "vectraguard.network.proxy" in imported and "vectraguard.kube.gateway" in imported
    forbidden = ("vectraguard.config", "vectraguard.sandbox", "vectraguard.runtime", "vectraguard.approvals",
                 "vectraguard.risk", "vectraguard.sessions", "vectraguard.audit.store", "vectraguard.audit.record",
                 "vectraguard.workspace", "vectraguard.images", "vectraguard.isolation", "vectraguard.pool",
                 "vectraguard.lite", "podman", "loguru")
    entry_point = {"vectraguard.runtime", "vectraguard.runtime.signal_sets"}  # the fork-server client's, every command's
    assert sorted(name for name in imported - entry_point if name.startswith(forbidden)) == []


# --- the log's windows, on a clock the test moves ----------------------------------


def entry(host: str, decision: str = "denied") -> dict[str, Any]:
    return {"at": 0.0, "via": "proxy", "host": host, "port": 443, "address": None, "decision": decision,
            "reason": "why", "bytes_out": 0, "bytes_in": 0}


def test_a_window_writes_its_lines_then_counts_and_a_connection_open_at_its_end_gets_a_closed_line() -> None:
    now = [1000.0]
    out = io.StringIO()
    log = GatewayLog(out, SESSION, None, clock=lambda: now[0])
    for number in range(LINES_PER_WINDOW):
        log.add(entry(f"h{number}.invalid"))
    long_lived = log.add(entry("kept.example", "allowed"))  # over the window's lines: counted
    now[0] += WINDOW_S
    log.roll()
    long_lived.update(bytes_out=10, bytes_in=20)
    log.closed(long_lived)  # after its window: a line of its own, with its bytes
    log.add(entry("next.invalid"))  # a new window: in full again
    log.stop()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == (["connection"] * LINES_PER_WINDOW
                                                 + ["rest", "closed", "connection", "stopped"])
    rest, closed = lines[LINES_PER_WINDOW], lines[LINES_PER_WINDOW + 1]
    assert (rest["from"], rest["to"], rest["network_attempts"]) == (1000.0, 1000.0 + WINDOW_S, 1)
    assert rest["network"][0]["host"] == "kept.example"
    assert (closed["host"], closed["bytes_out"], closed["bytes_in"]) == ("kept.example", 10, 20)
    assert lines[-1]["network_attempts"] == LINES_PER_WINDOW + 2
