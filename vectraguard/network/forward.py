"""Transparent forwarders for exact allowlisted hosts.

For clients that ignore proxy variables and for protocols other than HTTP
(`db.internal:5432`): each exact host name of the allowlist gets a loopback
address of its own in the sandbox's /etc/hosts, and a listener planted on
that address and each allowed port forwards raw TCP to the real host — after
the same checks as the proxy (dial.py), and with the same reading of the
first bytes (tunnel.py): TLS must name this host, HTTP must name it in
Host, and another protocol passes only for an entry naming the port. A
denied connection is closed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vectraguard.network.dial import Denied
from vectraguard.network.server import Attempt, EgressServers, serve_checked
from vectraguard.network.tunnel import pass_inspected


def forwarder(host: str, port: int) -> Callable[[EgressServers, asyncio.StreamReader, asyncio.StreamWriter],
                                                Awaitable[None]]:
    """The handler of the listener planted for host:port."""

    async def serve(servers: EgressServers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempt = Attempt(servers.log, "forwarder", host, port)

        async def run() -> None:
            try:
                dialed = await servers.dialer.dial(host, port)
            except Denied as exc:
                attempt.entry["address"] = exc.address
                raise
            try:
                await pass_inspected((reader, writer), dialed, host, port, attempt.entry, attempt.decider(dialed),
                                     servers.idle_timeout)
            finally:
                dialed.writer.close()

        await serve_checked(servers, attempt, run)

    return serve
