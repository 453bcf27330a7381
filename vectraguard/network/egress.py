"""The egress side of one allowlisted session: listeners the runtime bound
inside the sandbox before its command starts (the Podman runtime through
network/plant.py, the lite one through its init), served by one event loop
(server.py), closed when the session ends."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vectraguard import errors
from vectraguard.records import record

if TYPE_CHECKING:
    import socket


@record
class EgressSettings:
    """What a profile's `network` section says about the way out, checked
    before anything runs. `resolver` and `upstream` are resolve.Resolver and
    upstream.UpstreamProxy (imported only for allowlisted runs)."""

    allowlist: Any
    max_connections: int
    resolver: Any
    upstream: Any

    @classmethod
    def from_profile(cls, profile: Any, allowlist: Any, environ: Mapping[str, str] = os.environ) -> EgressSettings:
        """PolicyError (nothing runs) for a hosts file or an upstream proxy that cannot be used."""
        from vectraguard.network.resolve import Resolver
        from vectraguard.network.upstream import UpstreamProxy

        path = profile.network_hosts_file
        try:
            resolver = Resolver.from_hosts_file(path) if path else Resolver()
        except ValueError as exc:
            raise errors.PolicyError(f"vectraguard: network.hosts_file: {exc}",
                                     hint="fix the file, or remove network.hosts_file from the profile") from None
        try:
            upstream = UpstreamProxy.from_setting(profile.network_upstream_proxy, profile.network_no_proxy, environ)
        except ValueError as exc:
            raise errors.PolicyError(f"vectraguard: network.upstream_proxy: {exc}",
                                     hint="an http://[user:password@]host:port URL, or `environment`") from None
        return cls(allowlist, profile.network_max_connections, resolver, upstream)


def _import_servers() -> None:
    import vectraguard.network.attempts
    import vectraguard.network.dial
    import vectraguard.network.forward
    import vectraguard.network.plant
    import vectraguard.network.proxy
    import vectraguard.network.server  # noqa: F401


class Egress:
    """The allowlist proxy of one session: planted before the command starts,
    closed when the session ends, whatever way it ends."""

    def __init__(self, settings: EgressSettings | None, rootless: bool) -> None:
        self.settings = settings
        self.rootless = rootless
        self.servers: Any = None
        self.log: Any = None
        self.section: dict[str, Any] | None = None
        self._loading: Any = None  # threading.Thread (imported only for an allowlist run)
        self._served = False

    def preload(self) -> None:
        """Import what plant() needs (asyncio and the proxy: ~20 ms) and start
        the servers' event loop, in a thread, while Podman creates and
        initialises the container: off the run's path."""
        if self.settings is not None and self._loading is None:
            import threading

            self._loading = threading.Thread(target=self._prepare_servers, name="egress-preload", daemon=True)
            self._loading.start()

    def _prepare_servers(self) -> None:
        _import_servers()
        from vectraguard.network.attempts import ConnectionLog
        from vectraguard.network.dial import Dialer
        from vectraguard.network.server import EgressServers

        settings = self.settings
        assert settings is not None
        log = ConnectionLog()
        servers = EgressServers(Dialer(settings.allowlist, settings.resolver, settings.upstream), log,
                                settings.max_connections)
        servers.run_loop()
        self.log, self.servers = log, servers

    def endpoints(self) -> tuple[tuple[str, int], ...]:
        """Where, on the sandbox's loopback, listeners are wanted (IPv4
        address, port): the proxy first, then one forwarder per exact
        allowlisted host and port; () without an allowlist."""
        if self.settings is None:
            return ()
        from vectraguard.sandbox.compile import PROXY_ADDRESS, PROXY_PORT

        return ((PROXY_ADDRESS, PROXY_PORT), *((address, port) for _, address, port in self._forwards()))

    def _forwards(self) -> list[tuple[str, str, int]]:
        from vectraguard.network.allowlist import forwarded_hosts

        assert self.settings is not None
        return [(name, address, port) for name, address, ports in forwarded_hosts(self.settings.allowlist.entries)
                for port in ports]

    def serve(self, listeners: list[socket.socket]) -> None:
        """Serve the listeners the runtime bound inside the sandbox (in the order of endpoints())."""
        if self._loading is not None:
            self._loading.join()
        if self.servers is None:  # not preloaded
            self._prepare_servers()
        from vectraguard.network.forward import forwarder
        from vectraguard.network.proxy import serve_proxy

        assert self.settings is not None and len(listeners) == len(self.endpoints())
        self._served = True
        self.servers.start([(listeners[0], "proxy", serve_proxy),
                            *((listener, "forwarder", forwarder(name, port))
                              for listener, (name, _, port) in zip(listeners[1:], self._forwards()))])

    def close(self) -> dict[str, Any] | None:
        """The record's network keys (network/attempts.py), or None without an allowlist."""
        if self._loading is not None:
            self._loading.join()  # a run that ended before plant(): no thread may outlive the session
        if self.servers is not None:
            self.servers.close()
            self.servers = None
        if self.log is not None and self._served:  # a run that ended before plant() has no network keys
            self.section = self.log.snapshot()
            if self.settings is not None and self.settings.upstream is not None:
                self.section["network_upstream_proxy"] = self.settings.upstream.redacted()
        return self.section
