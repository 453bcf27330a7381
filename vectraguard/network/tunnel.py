"""What may pass through a connection that was allowed to a host: the first
bytes decide.

A CONNECT tunnel and a transparent forwarder both reach an address that
was checked for a *name*; one shared front end at that address may serve
many names. So the client's first bytes must name the same host:

- a TLS ClientHello must carry a server name (SNI) equal to the checked
  name (tls.py reads it without decrypting anything); to an IP literal, it
  must carry none;
- a plain HTTP request must name the checked host in Host and target, and
  only that one request passes (http1.py);
- anything else (a database's protocol, SSH) passes only for an entry that
  names the port explicitly (`db.internal:5432`), never for an entry that
  means 80 and 443.

What no proxy can see without decrypting: inside a TLS session whose SNI
matched, the HTTP Host may name another site of the same front end
(domain fronting). The documentation says so; only a CDN's own policy
(most now refuse a mismatch) stops it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vectraguard.network import http1, tls
from vectraguard.network.addresses import ip_literal
from vectraguard.network.allowlist import normalize_host
from vectraguard.network.dial import Dialed
from vectraguard.network.relay import CHUNK, Activity, copy, first_failure, idle_guard

FIRST_BYTES_TIMEOUT_S = 10.0
MAX_FIRST = 64 * 1024


class Refused(Exception):
    """The first bytes name another destination: `kind` and message for the record."""

    def __init__(self, kind: str, message: str, asked: str = "") -> None:
        super().__init__(message)
        self.kind, self.asked = kind, asked


async def pass_inspected(client: tuple[asyncio.StreamReader, asyncio.StreamWriter], dialed: Dialed, host: str,
                         port: int, entry: dict[str, Any], decided: Any, idle_timeout: float,
                         prefix: bytes = b"") -> None:
    """Relay between the sandbox's client and `dialed` once the client's first
    bytes (`prefix`, bytes already read, then the stream) name host:port.
    `decided(kind, message, asked)` is called once, when the decision is made
    (kind None: allowed). Raises Refused after telling it."""
    activity = Activity()
    upstream = (dialed.reader, dialed.writer)

    async def server_to_client() -> None:
        await copy(upstream[0], client[1], entry, "bytes_in", activity)

    async def client_to_server() -> None:
        first = await _first_bytes(client[0], dialed.explicit_port, activity, prefix)
        if not first:
            decided(None, "", "")
            return
        if _is_handshake(first):
            name = _server_name(first)
            if not _same_name(name, host):
                raise _refuse(decided, "sni-mismatch", name or "",
                              f"the TLS server name (SNI) {name!r} is not {host!r}" if name
                              else f"a TLS ClientHello without a server name (SNI) for {host!r}")
            decided(None, "", "")
            upstream[1].write(first)
            entry["bytes_out"] += len(first)
            await copy(client[0], upstream[1], entry, "bytes_out", activity)
        elif http1.request_line_state(first) == "yes":
            await _one_request(first, client[0], dialed, host, port, entry, decided)
        elif dialed.explicit_port:
            decided(None, "", "")
            upstream[1].write(first)
            entry["bytes_out"] += len(first)
            await copy(client[0], upstream[1], entry, "bytes_out", activity)
        else:
            raise _refuse(decided, "not-tls", "", f"neither TLS nor HTTP to {host}:{port}, and the entry "
                                                  f"{dialed.rule.text!r} does not name port {port} explicitly")

    await first_failure(client_to_server(), server_to_client(), guard=idle_guard(activity, idle_timeout))


def _server_name(first: bytes) -> Any:
    result = tls.client_hello_server_name(first)
    if result.kind == "server-name":
        return result.server_name
    return None  # without SNI (or unreadable, which _first_bytes has ruled out)


def _is_handshake(data: bytes) -> bool:
    """Do the first bytes open a TLS handshake record (RFC 8446 §5.1: content type 22)?"""
    return data[:1] == bytes([tls.HANDSHAKE_RECORD])


def _same_name(name: Any, host: str) -> bool:
    if name is None:
        return ip_literal(host) is not None  # an IP literal: a ClientHello carries no name
    try:
        return ip_literal(host) is None and normalize_host(name) == normalize_host(host)
    except ValueError:
        return False


def _refuse(decided: Any, kind: str, asked: str, message: str) -> Refused:
    decided(kind, message, asked)
    return Refused(kind, message, asked)


async def _first_bytes(reader: asyncio.StreamReader, explicit_port: bool, activity: Activity,
                       prefix: bytes) -> bytes:
    """The client's first bytes, enough to tell TLS (a whole ClientHello), HTTP
    (a whole head) or neither. For an entry naming its port the client may
    wait for the server to speak first (SMTP, MySQL): no deadline but the idle
    one; otherwise FIRST_BYTES_TIMEOUT_S."""
    data = prefix
    if data and _complete(data):
        return data
    deadline = None if explicit_port else asyncio.get_running_loop().time() + FIRST_BYTES_TIMEOUT_S
    while True:
        timeout = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if timeout is not None and timeout <= 0:
            raise Refused("not-tls", "no TLS ClientHello or HTTP request in time")
        try:
            chunk = await asyncio.wait_for(reader.read(CHUNK), timeout)
        except TimeoutError:
            raise Refused("not-tls", "no TLS ClientHello or HTTP request in time") from None
        activity.touch()
        if not chunk:
            return data
        data += chunk
        if len(data) > MAX_FIRST:
            raise Refused("malformed", "over 64 KiB before the first message was complete")
        if _complete(data):
            return data


def _complete(data: bytes) -> bool:
    """Enough to decide: a whole ClientHello, a whole request head, or bytes that are neither."""
    if _is_handshake(data):
        result = tls.client_hello_server_name(data)
        if result.kind in ("malformed", "not-tls"):
            raise Refused("malformed", "a TLS record that is no readable ClientHello")
        return result.kind != "need-more"
    state = http1.request_line_state(data)
    if state == "yes":
        return http1.head_end(data) >= 0 or b"\n\n" in data  # a bare-LF head: parsed, and refused, now
    return state == "no"


async def _one_request(first: bytes, reader: asyncio.StreamReader, dialed: Dialed, host: str, port: int,
                       entry: dict[str, Any], decided: Any) -> None:
    """Forward one checked request; nothing the client sends after it."""
    end = http1.head_end(first)
    try:
        request = http1.parse_request(first[:end])
    except http1.BadRequest as exc:
        raise _refuse(decided, "malformed", "", str(exc)) from None
    mismatch = http1.check_destination(request, host, port)
    if mismatch:
        asked = (request.field("host") or [request.target])[0]
        raise _refuse(decided, "host-mismatch", asked, f"{mismatch}, not {host}:{port}")
    upgrade = http1.check_upgrade(request)
    if upgrade:
        raise _refuse(decided, "upgrade", "", upgrade)
    decided(None, "", "")
    head = http1.outgoing_head(request, host, port, extra=dialed.extra, origin_form=not dialed.via_upstream)
    dialed.writer.write(head)
    entry["bytes_out"] += len(head)
    try:
        entry["bytes_out"] += await http1.copy_body(request.framing, first[end:], reader, dialed.writer)
    except http1.BadRequest:
        return  # the body ended the request badly: what was sent stays the one request
    await dialed.writer.drain()
