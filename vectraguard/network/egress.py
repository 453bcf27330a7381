"""The egress side of one allowlisted session: listeners planted in the
sandbox before its command starts, closed when the session ends."""

from __future__ import annotations

from typing import Any

from vectraguard import errors


class Egress:
    """The allowlist proxy of one session: planted before the command starts,
    closed when the session ends, whatever way it ends."""

    def __init__(self, allowlist: Any, rootless: bool) -> None:
        self.allowlist = allowlist
        self.rootless = rootless
        self.servers: list[Any] = []
        self.log: Any = None

    def plant(self, pid: int) -> None:
        from vectraguard.network.allowlist import forwarded_hosts
        from vectraguard.network.attempts import ConnectionLog
        from vectraguard.network.forward import Forwarder
        from vectraguard.network.plant import listen_in, listen_in_rootless
        from vectraguard.network.proxy import ProxyServer
        from vectraguard.sandbox.compile import PROXY_ADDRESS, PROXY_PORT

        forwards = [(name, address, port) for name, address, ports in forwarded_hosts(self.allowlist.entries)
                    for port in ports]
        try:
            plant = listen_in_rootless if self.rootless else listen_in
            listeners = plant(pid, [(PROXY_ADDRESS, PROXY_PORT), *((a, p) for _, a, p in forwards)])
        except OSError as exc:
            raise errors.RuntimeUnavailable(
                f"vectraguard: could not install the egress proxy in the sandbox ({exc.strerror}); nothing ran",
                hint="see `vectraguard doctor`; rootless, `podman unshare` must work for you") from None
        self.log = ConnectionLog()
        self.servers.append(ProxyServer(listeners[0], self.allowlist, self.log))
        self.servers += [Forwarder(listener, name, port, self.allowlist, self.log)
                         for listener, (name, _, port) in zip(listeners[1:], forwards)]
        for server in self.servers:
            server.start()

    def close(self) -> dict[str, Any] | None:
        """The record's network keys (network/attempts.py), or None without an allowlist."""
        for server in self.servers:
            server.close()
        return self.log.snapshot() if self.log is not None else None
