"""Egress allowlist entries, matching, and vetting of resolved addresses.

Entries: `host`, `host:port`, `*.domain` (true subdomains only, never the
domain itself), `a.b.c.d/nn[:port]`, `[v6/nn]:port`. Without a port an entry
means 80 and 443. Names are compared lowercased, without a trailing dot, in
punycode. A name never matches an IP literal and vice versa; IP literals are
normalised first (`[::ffff:10.0.0.1]` is 10.0.0.1, see addresses.normalize).

Vetting a resolved (or literal) address is addresses.vet: cloud metadata and
credential endpoints are always refused; an address on a special range
(loopback, private, link-local, ...) is usable only through a CIDR entry for
the port that contains it and lies inside that range.
"""

from __future__ import annotations

import ipaddress
import re

from vectraguard.network import addresses
from vectraguard.network.addresses import IPAddress, IPNetwork, Refusal
from vectraguard.records import record

DEFAULT_PORTS = (80, 443)
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")


@record
class Entry:
    text: str
    host: str | None  # a normalized name, or "*.suffix"
    network: IPNetwork | None
    ports: tuple[int, ...]

    def allows_port(self, port: int) -> bool:
        return port in self.ports


def normalize_host(host: str) -> str:
    """Lowercase, no trailing dot, punycode; ValueError for anything that is
    not letters, digits, `-`, `_` and dots once encoded (Python's idna codec
    passes ASCII labels through unchecked: `x\r\nHost: evil.b.com` would
    otherwise end in `.b.com` and match `*.b.com`)."""
    host = host.strip().rstrip(".").lower()
    if not host or len(host) > 253:
        raise ValueError(f"{host!r} is not a host name")
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{host!r} is not a valid host name") from None
    if not _HOST_NAME.fullmatch(encoded):
        raise ValueError(f"{host!r} is not a valid host name")
    return encoded


def parse_entry(text: str) -> Entry:
    spec, port_text = _split_port(text.strip())
    ports = (int(port_text),) if port_text else DEFAULT_PORTS
    if any(not 0 < p < 65536 for p in ports):
        raise ValueError(f"{text!r}: port out of range")
    try:
        return Entry(text, None, ipaddress.ip_network(spec, strict=False), ports)
    except ValueError:
        pass
    if spec.startswith("*."):
        suffix = normalize_host(spec[2:])
        if "." not in suffix:
            raise ValueError(f"{text!r} is too wide: a wildcard needs at least two labels after '*.'")
        return Entry(text, "*." + suffix, None, ports)
    if "*" in spec or "/" in spec:
        raise ValueError(f"{text!r} is not host[:port], *.domain[:port] or cidr[:port]")
    return Entry(text, normalize_host(spec), None, ports)


def _split_port(text: str) -> tuple[str, str]:
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        return inner, rest.removeprefix(":")
    if text.count(":") == 1:
        spec, port = text.split(":")
        if not port.isdigit():
            raise ValueError(f"{text!r}: the port must be a number")
        return spec, port
    return text, ""


@record
class Allowlist:
    entries: tuple[Entry, ...]

    @classmethod
    def parse(cls, texts: tuple[str, ...]) -> Allowlist:
        return cls(tuple(parse_entry(t) for t in texts))

    def match_request(self, host: str, port: int) -> Entry | None:
        """The entry that lets the sandbox ask for host:port, if any."""
        literal = _literal(host)
        if literal is not None:
            return next((e for e in self.entries if e.allows_port(port) and _holds(e.network, literal)), None)
        try:
            name = normalize_host(host)
        except ValueError:
            return None
        for entry in self.entries:
            if entry.host is None or not entry.allows_port(port):
                continue
            if entry.host == name or (entry.host.startswith("*.") and name.endswith(entry.host[1:])):
                return entry
        return None

    def refusal(self, address: IPAddress, port: int) -> Refusal | None:
        """Why `address` may not be used for `port` (kind and message), or None."""
        return addresses.vet(address, port, self.entries)

    def vet(self, address: IPAddress, port: int) -> str | None:
        """Why a resolved address may not be used for `port`, or None if it may."""
        refused = self.refusal(address, port)
        return refused.message if refused else None


FORWARD_BASE = 10  # exact hosts get 127.0.0.10, .11, ... in the sandbox's /etc/hosts
MAX_FORWARDED = 200


def forwarded_hosts(entries: tuple[Entry, ...]) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(name, sandbox loopback address, ports) for each exact host entry, in order."""
    ports: dict[str, list[int]] = {}
    for entry in entries:
        if entry.host is not None and not entry.host.startswith("*."):
            ports.setdefault(entry.host, [])
            ports[entry.host] += [p for p in entry.ports if p not in ports[entry.host]]
    return tuple((name, f"127.0.0.{FORWARD_BASE + i}", tuple(sorted(ps)))
                 for i, (name, ps) in enumerate(list(ports.items())[:MAX_FORWARDED]))


def _literal(host: str) -> IPAddress | None:
    """The normalised IP address a request host names, or None for a name."""
    literal = addresses.ip_literal(host)
    return None if literal is None else addresses.normalize(literal)


def _holds(network: IPNetwork | None, address: IPAddress) -> bool:
    """Whether a CIDR entry names the (normalised) address, in either spelling."""
    if network is None:
        return False
    plain = addresses.normalize_network(network)
    return plain.version == address.version and address in plain
