"""HTTP/1.x requests as the egress proxy must read them: strictly, one at a time.

One shared front end (a CDN, a virtual-hosting server, an API gateway)
serves many sites on one address, and picks the site by the request's Host
header (or by an absolute-form request target, which RFC 9112 §3.2.2 says
wins over Host). A request whose Host names another site than the one that
was checked would reach that other site. So every plain-HTTP request the
proxy passes must name the checked destination, and the proxy passes one
request per connection: it forwards exactly that request's head and body,
with `Connection: close`, and nothing the client sends after it. A request
to switch protocols (`Upgrade`: a WebSocket over plain HTTP, HTTP/2 as
h2c) is refused: after a `101` the bytes are no longer requests the proxy
can read, and a second request, to any host, would ride on them. Over TLS
(wss://, https://) the tunnel is checked by its server name instead.

The head is read strictly (RFC 9112 §2.2, §5, §6): CRLF line ends only, no
obsolete line folding, no whitespace before a field's colon, no control
characters, one Host, at most one Content-Length, Transfer-Encoding only
as exactly `chunked` and never with Content-Length. A server that reads a
lax head differently from us could otherwise see a second request (another
Host) inside what we took for one request's body: request smuggling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass

from vectraguard.network.allowlist import normalize_host

MAX_HEAD = 64 * 1024
MAX_CHUNK_LINE = 4096
MAX_METHOD = 1024  # a longer first word is no method any server takes
COPY_CHUNK = 64 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD_VALUE = re.compile(rb"^[\t\x20-\x7e\x80-\xff]*$")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,16})(;[\t\x20-\x7e]*)?$")


class BadRequest(Exception):
    """The head cannot be read safely; the message says why (for the 400 and the audit)."""


@dataclass(frozen=True)
class Request:
    """A parsed request head: `fields` in order as (name, value) with names
    as sent; `framing` is ("none" | "length" | "chunked", length)."""

    method: str
    target: str
    version: str
    fields: tuple[tuple[str, str], ...]
    framing: tuple[str, int]

    def field(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key.lower() == name]


def request_line_state(data: bytes) -> str:
    """Are these first bytes an HTTP request? "yes" when the first line is
    `TOKEN SP TARGET SP HTTP/…` (any method: servers pass unknown ones on),
    "no" when they cannot become one, "more" while they still might (a
    client may send `G`, wait, then the rest: deciding early would let a
    request through unchecked)."""
    data = data.lstrip(b"\r\n")  # servers skip empty lines before a request line (RFC 9112 §2.2)
    if not data:
        return "more"
    line_end = data.find(b"\n")
    line = data if line_end < 0 else data[:line_end].removesuffix(b"\r")
    method, space, rest = line.partition(b" ")
    if not _TOKEN.match(method):
        return "no"
    if not space:
        return "more" if line_end < 0 and len(method) < MAX_METHOD else "no"
    if line_end < 0:
        return "more" if _FIELD_VALUE.match(rest) else "no"
    return "yes" if rest.rsplit(b" ", 1)[-1].upper().startswith(b"HTTP/") else "no"


def head_end(data: bytes) -> int:
    """The offset just after the head's empty line, or -1 while it is incomplete."""
    end = data.find(b"\r\n\r\n")
    return -1 if end < 0 else end + 4


def parse_request(head: bytes) -> Request:
    """The head up to and including its empty line; BadRequest when it is not strict HTTP/1.x."""
    if b"\r\n\r\n" != head[-4:]:
        raise BadRequest("the request head does not end with an empty line")
    lines = head[:-4].split(b"\r\n")
    if any(b"\r" in line or b"\n" in line or b"\0" in line for line in lines):
        raise BadRequest("a bare CR, LF or NUL in the request head")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1] or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest("the request line is not METHOD TARGET HTTP/1.x")
    fields = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise BadRequest("obsolete line folding in the request head")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise BadRequest("a header field name with spaces or other characters no token has")
        value = value.strip(b" \t")
        if not _FIELD_VALUE.match(value):
            raise BadRequest(f"control characters in the {name.decode()} header")
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    request = Request(parts[0].decode(), parts[1].decode("latin-1"), parts[2].decode(), tuple(fields), ("none", 0))
    return Request(request.method, request.target, request.version, request.fields, _framing(request))


def _framing(request: Request) -> tuple[str, int]:
    encodings, lengths = request.field("transfer-encoding"), request.field("content-length")
    if encodings:
        if lengths:
            raise BadRequest("both Transfer-Encoding and Content-Length")
        if len(encodings) != 1 or encodings[0].lower() != "chunked" or request.version == "HTTP/1.0":
            raise BadRequest("a Transfer-Encoding other than a single `chunked`")
        return "chunked", 0
    if lengths:
        if len(lengths) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
            raise BadRequest("a Content-Length that is not one decimal number")
        return "length", int(lengths[0])
    return "none", 0


def authority_matches(text: str, host: str, port: int, default_port: int) -> bool:
    """Does a Host value (or an absolute URI's authority), `name[:port]` or
    `[v6][:port]`, name exactly this host and port? Names compare normalised
    (lowercase, no trailing dot, punycode), as allowlist entries do."""
    text = text.strip()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            return False
        port_text = rest[1:]
    else:
        name, _, port_text = text.partition(":")
    if port_text and (not port_text.isdigit() or len(port_text) > 5):
        return False
    asked_port = int(port_text) if port_text else default_port
    return asked_port == port and _same_host(name, host.strip("[]"))


def _same_host(asked: str, checked: str) -> bool:
    """The same IP address (as written or not), or the same normalised name."""
    try:
        return ipaddress.ip_address(asked) == ipaddress.ip_address(checked)
    except ValueError:
        pass
    try:
        return normalize_host(asked) == normalize_host(checked)
    except ValueError:
        return False


def check_upgrade(request: Request) -> str | None:
    """Why a request asking to switch protocols cannot pass, or None."""
    asked = request.field("upgrade") + request.field("http2-settings")
    if asked or any("upgrade" in value.lower() for value in request.field("connection")):
        return (f"a request to switch protocols ({(asked or ['Connection: Upgrade'])[0][:60]}) cannot be checked "
                "after the switch; use TLS (wss://, https://)")
    return None


def check_destination(request: Request, host: str, port: int) -> str | None:
    """Why the request names another destination than host:port, or None.
    `host` is what was checked (a name or an IP literal)."""
    hosts = request.field("host")
    if len(hosts) > 1:
        return "more than one Host header (" + ", ".join(h[:60] for h in hosts[:3]) + ")"
    target = request.target
    if "://" in target:
        scheme, _, rest = target.partition("://")
        authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        if "@" in authority or scheme.lower() not in ("http", "https"):
            return f"the request target names {authority[:100]!r}"
        if not authority_matches(authority, host, port, 80 if scheme.lower() == "http" else 443):
            return f"the request target names {authority[:100]!r}"
    elif not (target.startswith("/") or target == "*"):
        return f"the request target {target[:100]!r} is not a path"
    if hosts and not authority_matches(hosts[0], host, port, port):
        return f"the Host header names {hosts[0][:100]!r}"
    return None


def outgoing_head(request: Request, host: str, port: int, *, extra: tuple[str, ...] = (),
                  origin_form: bool = True) -> bytes:
    """The head we send: the checked Host (added when the client sent none),
    no hop-by-hop or proxy fields, and `Connection: close`."""
    target = request.target
    if origin_form and "://" in target:
        rest = target.partition("://")[2]
        target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    dropped = ("connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade",
               "http2-settings")
    fields = [f"{name}: {value}" for name, value in request.fields if name.lower() not in dropped]
    if not request.field("host"):
        fields.insert(0, f"Host: {host if ':' not in host else f'[{host}]'}" + ("" if port == 80 else f":{port}"))
    fields.append("Connection: close")
    return "\r\n".join([f"{request.method} {target} {request.version}", *fields, *extra, "", ""]).encode("latin-1")


async def copy_body(framing: tuple[str, int], buffered: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> int:
    """Forward exactly one body (`buffered` are bytes already read past the
    head); returns the bytes sent. BadRequest for a malformed chunked body;
    asyncio.IncompleteReadError when the client stops early."""
    kind, length = framing
    if kind == "none":
        return 0
    if kind == "length":
        first = buffered[:length]
        writer.write(first)
        sent = len(first)
        while sent < length:
            data = await reader.read(min(COPY_CHUNK, length - sent))
            if not data:
                raise asyncio.IncompleteReadError(b"", length - sent)
            writer.write(data)
            sent += len(data)
            await writer.drain()
        return sent
    stream = _Buffered(buffered, reader)
    sent = 0
    while True:
        line = await stream.line()
        match = _CHUNK_SIZE.match(line[:-2])
        if not match:
            raise BadRequest("a malformed chunk size line")
        size = int(match.group(1), 16)
        writer.write(line)
        sent += len(line)
        if size == 0:
            while True:  # trailer fields, then the empty line
                trailer = await stream.line()
                if trailer != b"\r\n" and (trailer[:1] in (b" ", b"\t") or b":" not in trailer):
                    raise BadRequest("a malformed trailer field")
                writer.write(trailer)
                sent += len(trailer)
                if trailer == b"\r\n":
                    await writer.drain()
                    return sent
        remaining = size
        while remaining:
            data = await stream.read(min(COPY_CHUNK, remaining))
            writer.write(data)
            sent += len(data)
            remaining -= len(data)
            await writer.drain()
        if await stream.exactly(2) != b"\r\n":
            raise BadRequest("a chunk not followed by CRLF")
        writer.write(b"\r\n")
        sent += 2


class _Buffered:
    """Bytes already read, then the stream."""

    def __init__(self, buffered: bytes, reader: asyncio.StreamReader) -> None:
        self.buffer, self.reader = bytearray(buffered), reader

    async def _fill(self) -> None:
        data = await self.reader.read(COPY_CHUNK)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self.buffer), None)
        self.buffer += data

    async def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_CHUNK_LINE:
                raise BadRequest("a chunk line too long")
            await self._fill()
        if end > MAX_CHUNK_LINE or b"\n" in self.buffer[:end] or b"\r" in self.buffer[:end]:
            raise BadRequest("a malformed chunk line")
        line = bytes(self.buffer[:end + 2])
        del self.buffer[:end + 2]
        return line

    async def read(self, most: int) -> bytes:
        if not self.buffer:
            await self._fill()
        data = bytes(self.buffer[:most])
        del self.buffer[:most]
        return data

    async def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            await self._fill()
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data
