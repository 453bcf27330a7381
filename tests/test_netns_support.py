"""The test ground itself: a private namespace with only loopback, servers
on the addresses a sandbox must not reach, a rootful allowlisted run from
inside it, and the test CA with its HTTPS server.

Nothing here sends a packet anywhere but a loopback interface: the
unreachable addresses are only ever tried from inside the namespace.
"""

from __future__ import annotations

import errno
import functools
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import NETNS_DIR, TRAP_ADDRESSES, Netns, private_netns
from tests.support.tls import Seen, serve_tls, test_ca
from tests.support.vg import Caller, outcome
from tests.support.web import serve

TEST_NET = ("192.0.2.1", "2001:db8::1")  # documentation ranges (RFC 5737, RFC 3849): never routed


@pytest.fixture
def ground() -> Iterator[Netns]:
    with private_netns(TRAP_ADDRESSES) as netns:
        yield netns


def connect_errno(address: str, port: int = 80) -> int:
    """0 if a TCP connection to address:port opens, else its errno."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        return probe.connect_ex((address, port))


def fetch(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never the environment's proxy
    with opener.open(url, timeout=10) as response:
        return response.read().decode()  # type: ignore[no-any-return]


def url_for(address: str, port: int, path: str) -> str:
    return f"http://[{address}]:{port}{path}" if ":" in address else f"http://{address}:{port}{path}"


def test_only_loopback_exists_and_nothing_else_is_routed(ground: Netns) -> None:
    assert ground.links() == ["lo"]
    assert ground.run(["ip", "route", "show"]).stdout == ""
    routes6 = ground.run(["ip", "-6", "route", "show"]).stdout.splitlines()  # the addresses' own, on lo
    assert routes6 and all(" dev lo " in line and not line.startswith("default") for line in routes6), routes6
    assert [ground.call(functools.partial(connect_errno, address)) for address in TEST_NET] == [errno.ENETUNREACH] * 2
    # The same from a program started with the namespace's argv prefix.
    script = ("import errno, socket; s = socket.socket(); s.settimeout(5); "
              "print(errno.errorcode[s.connect_ex(('192.0.2.1', 443))])")
    assert ground.run([sys.executable, "-c", script]).stdout == "ENETUNREACH\n"


@pytest.mark.parametrize("cidr", [*TRAP_ADDRESSES, "127.0.0.1/8", "::1/128"])
def test_a_server_on_each_address_answers_from_inside_only(ground: Netns, cidr: str) -> None:
    address = cidr.split("/")[0]
    with serve(ground.listen(address)) as (port, hits):
        if address == "127.0.0.1":  # the host's loopback is another interface: nothing arrives from there
            connect_errno("127.0.0.1", port)
            assert hits == []
        assert ground.call(lambda: fetch(url_for(address, port, "/call"))) == "hello /call\n"
        script = (f"import urllib.request as u; print(u.build_opener(u.ProxyHandler({{}}))"
                  f".open({url_for(address, port, '/prefix')!r}).read().decode())")
        by_prefix = ground.run([sys.executable, "-c", script])
        assert by_prefix.stdout == "hello /prefix\n\n", by_prefix.stderr
        assert hits == ["/call", "/prefix"]


def test_the_namespace_and_what_ran_in_it_are_gone_afterwards_even_on_failure() -> None:
    with pytest.raises(RuntimeError, match="the test failed"), private_netns() as netns:
        left_running = subprocess.Popen([*netns.prefix(), "sleep", "300"])
        assert (NETNS_DIR / netns.name).exists()
        raise RuntimeError("the test failed")
    assert left_running.wait(timeout=30) == -9
    assert not (NETNS_DIR / netns.name).exists()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert netns.name not in listed.split()


def test_a_rootful_allowlisted_run_inside_reaches_a_server_inside_and_nothing_else(
        root: Caller, workspace: Path, ground: Netns) -> None:
    with serve(ground.listen("127.0.0.1")) as (port, hits), \
            serve(ground.listen("169.254.169.254", 80)) as (_, metadata_hits):
        script = (f"wget -q -O - http://127.0.0.1:{port}/inside; "
                  "wget -q -O - http://169.254.169.254/latest/meta-data/ 2>&1; echo rc=$?")
        result = root.run(["run", "-p", "test-untrusted", "--allow", f"127.0.0.1/32:{port}",
                           "--allow", "169.254.169.254/32:80", "--", "sh", "-c", script],
                          cwd=workspace, netns=ground.name)
        assert result.returncode == 0, result.stderr.decode()
        out = result.stdout.decode()
        assert out.startswith("hello /inside\n") and "403 Forbidden" in out and "rc=1" in out
        assert hits == ["/inside"] and metadata_hits == []
    network = outcome(root.last_session(workspace, netns=ground.name)["events"])["network"]
    assert [(entry["decision"], entry["host"]) for entry in network] == [("allowed", "127.0.0.1"),
                                                                          ("denied", "169.254.169.254")]


def get_over_tls(context: ssl.SSLContext, address: str, port: int, name: str, path: str) -> str:
    with socket.create_connection((address, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    return answer.decode()


def test_the_test_ca_signs_a_server_that_python_verifies_and_that_records_sni_path_and_host() -> None:
    with test_ca() as ca:
        cert = ca.issue(["vg-tls.test", "alt.vg-tls.test"])
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        with serve_tls(listener, cert) as seen:
            answer = get_over_tls(ca.client_context(), "127.0.0.1", port, "alt.vg-tls.test", "/tls")
            assert answer.startswith("HTTP/1.1 200 OK\r\n") and answer.endswith("\r\n\r\nhello /tls\n")
            assert seen == [Seen(sni="alt.vg-tls.test", path="/tls", host=f"alt.vg-tls.test:{port}")]
            with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                get_over_tls(ca.client_context(), "127.0.0.1", port, "other.test", "/wrong-name")
            with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
                get_over_tls(ssl.create_default_context(), "127.0.0.1", port, "vg-tls.test", "/system-ca")
            assert [record.path for record in seen] == ["/tls", None, None]
            assert [record.sni for record in seen] == ["alt.vg-tls.test", "other.test", "vg-tls.test"]
    assert not ca.directory.exists()


def test_the_tls_server_serves_inside_the_namespace_on_a_trap_address(ground: Netns) -> None:
    with test_ca() as ca:
        cert = ca.issue(["metadata.vg-tls.test"])
        with serve_tls(ground.listen("fd00:ec2::254", 443), cert) as seen:
            answer = ground.call(lambda: get_over_tls(ca.client_context(), "fd00:ec2::254", 443,
                                                      "metadata.vg-tls.test", "/v6"))
        assert answer.endswith("hello /v6\n")
        assert seen == [Seen(sni="metadata.vg-tls.test", path="/v6", host="metadata.vg-tls.test:443")]


def test_the_server_certificate_carries_its_names_in_subject_alt_name() -> None:
    with test_ca() as ca:
        cert = ca.issue(["a.vg-tls.test", "b.vg-tls.test"], ips=["10.1.2.3"])
        text = subprocess.run(["openssl", "x509", "-in", str(cert.cert), "-noout", "-ext", "subjectAltName",
                               "-issuer"], capture_output=True, text=True, check=True).stdout
    assert "DNS:a.vg-tls.test, DNS:b.vg-tls.test, IP Address:10.1.2.3" in text
    assert "issuer=CN = Vectra Guard test CA" in text
