"""The upstream proxy: its setting, no_proxy, and CONNECT tunnels through a
proxy this test runs on loopback (it asks for Basic credentials, as a company
proxy does) to an echo server, also on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

import pytest

from vectraguard.network.upstream import HEAD_LIMIT, UpstreamError, UpstreamProxy

GOOD = "alice:s3cret:with colon"  # a password may hold a colon; the user name may not


# --- the setting ---------------------------------------------------------------

def test_no_setting_means_direct() -> None:
    assert UpstreamProxy.from_setting(None, (), {"https_proxy": "http://p:1"}) is None


def test_a_url_with_credentials_is_percent_decoded() -> None:
    proxy = UpstreamProxy.from_setting("http://al%40ice:p%3Ass@Proxy.Example.COM:8080", ("internal",), {})
    assert proxy == UpstreamProxy("proxy.example.com", 8080, "al@ice:p:ss", ("internal",))


def test_without_a_port_the_proxy_is_on_1080_as_curl_assumes() -> None:
    assert UpstreamProxy.from_setting("http://proxy.corp", (), {}) == UpstreamProxy("proxy.corp", 1080, None, ())


def test_a_v6_proxy() -> None:
    proxy = UpstreamProxy.from_setting("http://[fd00::1]:3128/", (), {})
    assert proxy == UpstreamProxy("fd00::1", 3128, None, ())
    assert proxy.redacted() == "http://[fd00::1]:3128"


def test_environment_prefers_https_proxy_and_adds_its_no_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://secure:1", "http_proxy": "http://plain:2", "no_proxy": "a.com, .b.com 10.0.0.0/8"}
    proxy = UpstreamProxy.from_setting("environment", ("c.com",), environ)
    assert proxy == UpstreamProxy("secure", 1, None, ("c.com", "a.com", ".b.com", "10.0.0.0/8"))


def test_environment_falls_back_to_http_proxy_and_upper_case_no_proxy() -> None:
    proxy = UpstreamProxy.from_setting("environment", (), {"HTTP_PROXY": "http://plain:2", "NO_PROXY": "x.org"})
    assert proxy == UpstreamProxy("plain", 2, None, ("x.org",))


def test_environment_without_a_proxy_means_direct() -> None:
    assert UpstreamProxy.from_setting("environment", (), {"no_proxy": "*", "https_proxy": ""}) is None


@pytest.mark.parametrize(("setting", "message"), [
    ("https://proxy:443", ("network.upstream_proxy 'https://proxy:443': only http:// proxies are supported "
                          "(not https; write http://host:port)")),
    ("socks5://u:pw@proxy:1080", ("network.upstream_proxy 'socks5://u:***@proxy:1080': only http:// proxies are "
                                 "supported (not socks5; write http://host:port)")),
    ("proxy:3128", ("network.upstream_proxy 'proxy:3128': only http:// proxies are supported "
                   "(not proxy; write http://host:port)")),
    ("http://:3128", "network.upstream_proxy 'http://:3128': no proxy host"),
    ("http://proxy:99999", "network.upstream_proxy 'http://proxy:99999': the port must be a number from 1 to 65535"),
    ("http://u:hunter2@proxy:x", ("network.upstream_proxy 'http://u:***@proxy:x': the port must be a number "
                                 "from 1 to 65535")),
    ("http://proxy:0", "network.upstream_proxy 'http://proxy:0': the port must be a number from 1 to 65535"),
    ("http://bad\u00ffname\u0000:1", ("network.upstream_proxy 'http://bad\u00ffname\\x00:1': "
                                       "the proxy host is not a host name")),
    ("http://" + "a" * 64 + ".corp:1", (f"network.upstream_proxy 'http://{'a' * 64}.corp:1': the proxy host is not a "
                                       "host name")),  # a label is at most 63 characters
    ("http://proxy:3128/path", ("network.upstream_proxy 'http://proxy:3128/path': a proxy URL has no path "
                               "(write http://host:port)")),
    ("direct", ("network.upstream_proxy 'direct': only http:// proxies are supported "
               "(not a bare host; write http://host:port)")),
])
def test_bad_settings_are_refused_with_a_clear_message(setting: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        UpstreamProxy.from_setting(setting, (), {})
    assert str(caught.value) == message


def test_a_bad_environment_proxy_names_where_it_came_from() -> None:
    with pytest.raises(ValueError, match="^the environment's proxy 'socks5h://proxy:1080': only http://"):
        UpstreamProxy.from_setting("environment", (), {"https_proxy": "socks5h://proxy:1080"})


def test_redacted_never_shows_the_password() -> None:
    proxy = UpstreamProxy("proxy", 3128, GOOD, ())
    assert proxy.redacted() == "http://alice:***@proxy:3128"
    assert UpstreamProxy("proxy", 3128, None, ()).redacted() == "http://proxy:3128"


def test_authorization_header() -> None:
    token = base64.b64encode(GOOD.encode()).decode()
    assert UpstreamProxy("p", 1, GOOD, ()).authorization_header() == f"Proxy-Authorization: Basic {token}"
    assert UpstreamProxy("p", 1, None, ()).authorization_header() is None


# --- no_proxy ----------------------------------------------------------------------

@pytest.mark.parametrize(("entries", "host", "port", "bypassed"), [
    (("*",), "anything.example", 443, True),
    (("example.com",), "example.com", 443, True),
    (("example.com",), "www.Example.COM.", 80, True),
    (("example.com",), "notexample.com", 443, False),
    (("example.com",), "example.com.othertld", 443, False),
    ((".example.com",), "example.com", 443, True),
    ((".example.com",), "deep.www.example.com", 443, True),
    (("example.com:8443",), "example.com", 8443, True),
    (("example.com:8443",), "example.com", 443, False),
    (("example.com:port",), "example.com", 443, False),
    (("10.0.0.0/8",), "10.2.3.4", 443, True),
    (("10.0.0.0/8",), "11.2.3.4", 443, False),
    (("10.0.0.0/8",), "ten.example", 443, False),
    (("192.168.1.7",), "192.168.1.7", 22, True),
    (("fd00::/8",), "[fd12::1]", 443, True),
    (("fd00::/8",), "10.0.0.1", 443, False),
    (("[::1]:8080",), "::1", 8080, True),
    (("[::1]:8080",), "::1", 8081, False),
    (("example.com",), "93.184.216.34", 443, False),  # a name never matches an address
    (("",), "example.com", 443, False),
    ((".",), "example.com", 443, False),
    ((), "example.com", 443, False),
])
def test_no_proxy_follows_curl(entries: tuple[str, ...], host: str, port: int, bypassed: bool) -> None:
    assert UpstreamProxy("proxy", 3128, None, entries).bypasses(host, port) is bypassed


# --- tunnels, through a proxy run here ------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def _connect_proxy(seen: list[list[str]], *, extra: bytes = b"") -> Handler:
    """A CONNECT proxy that wants Basic credentials GOOD; it records each request head
    and sends `extra` right after its 200 head (a proxy may, in the same packet)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")[:-2]
        seen.append(head)
        want = "Proxy-Authorization: Basic " + base64.b64encode(GOOD.encode()).decode()
        if want not in head[1:]:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        target_host, _, target_port = head[0].split()[1].rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
        writer.write(b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n" + extra)
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_right_credentials_open_a_tunnel_to_the_echo_server() -> None:
    seen: list[list[str]] = []

    async def scenario() -> bytes:
        echo, echo_port = await _serve(_echo)
        proxy_server, proxy_port = await _serve(_connect_proxy(seen))
        async with echo, proxy_server:
            reader, writer = await UpstreamProxy("127.0.0.1", proxy_port, GOOD, ()).open_tunnel(
                "127.0.0.1", echo_port, timeout=5)
            writer.write(b"ping through the tunnel")
            await writer.drain()
            answer = await reader.readexactly(len(b"ping through the tunnel"))
            writer.close()
            return answer

    assert asyncio.run(scenario()) == b"ping through the tunnel"
    token = base64.b64encode(GOOD.encode()).decode()
    assert seen[0][0].startswith("CONNECT 127.0.0.1:") and seen[0][0].endswith(" HTTP/1.1")
    assert seen[0][1] == "Host: " + seen[0][0].split()[1]
    assert seen[0][2] == f"Proxy-Authorization: Basic {token}"


def test_bytes_sent_right_after_the_head_are_kept() -> None:
    async def scenario() -> bytes:
        echo, echo_port = await _serve(_echo)
        proxy_server, proxy_port = await _serve(_connect_proxy([], extra=b"\x16\x03\x01early"))
        async with echo, proxy_server:
            reader, writer = await UpstreamProxy("127.0.0.1", proxy_port, GOOD, ()).open_tunnel(
                "127.0.0.1", echo_port, timeout=5)
            writer.write(b"+echoed")
            await writer.drain()
            answer = await reader.readexactly(len(b"\x16\x03\x01early+echoed"))
            writer.close()
            return answer

    assert asyncio.run(scenario()) == b"\x16\x03\x01early+echoed"


@pytest.mark.parametrize("credentials", [None, "alice:wrong"])
def test_missing_or_wrong_credentials_get_407_and_an_error_without_them(credentials: str | None) -> None:
    async def scenario() -> str:
        proxy_server, proxy_port = await _serve(_connect_proxy([]))
        async with proxy_server:
            with pytest.raises(UpstreamError) as caught:
                await UpstreamProxy("127.0.0.1", proxy_port, credentials, ()).open_tunnel("example.com", 443, 5)
            return f"{caught.value!s}|{proxy_port}"

    message, port = asyncio.run(scenario()).split("|")
    user = "alice:***@" if credentials else ""
    assert message == (f"the upstream proxy http://{user}127.0.0.1:{port} refused CONNECT example.com:443: "
                       "HTTP/1.1 407 Proxy Authentication Required")
    assert "wrong" not in message


def test_a_v6_target_is_bracketed_in_the_request() -> None:
    seen: list[list[str]] = []

    async def scenario() -> None:
        proxy_server, proxy_port = await _serve(_connect_proxy(seen))
        async with proxy_server:
            with pytest.raises(UpstreamError):
                await UpstreamProxy("127.0.0.1", proxy_port, None, ()).open_tunnel("2001:db8::1", 443, 5)

    asyncio.run(scenario())
    assert seen[0][:2] == ["CONNECT [2001:db8::1]:443 HTTP/1.1", "Host: [2001:db8::1]:443"]


@pytest.mark.parametrize(("host", "port", "shown"), [
    ("x\r\nHost: evil.b.com", 443, "'x\\r\\nHost: evil.b.com' port 443"),  # a header smuggled in the name
    ("", 443, "'' port 443"),
    ("pypi.org", 0, "'pypi.org' port 0"),
    ("pypi.org", 65536, "'pypi.org' port 65536"),
])
def test_a_host_that_could_break_the_request_head_is_refused_before_connecting(host: str, port: int,
                                                                                 shown: str) -> None:
    seen: list[list[str]] = []

    async def scenario() -> str:
        proxy_server, proxy_port = await _serve(_connect_proxy(seen))
        async with proxy_server:
            with pytest.raises(UpstreamError) as caught:
                await UpstreamProxy("127.0.0.1", proxy_port, GOOD, ()).open_tunnel(host, port, 5)
            return str(caught.value)

    assert asyncio.run(scenario()) == f"not a destination to ask the upstream proxy for: {shown}"
    assert seen == []


def _replies(data: bytes, *, close: bool) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()
        if close:
            writer.close()
        else:
            await reader.read()  # hold the connection open until the client gives up
    return handle


def _tunnel_error(handler: Handler, timeout: float = 5) -> str:
    async def scenario() -> str:
        server, port = await _serve(handler)
        async with server:
            with pytest.raises(UpstreamError) as caught:
                await UpstreamProxy("127.0.0.1", port, GOOD, ()).open_tunnel("example.com", 443, timeout)
            return str(caught.value).replace(str(port), "PORT")
    return asyncio.run(scenario())


def test_a_proxy_that_closes_without_an_answer() -> None:
    assert _tunnel_error(_replies(b"HTTP/1.1 200 OK\r\n", close=True)) == (
        "the upstream proxy http://alice:***@127.0.0.1:PORT did not open a tunnel to example.com:443: "
        "it closed the connection before a complete answer")


def test_a_proxy_that_never_answers_times_out() -> None:
    assert _tunnel_error(_replies(b"", close=False), timeout=0.3) == (
        "the upstream proxy http://alice:***@127.0.0.1:PORT did not open a tunnel to example.com:443: "
        "no answer in time")


def test_a_response_head_over_the_limit_is_refused() -> None:
    many = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 100) for i in range(HEAD_LIMIT // 100))
    assert _tunnel_error(_replies(many + b"\r\n", close=False)) == (
        "the upstream proxy http://alice:***@127.0.0.1:PORT did not open a tunnel to example.com:443: "
        f"its response head is over {HEAD_LIMIT} bytes")


def test_a_single_endless_header_line_is_refused() -> None:
    assert _tunnel_error(_replies(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200_000, close=False)) == (
        "the upstream proxy http://alice:***@127.0.0.1:PORT did not open a tunnel to example.com:443: "
        "a response line too long")


def test_a_status_line_with_escapes_is_shown_printable() -> None:
    assert _tunnel_error(_replies(b"HTTP/1.1 502 Bad \x1b[2J Gateway\r\n\r\n", close=True)) == (
        "the upstream proxy http://alice:***@127.0.0.1:PORT refused CONNECT example.com:443: "
        "HTTP/1.1 502 Bad \\x1b[2J Gateway")


def test_garbage_instead_of_http_is_refused() -> None:
    assert _tunnel_error(_replies(b"SSH-2.0-OpenSSH\r\n\r\n", close=True)) == (
        "the upstream proxy http://alice:***@127.0.0.1:PORT refused CONNECT example.com:443: SSH-2.0-OpenSSH")


def test_a_proxy_that_is_not_listening() -> None:
    async def scenario() -> str:
        server, port = await _serve(_echo)
        server.close()
        await server.wait_closed()
        with pytest.raises(UpstreamError) as caught:
            await UpstreamProxy("127.0.0.1", port, None, ()).open_tunnel("example.com", 443, 5)
        return str(caught.value).replace(str(port), "PORT")

    assert asyncio.run(scenario()) == ("the upstream proxy http://127.0.0.1:PORT cannot be reached: "
                                       "Connection refused")
