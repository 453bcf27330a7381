"""Going out on a sandbox's behalf: check, resolve, vet, connect.

Shared by the HTTP proxy and the transparent forwarders, so both apply the
same rules: the allowlist must match, the name is resolved here (through
the profile's hosts file first: resolve.py), every address is vetted
(addresses.py), and the connection goes to the address that was vetted —
never to a second lookup's answer.

Through a company's upstream proxy (network.upstream_proxy) the upstream
proxy connects, to the name: we cannot choose its address. When the name
resolves here, every answer must pass the vetting (any special answer
refuses the name); when it does not (split DNS: only the company's proxy
knows the internet's names), the name goes to the upstream proxy unvetted,
as the company's proxy would have taken it from any program on this host.
IP literals are always vetted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from vectraguard.network import addresses
from vectraguard.network.allowlist import Allowlist, Entry, _split_port
from vectraguard.network.resolve import ResolveError, Resolver
from vectraguard.network.upstream import UpstreamError, UpstreamProxy

CONNECT_TIMEOUT_S = 10.0
# asyncio stops reading a stream at twice STREAM_LIMIT, and drain() waits above WRITE_BUFFER. An idle
# connection holds neither (a flood of them costs ~40 MiB in all: bench/network_flood); a busy one whose
# peer does not read holds up to ~0.4 MiB each way. Smaller buffers cost throughput (64 KiB: about half of
# 128 KiB's 0.4-0.6 of a direct download, bench/network_overhead).
STREAM_LIMIT = 128 * 1024
WRITE_BUFFER = 32 * 1024


class Denied(Exception):
    """The destination is not allowed or not reachable: `kind` is the record's
    `refusal` (summary.py turns it into advice), the message says why."""

    def __init__(self, kind: str, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.address = kind, address


@dataclass
class Dialed:
    """A connection made for the sandbox. `via_upstream`: the streams lead to
    the upstream proxy, which must be sent an absolute-form request with
    `extra` fields (plain HTTP only; for tunnels it already connected)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    address: str
    rule: Entry
    explicit_port: bool
    via_upstream: bool = False
    extra: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class Dialer:
    """One session's way out: its allowlist, resolver and upstream proxy."""

    allowlist: Allowlist
    resolver: Resolver
    upstream: UpstreamProxy | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S

    def rule_for(self, host: str, port: int) -> Entry:
        """The entry that lets the sandbox ask for host:port; Denied otherwise."""
        rule = self.allowlist.match_request(host, port)
        if rule is not None:
            return rule
        listed = any(self.allowlist.match_request(host, p) for e in self.allowlist.entries for p in e.ports)
        if listed:
            raise Denied("port", f"port {port} is not allowed for this host")
        raise Denied("not-allowlisted", "no network.allow entry matches")

    async def dial(self, host: str, port: int, *, http_request: bool = False) -> Dialed:
        """A connection to host:port for the sandbox, or Denied. With an upstream
        proxy and `http_request`, a plain connection to the upstream proxy
        (the caller sends the request in absolute form)."""
        rule = self.rule_for(host, port)
        explicit = explicit_port(rule)
        if self.upstream is not None and not self.upstream.bypasses(host, port):
            address = await self._vet_for_upstream(host, port)
            try:
                if http_request:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.upstream.host, self.upstream.port, limit=STREAM_LIMIT),
                        self.connect_timeout)
                    auth = self.upstream.authorization_header()
                    return Dialed(reader, bounded(writer), address, rule, explicit, True, (auth,) if auth else ())
                reader, writer = await self.upstream.open_tunnel(host, port, self.connect_timeout)
            except (OSError, TimeoutError, UpstreamError) as exc:
                raise Denied("unreachable", f"through the upstream proxy: {_why(exc)}") from None
            return Dialed(reader, bounded(writer), address, rule, explicit, True)
        reasons, first_kind = [], "unreachable"
        for address in await self._resolve(host, port):
            refusal = addresses.vet(address, port, self.allowlist.entries)
            if refusal is not None:
                reasons.append(refusal.message)
                first_kind = refusal.kind if first_kind == "unreachable" else first_kind
                continue
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(str(address), port, limit=STREAM_LIMIT), self.connect_timeout)
            except (OSError, TimeoutError) as exc:  # the vetted address itself: no second lookup
                reasons.append(f"{address}: {_why(exc)}")
                continue
            return Dialed(reader, bounded(writer), str(address), rule, explicit)
        raise Denied(first_kind, "; ".join(reasons) or "no usable address")

    async def _resolve(self, host: str, port: int) -> list[Any]:
        try:
            return list(await self.resolver.resolve(host, port))
        except ResolveError as exc:
            raise Denied("unresolvable", str(exc)) from None

    async def _vet_for_upstream(self, host: str, port: int) -> str:
        """The addresses as they resolve here, each vetted; "" when the name does not resolve here."""
        try:
            answers = list(await self.resolver.resolve(host, port))  # a literal is its own answer
        except ResolveError:
            return ""
        for address in answers:
            refusal = addresses.vet(address, port, self.allowlist.entries)
            if refusal is not None:
                raise Denied(refusal.kind, refusal.message, str(address))
        return ",".join(str(a) for a in answers[:4])


def bounded(writer: asyncio.StreamWriter) -> asyncio.StreamWriter:
    """The writer, its buffer capped at WRITE_BUFFER (drain() waits above it)."""
    writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
    return writer


def explicit_port(entry: Entry) -> bool:
    """Was the entry written with its port (`host:5432`), rather than meaning 80 and 443?"""
    return bool(_split_port(entry.text.strip())[1])


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
