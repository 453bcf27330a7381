"""The egress proxy's reading of HTTP/1 requests (network/http1.py): strict,
one request, the checked host only. The proxy end to end is in
test_egress_hardening.py; here, the reader on its own, on hostile heads."""

from __future__ import annotations

import asyncio

import pytest

from vectraguard.network import http1


def parse(text: bytes) -> http1.Request:
    return http1.parse_request(text)


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\nHost: a.test\r\n\r\n",                       # bare LF
    b"GET / HTTP/1.1\r\nHost: a.test\r\nX: 1\nHost: b.test\r\n\r\n",  # a header hidden behind a bare LF
    b"GET / HTTP/1.1\r\nHost: a.test\r\n folded\r\n\r\n",           # obsolete line folding
    b"GET / HTTP/1.1\r\nHost : b.test\r\n\r\n",                     # space before the colon
    b"GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
    b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test\x00b.test\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a.test\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n",                     # two spaces
    b"GET / HTTP/1.1\r\nHost: a.test\r\nX: \x1b[2J\r\n\r\n",        # control characters in a value
])
def test_heads_a_server_could_read_differently_are_refused(head: bytes) -> None:
    with pytest.raises(http1.BadRequest):
        parse(head)


def test_a_plain_head_is_read_with_its_framing() -> None:
    request = parse(b"POST /x?y=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 12\r\n\r\n")
    assert (request.method, request.target, request.version, request.framing) == ("POST", "/x?y=1", "HTTP/1.1",
                                                                                ("length", 12))
    assert parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").framing == ("chunked", 0)


@pytest.mark.parametrize(("head", "ok"), [
    (b"GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: A.Test.:8080\r\n\r\n", True),         # case and a trailing dot
    (b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", True),               # no port: the name decides
    (b"GET / HTTP/1.0\r\n\r\n", True),                               # no Host: the checked one is added
    (b"GET http://a.test:8080/p HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: b.test:8080\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: a.test:9999\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: a.test.b.test\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: a.test\r\nhost: b.test\r\n\r\n", False),  # two Hosts
    (b"GET http://b.test/p HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", False),  # the target wins over Host
    (b"GET http://a.test:8080@b.test/ HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", False),
    (b"GET b.test:80 HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", False),
])
def test_the_request_must_name_the_checked_host(head: bytes, ok: bool) -> None:
    assert (http1.check_destination(parse(head), "a.test", 8080) is None) is ok


def test_an_ip_literal_destination_is_named_exactly() -> None:
    assert http1.check_destination(parse(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), "::1", 8080) is None
    assert http1.check_destination(parse(b"GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"), "127.0.0.1", 8080)


def test_the_outgoing_head_closes_after_one_request_and_drops_proxy_fields() -> None:
    request = parse(b"GET http://a.test/p HTTP/1.1\r\nHost: a.test\r\nProxy-Authorization: Basic eDp5\r\n"
                    b"Connection: keep-alive\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n")
    head = http1.outgoing_head(request, "a.test", 80).decode()
    assert head == "GET /p HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    added = http1.outgoing_head(parse(b"GET / HTTP/1.0\r\n\r\n"), "a.test", 8080).decode()
    assert added.startswith("GET / HTTP/1.0\r\nHost: a.test:8080\r\n")
    upgrade = http1.outgoing_head(parse(b"GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
                                        b"Connection: Upgrade\r\n\r\n"), "a.test", 80).decode()
    assert "Upgrade" not in upgrade and upgrade.endswith("Connection: close\r\n\r\n")


@pytest.mark.parametrize("head", [
    b"GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, Upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
])
def test_a_request_to_switch_protocols_is_refused(head: bytes) -> None:
    """After a 101 the bytes are no requests the proxy can read (found by a blind attack: h2c and
    WebSocket upgrades carried further requests to other hosts)."""
    assert http1.check_upgrade(parse(head))
    assert http1.check_upgrade(parse(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")) is None


@pytest.mark.parametrize(("data", "state"), [
    (b"G", "more"), (b"GET", "more"), (b"GET /", "more"), (b"GET / HTTP/1.1\r\n", "yes"),
    (b"FOO / HTTP/1.1\r\n", "yes"),           # any method: servers pass unknown ones on
    (b"get / http/1.1\r\n", "yes"),
    (b"GET / HTTP/1.1\n", "yes"),             # a bare LF still reads as HTTP (and is refused when parsed)
    (b"EHLO mail.test\r\n", "no"), (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", "no"), (b"SSH-2.0-x\r\n", "no"),
    (b"\x16\x03\x01", "no"),
    (b"\r\n", "more"), (b"\r\nGET / HTTP/1.1\r\n", "yes"),   # empty lines a server skips first
    (b"A" * 40 + b" / HTTP/1.1\r\n", "yes"),
])
def test_first_bytes_are_http_only_when_the_request_line_says_so(data: bytes, state: str) -> None:
    assert http1.request_line_state(data) == state


class _Sink:
    """Collects what copy_body writes (the framing is under test, not the socket)."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass


def copy_body(framing: tuple[str, int], buffered: bytes, more: bytes) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(more)
        reader.feed_eof()
        sink = _Sink()
        sent = await http1.copy_body(framing, buffered, reader, sink)  # type: ignore[arg-type]
        return sent, sink.data

    return asyncio.run(go())


def test_exactly_one_body_is_forwarded_and_nothing_after_it() -> None:
    second = b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n"
    assert copy_body(("length", 5), b"hel", b"lo" + second) == (5, b"hello")
    chunked = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n"
    assert copy_body(("chunked", 0), chunked[:7], chunked[7:] + second) == (len(chunked), chunked)
    assert copy_body(("none", 0), second, b"") == (0, b"")


@pytest.mark.parametrize("body", [b"zz\r\nabc\r\n", b"3\r\nabcd\r\n0\r\n\r\n", b"3\nabc\r\n0\r\n\r\n",
                                  b"0\r\n folded\r\n\r\n"])
def test_a_malformed_chunked_body_stops_the_request(body: bytes) -> None:
    with pytest.raises(http1.BadRequest):
        copy_body(("chunked", 0), b"", body)


def test_a_body_cut_short_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        copy_body(("length", 10), b"abc", b"de")
