"""Issue 15: the egress allowlist reaches checked hosts only, stays bounded
under a flood, and works behind a company network.

Every run here happens inside a private network namespace that has only
`lo` (tests/support/netns.py): even if a check under test were broken, no
packet could leave the machine. The addresses a sandbox must never reach
(cloud metadata, private ranges, IPv6 ones) are put on that `lo` with a
server listening on them, so a broken check would show up as a hit, not as
an unreachable network. Names resolve through the profile's hosts file
(network.hosts_file), never through /etc/hosts or DNS.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import TRAP_ADDRESSES, Netns, private_netns
from tests.support.tls import ServerCert, serve_tls, test_ca
from tests.support.vg import Caller, outcome
from tests.support.web import serve

P = ["run", "-p", "test-untrusted"]  # the test image: busybox wget and nc
PY = ["run", "-p", "test-python"]  # the default image: python3


@pytest.fixture
def ground() -> Iterator[Netns]:
    with private_netns(TRAP_ADDRESSES) as netns:
        yield netns


def hosts_file(directory: Path, mapping: dict[str, str]) -> list[str]:
    """The --set option naming a hosts(5) file with `mapping` (name -> address)."""
    path = directory / "egress-hosts"
    path.write_text("".join(f"{address} {name}\n" for name, address in mapping.items()))
    return ["--set", f"network.hosts_file={path}"]


def network_of(caller: Caller, cwd: Path, ground: Netns) -> list[dict[str, Any]]:
    return outcome(caller.last_session(cwd, netns=ground.name)["events"])["network"]  # type: ignore[no-any-return]


def refusals(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["host"], e.get("refusal", "")) for e in entries if e["decision"] == "denied"]


def all_refusals(caller: Caller, cwd: Path, ground: Netns) -> list[tuple[str, str]]:
    """Every refused attempt, the first ones one by one and the rest from their counts (attempts.py)."""
    finished = outcome(caller.last_session(cwd, netns=ground.name)["events"])
    rest = [(b["host"], b.get("refusal", "")) for b in finished.get("network_rest", []) if b["decision"] == "denied"
            for _ in range(b["attempts"])]
    return refusals(finished["network"]) + rest


# -- 1. The Host of a plain HTTP request, and the first bytes of a tunnel ------------------------------------

def test_a_plain_http_request_must_name_the_host_that_was_checked(
        root: Caller, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    with serve(ground.listen("127.0.0.1")) as (port, hits):
        base = f"http://allowed.test:{port}"
        crlf = "\\r\\n"
        script = "; ".join([
            # Through the proxy, another Host: refused with a 403 that says why.
            f"printf 'GET {base}/a HTTP/1.1{crlf}Host: other.test{crlf}{crlf}' | nc 127.0.0.1 3128",
            f"printf 'GET {base}/b HTTP/1.1{crlf}Host: 127.0.0.1:18080{crlf}{crlf}' | nc 127.0.0.1 3128",
            # The transparent forwarder reads the same way.
            f"printf 'GET /c HTTP/1.1{crlf}Host: other.test{crlf}{crlf}' | nc allowed.test {port}; echo fwd=$?",
            # A second request on the same connection does not pass.
            (f"printf 'GET {base}/d HTTP/1.1{crlf}Host: allowed.test:{port}{crlf}{crlf}"
             f"GET /e HTTP/1.1{crlf}Host: other.test{crlf}{crlf}' | nc 127.0.0.1 3128"),
            # Plain HTTP inside a CONNECT tunnel is read too.
            (f"printf 'CONNECT allowed.test:{port} HTTP/1.1{crlf}{crlf}GET /f HTTP/1.1{crlf}"
             f"Host: other.test{crlf}{crlf}' | nc 127.0.0.1 3128"),
            # The same request naming the right host works.
            f"wget -q -O - {base}/ok",
        ])
        result = root.run([*P, "--allow", f"allowed.test:{port}", "--allow", f"127.0.0.1/32:{port}",
                           *hosts_file(tmp_path, {"allowed.test": "127.0.0.1"}), "--", "sh", "-c", script],
                          cwd=workspace, netns=ground.name)
        out = result.stdout.decode()
        assert result.returncode == 0, result.stderr.decode()
        assert out.count("403 Forbidden") == 2 and "the Host header names 'other.test'" in out, out
        assert "hello /d" in out and "hello /ok" in out and "hello /e" not in out and "hello /f" not in out
        assert hits == ["/d", "/ok"]
    denied = refusals(network_of(root, workspace, ground))
    assert denied == [("allowed.test", "host-mismatch")] * 4, denied
    asked = [e.get("asked") for e in network_of(root, workspace, ground) if e["decision"] == "denied"]
    assert asked == ["other.test", "127.0.0.1:18080", "other.test", "other.test"]


def test_a_request_to_switch_protocols_is_refused_so_nothing_rides_on_a_101(
        root: Caller, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    """Found by a blind attack: after a 101 answer the relay carried anything, a second
    request to another host included. A WebSocket or h2c upgrade over plain HTTP is refused."""
    with serve(ground.listen("127.0.0.1")) as (port, hits):
        crlf = "\\r\\n"
        upgrade = f"Upgrade: websocket{crlf}Connection: Upgrade{crlf}{crlf}GET /smuggled HTTP/1.1{crlf}Host: evil.test"
        script = "; ".join([
            f"printf 'GET http://ws.test:{port}/a HTTP/1.1{crlf}Host: ws.test:{port}{crlf}{upgrade}{crlf}{crlf}' "
            "| nc 127.0.0.1 3128",
            f"printf 'GET /b HTTP/1.1{crlf}Host: ws.test:{port}{crlf}Upgrade: h2c{crlf}HTTP2-Settings: AAMA{crlf}"
            f"Connection: Upgrade, HTTP2-Settings{crlf}{crlf}' | nc ws.test {port}; echo fwd=$?",
        ])
        result = root.run([*P, "--allow", f"ws.test:{port}", "--allow", f"127.0.0.1/32:{port}",
                           *hosts_file(tmp_path, {"ws.test": "127.0.0.1"}), "--", "sh", "-c", script],
                          cwd=workspace, netns=ground.name)
        assert result.returncode == 0, result.stderr.decode()
        assert "403 Forbidden" in result.stdout.decode() and "switch protocols" in result.stdout.decode()
        assert hits == []
    assert refusals(network_of(root, workspace, ground)) == [("ws.test", "upgrade")] * 2


TLS_CLIENT = r"""
import socket, ssl, sys
port, target = int(sys.argv[1]), sys.argv[2]
for name in sys.argv[3:]:
    try:
        raw = socket.create_connection(("127.0.0.1", 3128), timeout=10)
        raw.sendall(f"CONNECT {target}:{port} HTTP/1.1\r\n\r\n".encode())
        head = raw.recv(4096).decode()
        context = ssl._create_unverified_context()
        if name == "-plain":
            raw.sendall(b"HELLO\r\n")
            print(name, repr(raw.recv(100)))
            continue
        tls = context.wrap_socket(raw, server_hostname=None if name == "-none" else name)
        tls.sendall(f"GET /{name} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode())
        print(name, tls.recv(4096).decode().splitlines()[-1])
    except (OSError, ssl.SSLError) as exc:
        print(name, "failed", exc.__class__.__name__)
"""


@pytest.fixture
def tls_cert() -> Iterator[ServerCert]:
    with test_ca() as ca:
        yield ca.issue(["allowed.test", "other.test", "secure.test", "localhost"])


def test_a_tunnel_must_start_tls_for_the_name_it_was_opened_for(
        root: Caller, default_image: str, workspace: Path, ground: Netns, tmp_path: Path,
        tls_cert: ServerCert) -> None:
    assert default_image
    with serve_tls(ground.listen("127.0.0.1", 443), tls_cert) as seen:
        result = root.run([*PY, "--allow", "allowed.test", "--allow", "127.0.0.1/32:443",
                           *hosts_file(tmp_path, {"allowed.test": "127.0.0.1", "other.test": "127.0.0.1"}),
                           "--", "python3", "-c", TLS_CLIENT, "443", "allowed.test",
                           "allowed.test", "other.test", "-none", "-plain"],
                          cwd=workspace, netns=ground.name)
        out = result.stdout.decode().splitlines()
        assert result.returncode == 0, result.stderr.decode()
        assert out[0] == "allowed.test hello /allowed.test", out
        assert out[1].startswith("other.test failed") and out[2].startswith("-none failed"), out
        assert out[3] in ("-plain b''", "-plain failed ConnectionResetError"), out  # not TLS to a 443/80 entry
        # The refused greetings never reached the server (it saw their connections open and close, no hello).
        assert [s.sni for s in seen if s.sni] == ["allowed.test"] and [s.path for s in seen if s.path] == [
            "/allowed.test"]
    assert refusals(network_of(root, workspace, ground)) == [
        ("allowed.test", "sni-mismatch"), ("allowed.test", "sni-mismatch"), ("allowed.test", "not-tls")]


BANNER_CLIENT = "nc db.test {port} </dev/null; echo; echo rc=$?"


def test_another_protocol_passes_only_for_an_entry_naming_its_port(
        root: Caller, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    """A server that speaks first (SSH, SMTP, MySQL) works through a forwarder
    for `db.test:PORT`; it does not for `db.test` (meaning 80 and 443)."""
    listener = ground.listen("127.0.0.1")
    port = listener.getsockname()[1]
    served: list[int] = []

    def banner() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                served.append(1)
                with conn:
                    conn.sendall(b"SSH-2.0-vgtest\r\n")

    threading.Thread(target=banner, daemon=True).start()
    try:
        result = root.run([*P, "--allow", f"db.test:{port}", "--allow", f"127.0.0.1/32:{port}",
                           *hosts_file(tmp_path, {"db.test": "127.0.0.1"}),
                           "--", "sh", "-c", BANNER_CLIENT.format(port=port)], cwd=workspace, netns=ground.name)
        assert "SSH-2.0-vgtest" in result.stdout.decode(), result.stdout.decode() + result.stderr.decode()
    finally:
        listener.close()


# -- 2. Special addresses under entries that merely contain them -------------------------------------------

SPECIAL_NAMES = {
    "meta.test": "169.254.169.254", "ecs.test": "169.254.170.2", "eks.test": "169.254.170.23",
    "eks6.test": "fd00:ec2::23", "imds6.test": "fd00:ec2::254", "mapped.test": "::ffff:169.254.169.254",
    "loop6.test": "::ffff:127.0.0.1", "nat64.test": "64:ff9b::a9fe:a9fe", "private.test": "10.1.2.3",
    "ali.test": "100.100.100.200", "compat.test": "::169.254.169.254",
}
SPECIAL_LITERALS = ["169.254.169.254", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]", "[fd00:ec2::254]",
                    "[::ffff:169.254.169.254]", "[::ffff:127.0.0.1]", "[64:ff9b::a9fe:a9fe]", "10.1.2.3",
                    "100.100.100.200", "127.0.0.1", "[::ffff:a9fe:a9fe]"]


@contextlib.contextmanager
def trap_servers(ground: Netns) -> Iterator[list[str]]:
    """A web server on port 80 of every trap address and of loopback; yields the hits of all."""
    addresses = [cidr.split("/")[0] for cidr in TRAP_ADDRESSES] + ["127.0.0.1", "::1"]
    with contextlib.ExitStack() as stack:
        hits: list[list[str]] = [stack.enter_context(serve(ground.listen(a, 80)))[1] for a in addresses]

        class AllHits(list[str]):
            def __eq__(self, other: object) -> bool:
                return [h for each in hits for h in each] == other

        yield AllHits()


def test_metadata_and_special_addresses_stay_closed_under_catch_all_entries(
        root: Caller, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    urls = [f"http://{name}/" for name in SPECIAL_NAMES] + [f"http://{literal}/" for literal in SPECIAL_LITERALS]
    script = "; ".join(f"wget -q -O - {url} 2>&1 | head -c 300; echo" for url in urls)
    allow = ["--allow", "0.0.0.0/0", "--allow", "[::/0]:80", "--allow", "8.0.0.0/5",
             *(arg for name in SPECIAL_NAMES for arg in ("--allow", name))]
    with trap_servers(ground) as hits:
        result = root.run([*P, *allow, *hosts_file(tmp_path, SPECIAL_NAMES), "--", "sh", "-c", script],
                          cwd=workspace, netns=ground.name)
        assert result.returncode == 0, result.stderr.decode()
        assert hits == [], result.stdout.decode()
    denied = all_refusals(root, workspace, ground)
    assert len(denied) == len(urls), denied
    kinds = {host: kind for host, kind in denied}
    assert kinds["ecs.test"] == kinds["169.254.170.2"] == kinds["::ffff:169.254.169.254"] == "always-refused"
    assert kinds["loop6.test"] == kinds["private.test"] == kinds["10.1.2.3"] == "special-address"


def test_a_private_address_opens_to_an_entry_inside_its_range_only(
        root: Caller, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    with serve(ground.listen("10.1.2.3", 80)) as (_, hits):
        script = "wget -q -O - http://private.test/in; wget -q -O - http://10.1.2.3/literal"
        result = root.run([*P, "--allow", "private.test", "--allow", "10.1.2.0/24:80",
                           *hosts_file(tmp_path, {"private.test": "10.1.2.3"}), "--", "sh", "-c", script],
                          cwd=workspace, netns=ground.name)
        assert result.stdout.decode() == "hello /in\nhello /literal\n", result.stderr.decode()
        assert hits == ["/in", "/literal"]


# -- 3. A flood stays bounded --------------------------------------------------------------------------------

FLOOD = r"""
import socket, sys, time
held = []
for _ in range(int(sys.argv[1])):
    try:
        held.append(socket.create_connection(("127.0.0.1", 3128), timeout=5))
    except OSError:
        pass
print("held", len(held), flush=True)
time.sleep(600)
"""


def threads_of(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_a_flood_of_connections_is_capped_and_the_timeout_still_ends_the_run(
        root: Caller, default_image: str, workspace: Path, ground: Netns) -> None:
    assert default_image
    process = root.popen([*PY, "--allow", "127.0.0.1/32:9", "--set", "network.max_connections=40",
                          "--timeout", "5s", "--", "python3", "-c", FLOOD, "600"], cwd=workspace, netns=ground.name)
    peak = 0
    while process.poll() is None:
        peak = max(peak, threads_of(process.pid))
        with contextlib.suppress(Exception):
            process.wait(0.05)
    out, err = process.communicate()
    assert process.returncode == 124, err.decode()
    assert out.decode().startswith("held "), out.decode()
    assert 0 < peak <= 16, peak  # one event loop and a bounded resolver pool, not a thread per connection
    session = root.last_session(workspace, netns=ground.name)
    finished = outcome(session["events"])
    over = sum(e.get("attempts", 1) for e in [*finished["network"], *finished.get("network_rest", [])]
               if e.get("refusal") == "over-limit")
    held = int(out.decode().split()[1])
    assert held > 40 and over == held - 40, (held, over)


# -- 4. The reason reaches the person ------------------------------------------------------------------------

def test_after_the_run_the_person_is_told_what_was_refused_and_how_to_allow_it(
        root: Caller, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    with serve(ground.listen("127.0.0.1", 80)) as (_, hits):
        result = root.run([*P, "--allow", "listed.test", *hosts_file(tmp_path, {"unlisted.test": "127.0.0.1"}),
                           "--", "sh", "-c", "wget -q -O - http://unlisted.test/ 2>/dev/null; true"],
                          cwd=workspace, netns=ground.name)
        assert hits == []
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "unlisted.test:80" in err and "--allow unlisted.test:80" in err, err


# -- 5. Companies' networks ----------------------------------------------------------------------------------

class CorporateProxy:
    """An upstream HTTP proxy that wants Basic credentials, reaching names it
    maps itself (a company proxy resolves what the host cannot)."""

    def __init__(self, ground: Netns, names: dict[str, tuple[str, int]], credentials: str) -> None:
        self.ground, self.listener, self.names = ground, ground.listen("127.0.0.1"), names
        self.expected = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            self.requests.append(lines[0])
            auth = [v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                    if k.lower() == "proxy-authorization"]
            if auth != [self.expected]:
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
            method, target, _ = lines[0].split(" ")
            if method == "CONNECT":
                name = target.rpartition(":")[0]
                forward = b""
            else:
                authority = target.split("://", 1)[1].split("/", 1)[0]
                name = authority.partition(":")[0]
                path = "/" + target.split("://", 1)[1].split("/", 1)[1]
                kept = [line for line in lines[1:] if not line.lower().startswith("proxy-authorization")]
                forward = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "", ""]).encode()
            address = self.names.get(name)
            if address is None:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with self.ground.connect(*address) as upstream:  # from inside the test's namespace
                if method == "CONNECT":
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(forward + rest)
                _pipe(conn, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def one_way(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=one_way, args=(b, a), daemon=True)
    other.start()
    one_way(a, b)
    other.join(10)


def test_an_upstream_proxy_with_credentials_is_used_and_its_credentials_stay_outside(
        root: Caller, workspace: Path, ground: Netns) -> None:
    secret = "s3cret-PW-4711"
    with serve(ground.listen("127.0.0.1")) as (port, hits):
        proxy = CorporateProxy(ground, {"far.test": ("127.0.0.1", port)}, f"corp:{secret}")
        proxy_url = f"http://corp:{secret}@127.0.0.1:{proxy.listener.getsockname()[1]}"
        script = (f"wget -q -O - http://far.test:{port}/plain; "
                  f"printf 'GET /tunnel HTTP/1.1\\r\\nHost: far.test:{port}\\r\\n\\r\\n' | nc far.test {port}; "
                  "env; cat /proc/self/environ /etc/hosts 2>/dev/null")
        result = root.run([*P, "--allow", f"far.test:{port}", "--set", "network.upstream_proxy=environment",
                           "--", "sh", "-c", script], cwd=workspace, netns=ground.name,
                          extra_env={"https_proxy": proxy_url})
        out = result.stdout.decode()
        assert result.returncode == 0, result.stderr.decode()
        assert "hello /plain" in out and "hello /tunnel" in out, out
        assert hits == ["/plain", "/tunnel"]
        assert proxy.requests == [f"GET http://far.test:{port}/plain HTTP/1.1", f"CONNECT far.test:{port} HTTP/1.1"]
        proxy.listener.close()
    assert secret not in out and secret not in result.stderr.decode()
    session = root.last_session(workspace, netns=ground.name)
    assert secret not in json.dumps(session)
    assert outcome(session["events"])["network_upstream_proxy"] == "http://corp:***@127.0.0.1:" + proxy_url.rsplit(":", 1)[1]


CA_CLIENT = r"""
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())
except Exception as exc:
    print("failed", exc)
"""


def test_trust_host_ca_lets_tools_inside_verify_a_company_re_signed_certificate(
        root: Caller, default_image: str, workspace: Path, ground: Netns, tmp_path: Path) -> None:
    assert default_image
    with test_ca("Company inspection CA") as ca:
        listener = ground.listen("127.0.0.1")
        port = listener.getsockname()[1]
        with serve_tls(listener, ca.issue(["secure.test"])):
            common = [*PY, "--allow", f"secure.test:{port}", "--allow", f"127.0.0.1/32:{port}",
                      *hosts_file(tmp_path, {"secure.test": "127.0.0.1"})]
            url = f"https://secure.test:{port}/ca"
            env = {"SSL_CERT_FILE": str(ca.cert)}
            trusted = root.run([*common, "--trust-host-ca", "--", "python3", "-c", CA_CLIENT, url],
                               cwd=workspace, netns=ground.name, extra_env=env)
            untrusted = root.run([*common, "--", "python3", "-c", CA_CLIENT, url],
                                 cwd=workspace, netns=ground.name, extra_env=env)
    assert trusted.stdout.decode().strip() == "hello /ca", trusted.stdout.decode() + trusted.stderr.decode()
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout.decode(), untrusted.stdout.decode()


# -- The shipped registry fragments, against local stand-ins for their hosts ---------------------------------

FRAGMENTS = ("allow-pypi", "allow-npm", "allow-debian", "allow-github", "allow-crates", "allow-go-proxy")
FETCH_ALL = r"""
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        print(url, urllib.request.urlopen(url, timeout=10).read().decode().strip())
    except Exception as exc:
        print(url, "failed", exc.__class__.__name__)
"""


def fragment_hosts(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """(host, ports) of each entry the shipped fragment adds."""
    from vectraguard.config.yamlio import load_yaml_text

    path = Path(__file__).resolve().parent.parent / "profiles" / "fragments" / f"{name}.yaml"
    entries = load_yaml_text(path.read_text(), str(path)).data["network"]["allow"]
    return [(e.rsplit(":", 1)[0], (int(e.rsplit(":", 1)[1]),)) if ":" in e else (e, (80, 443)) for e in entries]


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_each_registry_fragment_lets_its_client_reach_exactly_its_hosts(
        root: Caller, default_image: str, workspace: Path, ground: Netns, tmp_path: Path, fragment: str) -> None:
    assert default_image
    hosts = fragment_hosts(fragment)
    names = [host for host, _ in hosts]
    profile = root.config_home / "vectraguard" / "profiles.d" / f"test-{fragment}.yaml"
    profile.write_text(f"extends: untrusted\ninclude: [{fragment}]\n"
                       "risk:\n  decisions:\n    network-widened: allow\n")
    urls = [f"{scheme}://{host}/{host}" for host, ports in hosts for scheme, port in (("https", 443), ("http", 80))
            if port in ports] + ["https://evil.test/evil", "https://pypi.org.evil.test/x"]
    with test_ca() as ca, serve_tls(ground.listen("127.0.0.1", 443), ca.issue([*names, "evil.test"])) as seen, \
            serve(ground.listen("127.0.0.1", 80)) as (_, plain_hits):
        result = root.run(["run", "-p", f"test-{fragment}", "--allow", "127.0.0.1/32:443", "--allow",
                           "127.0.0.1/32:80", "--trust-host-ca",
                           *hosts_file(tmp_path, {n: "127.0.0.1" for n in [*names, "evil.test", "pypi.org.evil.test"]}),
                           "--", "python3", "-c", FETCH_ALL, *urls],
                          cwd=workspace, netns=ground.name, extra_env={"SSL_CERT_FILE": str(ca.cert)})
        lines = result.stdout.decode().splitlines()
        assert result.returncode == 0, result.stderr.decode()
        expected = [f"{url} hello /{url.split('/', 3)[3]}" for url in urls[:-2]]
        assert lines[:-2] == expected, lines
        assert lines[-2].startswith("https://evil.test/evil failed") and lines[-1].startswith(
            "https://pypi.org.evil.test/x failed"), lines
        assert sorted({s.sni for s in seen if s.path}) == sorted({h for h, ports in hosts if 443 in ports})
        assert sorted(plain_hits) == sorted(f"/{h}" for h, ports in hosts if 80 in ports)
