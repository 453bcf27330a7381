"""The HTTP proxy a sandbox's allowlisted traffic goes through.

It listens on a socket planted in the sandbox (plant.py) and serves CONNECT
(for HTTPS and anything tunnelled) and plain HTTP with absolute URIs. For
each request it checks the allowlist, resolves the name itself, refuses
unsafe addresses (dial.py), and connects to the vetted address — so what
was checked is what is reached. A plain-HTTP request must name the checked
host in its Host header, and only that request passes; a tunnel's first
bytes must name it too (tunnel.py). A refusal is an HTTP 403 (400 for a
request it cannot read) naming the reason; every attempt is recorded
(attempts.py).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from vectraguard.network import http1
from vectraguard.network.dial import Denied, Dialed
from vectraguard.network.server import Attempt, EgressServers, serve_checked
from vectraguard.network.tunnel import pass_inspected

HEAD_TIMEOUT_S = 10.0


async def serve_proxy(servers: EgressServers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head, rest = await asyncio.wait_for(_read_head(reader), HEAD_TIMEOUT_S)
        request = http1.parse_request(head)
    except (ValueError, http1.BadRequest, TimeoutError, asyncio.IncompleteReadError, OSError) as exc:
        why = str(exc) if isinstance(exc, http1.BadRequest) else "not an HTTP proxy request"
        _malformed(servers, writer, why)
        return
    if request.method == "CONNECT":
        try:
            host, port = _split_authority(request.target, 443)
        except ValueError:  # a port that is no number, or out of range
            _malformed(servers, writer, f"CONNECT {request.target[:200]!r} names no host and port")
            return
        await _connect(servers, reader, writer, host, port, rest)
        return
    try:
        url = urlsplit(request.target)
        hostname, port = (url.hostname, url.port or 80) if url.scheme.lower() == "http" else (None, 0)
    except ValueError:  # a port that is no number, or out of range
        hostname, port = None, 0
    if not hostname:
        _malformed(servers, writer, "the proxy takes absolute http:// URLs (use CONNECT for https)")
        return
    await _plain(servers, reader, writer, request, hostname, port, head + rest)


async def _connect(servers: EgressServers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   host: str, port: int, rest: bytes) -> None:
    attempt = Attempt(servers.log, "proxy", host, port)

    async def run() -> None:
        dialed = await _dial(servers, attempt, writer, host, port)
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await pass_inspected((reader, writer), dialed, host, port, attempt.entry, attempt.decider(dialed),
                                 servers.idle_timeout, prefix=rest)
        finally:
            dialed.writer.close()

    await serve_checked(servers, attempt, run)


async def _plain(servers: EgressServers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 request: http1.Request, host: str, port: int, received: bytes) -> None:
    attempt = Attempt(servers.log, "proxy", host, port)
    mismatch = http1.check_destination(request, host, port)
    if mismatch:
        asked = (request.field("host") or [request.target])[0]
        attempt.decide("host-mismatch", f"{mismatch}, not {host}:{port}", asked)
        attempt.end()
        _reply(writer, 403, f"vectraguard: refused: {mismatch}, not {host}:{port}; a request through this proxy "
                            f"must name the host it goes to (rule: Host matches the checked destination)\n")
        return
    upgrade = http1.check_upgrade(request)
    if upgrade:
        attempt.decide("upgrade", upgrade)
        attempt.end()
        _reply(writer, 403, f"vectraguard: refused: {upgrade}\n")
        return

    async def run() -> None:
        dialed = await _dial(servers, attempt, writer, host, port, http_request=True)
        try:
            await pass_inspected((reader, writer), dialed, host, port, attempt.entry, attempt.decider(dialed),
                                 servers.idle_timeout, prefix=received)
        finally:
            dialed.writer.close()

    await serve_checked(servers, attempt, run)


async def _dial(servers: EgressServers, attempt: Attempt, writer: asyncio.StreamWriter, host: str, port: int,
                *, http_request: bool = False) -> Dialed:
    try:
        return await servers.dialer.dial(host, port, http_request=http_request)
    except Denied as exc:
        attempt.entry["address"] = exc.address
        attempt.decide(exc.kind, str(exc))
        _reply(writer, 403, f"vectraguard: {host}:{port} is not allowed: {exc}\n{_advice(exc.kind, host, port)}")
        raise


def _advice(kind: str, host: str, port: int) -> str:
    """One line for the client's 403: what would allow it (summary.py says more after the run)."""
    if kind in ("not-allowlisted", "port"):
        return f"To allow it: --allow {host}:{port}, or add it to network.allow in a profile.\n"
    return "The summary after the run says what would allow it.\n"


def _malformed(servers: EgressServers, writer: asyncio.StreamWriter, why: str) -> None:
    """A request the proxy cannot read is refused, and counted like any attempt (attempts.py
    bounds them): a sandbox probing the proxy with garbage leaves a trace too."""
    attempt = Attempt(servers.log, "proxy", "(malformed request)", 0)
    attempt.decide("malformed", why)
    _reply(writer, 400, f"vectraguard: {why}")


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    data = b""
    while (end := http1.head_end(data)) < 0:
        chunk = await reader.read(4096)
        if not chunk or len(data) > http1.MAX_HEAD:
            raise ValueError("incomplete request head")
        data += chunk
    return data[:end], data[end:]


def _split_authority(target: str, default: int) -> tuple[str, int]:
    """(host, port) of HOST:PORT or [V6]:PORT; ValueError when the port is no TCP port."""
    if target.startswith("["):
        host, _, port = target[1:].partition("]")
        port = port.removeprefix(":") or str(default)
    else:
        host, _, port = target.rpartition(":")
        if not host:
            return target, default
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"no TCP port: {port[:20]!r}")
    return host, int(port)


def _reply(writer: asyncio.StreamWriter, status: int, body: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    data = body.encode()
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + data)

