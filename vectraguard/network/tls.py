"""The server name (SNI) of a TLS ClientHello, read without a TLS library.

`client_hello_server_name(data)` takes the bytes a client has sent so far
and says one of (HelloResult.kind):

- "need-more": incomplete; `need` is the least total length worth retrying at;
- "not-tls": the first byte is not a TLS handshake record (22);
- "server-name": a ClientHello naming `server_name` (lowercased, no trailing dot);
- "no-server-name": a ClientHello without a host_name in server_name;
- "malformed": anything else, with `reason` (also anything over 64 KiB).

It never raises. Formats: TLS records, RFC 8446 §5.1 (type 1 byte, legacy
version 2, length 2, at most 2^14 + 256 bytes of fragment; a ClientHello
may span several handshake records, which carry no other content between);
ClientHello, RFC 8446 §4.1.2 (also valid for TLS 1.0-1.2, RFC 5246 §7.4.1.2,
where extensions may be absent); server_name, RFC 6066 §3.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HELLO = 64 * 1024  # bytes: a larger hello (records and all) is refused
HANDSHAKE_RECORD = 22
CLIENT_HELLO = 1
SERVER_NAME_EXTENSION = 0
HOST_NAME = 0
_RECORD_HEADER = 5
_MAX_FRAGMENT = 2**14 + 256  # RFC 8446 §5.2 upper bound on any record, generous for §5.1
_NAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


@dataclass(frozen=True)
class HelloResult:
    """kind: see the module docstring; need: bytes (total) for "need-more", else 0."""

    kind: str
    server_name: str | None = None
    need: int = 0
    reason: str = ""


class _Malformed(Exception):
    pass


def client_hello_server_name(data: bytes) -> HelloResult:
    """What the bytes gathered so far say about a TLS ClientHello's SNI."""
    try:
        return _read(bytes(data[:MAX_HELLO + 1]))
    except _Malformed as exc:
        return HelloResult("malformed", reason=str(exc))
    except (IndexError, ValueError, TypeError) as exc:  # belt and braces: never raise on input
        return HelloResult("malformed", reason=f"unreadable ({exc.__class__.__name__})")


def _read(data: bytes) -> HelloResult:
    if data and data[0] != HANDSHAKE_RECORD:
        return HelloResult("not-tls", reason=f"first byte {data[0]} is not a handshake record ({HANDSHAKE_RECORD})")
    handshake, consumed, partial_end = _handshake_bytes(data)
    if handshake and handshake[0] != CLIENT_HELLO:
        raise _Malformed(f"the first handshake message is type {handshake[0]}, not a ClientHello")
    if len(handshake) < 4:
        return _need(max(partial_end, consumed + _RECORD_HEADER + 4 - len(handshake)))
    length = int.from_bytes(handshake[1:4], "big")
    if length + 4 > MAX_HELLO:
        raise _Malformed("the ClientHello is larger than 64 KiB")
    missing = length + 4 - len(handshake)
    if missing > 0:
        return _need(max(partial_end, consumed + _RECORD_HEADER + missing))
    return _client_hello(handshake[4:4 + length])


def _handshake_bytes(data: bytes) -> tuple[bytes, int, int]:
    """Handshake content of the complete records at the start of data, the
    bytes they take, and where an incomplete record after them ends (0 if
    none); stops at the first incomplete record. A record too
    long, of another type or version, or empty is malformed."""
    parts: list[bytes] = []
    offset = 0
    while offset + _RECORD_HEADER <= len(data):
        kind, major, length = data[offset], data[offset + 1], int.from_bytes(data[offset + 3:offset + 5], "big")
        if kind != HANDSHAKE_RECORD:
            raise _Malformed(f"a record of type {kind} inside the ClientHello")
        if major != 3:
            raise _Malformed(f"record version {major}.{data[offset + 2]} is not TLS")
        if not 0 < length <= _MAX_FRAGMENT:
            raise _Malformed(f"a handshake record of {length} bytes")
        if offset + _RECORD_HEADER + length > len(data):
            if offset + _RECORD_HEADER + length > MAX_HELLO:
                raise _Malformed("the ClientHello is larger than 64 KiB")
            return b"".join(parts), offset, offset + _RECORD_HEADER + length
        parts.append(data[offset + _RECORD_HEADER:offset + _RECORD_HEADER + length])
        offset += _RECORD_HEADER + length
        if sum(map(len, parts)) >= 4 and _hello_complete(b"".join(parts)):
            break
    return b"".join(parts), offset, 0


def _hello_complete(handshake: bytes) -> bool:
    return len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big")


def _need(total: int) -> HelloResult:
    if total > MAX_HELLO:
        return HelloResult("malformed", reason="the ClientHello is larger than 64 KiB")
    return HelloResult("need-more", need=total)


class _Cursor:
    """Reads length-prefixed fields; running past the end is malformed."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.at, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise _Malformed(f"{self.what} is cut short")
        self.at += n
        return self.data[self.at - n:self.at]

    def number(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def vector(self, width: int) -> bytes:
        return self.take(self.number(width))

    def done(self) -> bool:
        return self.at == len(self.data)


def _client_hello(body: bytes) -> HelloResult:
    hello = _Cursor(body, "the ClientHello")
    hello.take(2 + 32)  # legacy_version, random
    if len(hello.vector(1)) > 32:
        raise _Malformed("legacy_session_id is longer than 32 bytes")
    suites = hello.vector(2)
    if len(suites) < 2 or len(suites) % 2:
        raise _Malformed("cipher_suites has an odd or zero length")
    if not hello.vector(1):
        raise _Malformed("legacy_compression_methods is empty")
    if hello.done():  # TLS 1.2 and older may omit extensions
        return HelloResult("no-server-name")
    extensions = _Cursor(hello.vector(2), "the extensions")
    if not hello.done():
        raise _Malformed("bytes after the extensions")
    seen: set[int] = set()
    name: str | None = None
    while not extensions.done():
        kind, content = extensions.number(2), extensions.vector(2)
        if kind in seen:
            raise _Malformed(f"extension {kind} appears twice")
        seen.add(kind)
        if kind == SERVER_NAME_EXTENSION:
            name = _server_name(content)
    return HelloResult("server-name", server_name=name) if name else HelloResult("no-server-name")


def _server_name(content: bytes) -> str | None:
    """The host_name in a server_name extension (RFC 6066 §3), or None."""
    outer = _Cursor(content, "the server_name extension")
    names = _Cursor(outer.vector(2), "the server name list")
    if not outer.done():
        raise _Malformed("bytes after the server name list")
    if names.done():
        raise _Malformed("an empty server name list")
    found: str | None = None
    while not names.done():
        kind, raw = names.number(1), names.vector(2)
        if kind != HOST_NAME:
            continue  # unknown name types are skipped, as a server would
        if found is not None:
            raise _Malformed("two host names in server_name")
        found = _host_name(raw)
    return found


def _host_name(raw: bytes) -> str:
    if not raw or not set(raw) <= _NAME_BYTES:
        raise _Malformed("the server name is empty or not an ASCII host name")
    name = raw.decode("ascii").lower().removesuffix(".")
    if not name or len(name) > 253 or "" in name.split("."):
        raise _Malformed(f"the server name {name!r} is not a host name")
    return name
