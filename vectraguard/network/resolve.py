"""The egress proxy's own resolver: IP literals, a hosts map, then the host's DNS.

A name listed in the hosts map resolves only from it, never through DNS as
well: a profile that pins a name means that address and no other. The map
can be read from a file in hosts(5) format: one address then one or more
names a line, `#` starts a comment, IPv4 and IPv6; a name on several lines
gets the addresses of all of them, in file order. Names are normalised as the
allowlist normalises them (lowercase, no trailing dot, punycode).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping

from vectraguard.network.addresses import IPAddress, ip_literal
from vectraguard.network.allowlist import normalize_host

HOSTS_FILE_LIMIT = 1024 * 1024  # bytes


class ResolveError(Exception):
    """The name does not resolve; the message says why."""


class Resolver:
    def __init__(self, hosts: Mapping[str, tuple[IPAddress, ...]] | None = None) -> None:
        self.hosts = {normalize_host(name): tuple(addresses) for name, addresses in (hosts or {}).items()}

    @classmethod
    def from_hosts_file(cls, path: str) -> Resolver:
        """A resolver with the hosts of a hosts(5) file; ValueError "PATH:LINE: …"
        for a bad line, "PATH: …" for a file that cannot be read or is over 1 MiB."""
        try:
            with open(path, "rb") as file:
                data = file.read(HOSTS_FILE_LIMIT + 1)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the hosts file ({exc.strerror})") from None
        if len(data) > HOSTS_FILE_LIMIT:
            raise ValueError(f"{path}: the hosts file is over {HOSTS_FILE_LIMIT} bytes")
        hosts: dict[str, list[IPAddress]] = {}
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            fields = line.partition("#")[0].split()
            if not fields:
                continue
            try:
                address, names = _parse_line(fields)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
            for name in names:
                known = hosts.setdefault(name, [])
                if address not in known:
                    known.append(address)
        return cls({name: tuple(addresses) for name, addresses in hosts.items()})

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of `host`, in order, without repeats; ResolveError when it has none."""
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            name = normalize_host(host)
        except ValueError as exc:
            raise ResolveError(f"the name does not resolve ({exc})") from None
        if name in self.hosts:
            if not self.hosts[name]:
                raise ResolveError("the name does not resolve (the hosts map lists it without an address)")
            return list(self.hosts[name])
        try:
            import asyncio  # here: a resolver is made before any loop runs, and asyncio costs ~25 ms to import

            infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
            raise ResolveError(f"the name does not resolve ({why})") from None
        addresses: list[IPAddress] = []
        for *_, sockaddr in infos:
            # a scoped v6 answer (fe80::1%eth0) is cut at the scope: vetting looks at the address
            address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ResolveError("the name does not resolve (no addresses)")
        return addresses


def _parse_line(fields: list[str]) -> tuple[IPAddress, list[str]]:
    try:
        address = ipaddress.ip_address(fields[0].partition("%")[0])
    except ValueError:
        raise ValueError(f"{fields[0]!r} is not an IPv4 or IPv6 address") from None
    if len(fields) < 2:
        raise ValueError(f"{fields[0]} is followed by no host name")
    return address, [normalize_host(name) for name in fields[1:]]
