"""What `--publish [HOST_ADDR:]HOST_PORT:PORT` (and `network.publish`) means.

A published port is a listener on the host (HOST_ADDR, 127.0.0.1 unless
given) whose connections Vectra Guard relays to 127.0.0.1:PORT on the
sandbox's own loopback (network/publish.py). The spelling is Podman's
`-p` without the protocol (TCP only): `8080:3000`, `127.0.0.2:8080:3000`,
`[::1]:8080:3000`. Which host addresses may be used is the system policy's
(network/publish_rules.py); this module only reads the text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from vectraguard.records import record

DEFAULT_HOST_ADDRESS = "127.0.0.1"
MAX_PUBLISHED = 16  # also the schema's maxItems for network.publish
_SPEC = re.compile(r"(?:(?P<address>\[[^\]]*\]|[^:\[\]]*):)?(?P<host_port>[^:]*):(?P<port>[^:]*)")


@record
class PublishedPort:
    """One published port: the host listens on host_address:host_port (TCP)
    and relays to 127.0.0.1:port inside the sandbox."""

    host_address: str  # an IP address, IPv6 without brackets
    host_port: int  # 1-65535
    port: int  # 1-65535, on the sandbox's loopback

    def text(self) -> str:
        """The spec as written back: `127.0.0.1:8080:3000`, `[::1]:8080:3000`."""
        address = f"[{self.host_address}]" if ":" in self.host_address else self.host_address
        return f"{address}:{self.host_port}:{self.port}"

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host_address).is_loopback


def _port(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a number")
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError(f"{what} {value} is outside 1-65535")
    return value


def parse(text: str) -> PublishedPort:
    """`[HOST_ADDR:]HOST_PORT:PORT` -> PublishedPort; ValueError naming what is wrong."""
    found = _SPEC.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not [HOST_ADDR:]HOST_PORT:PORT (e.g. 8080:3000 or 127.0.0.1:8080:3000)")
    address = found.group("address")
    if address is None or address == "":
        address = DEFAULT_HOST_ADDRESS
    elif address.startswith("["):
        address = address[1:-1]
        if ":" not in address:
            raise ValueError(f"{text!r}: brackets are for IPv6 addresses only")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{text!r}: host address {address!r} is not an IP address (names are not resolved)") from None
    if parsed.is_multicast:
        raise ValueError(f"{text!r}: host address {address} is a multicast address")
    try:
        return PublishedPort(str(parsed), _port(found.group("host_port"), "host port"), _port(found.group("port"), "port"))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def parse_all(texts: Iterable[str]) -> tuple[PublishedPort, ...]:
    """Every spec parsed; a host address and port listed twice is an error (ValueError)."""
    ports = tuple(parse(text) for text in texts)
    seen: set[tuple[str, int]] = set()
    for port in ports:
        key = (port.host_address, port.host_port)
        if key in seen:
            raise ValueError(f"{port.text()}: host port {port.host_port} on {port.host_address} is published twice")
        seen.add(key)
    if len(ports) > MAX_PUBLISHED:
        raise ValueError(f"{len(ports)} published ports; at most {MAX_PUBLISHED}")
    return ports


def check_list(value: list[str]) -> tuple[str, ...]:
    """The converter for the profile key network.publish (config/resolved.py):
    the specs as given (the schema made it a list of strings), once each, after checking that they parse."""
    texts = tuple(dict.fromkeys(str(item) for item in value))
    parse_all(texts)
    return texts
