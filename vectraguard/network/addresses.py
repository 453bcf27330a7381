"""Special addresses: the one table every egress check uses.

`normalize(address)` unwraps IPv6 spellings of an IPv4 address to that IPv4
address, so `::ffff:127.0.0.1` is judged as 127.0.0.1. Decisions:

- IPv4-mapped `::ffff:0:0/96` (RFC 4291 §2.5.5.2): the low 32 bits.
- IPv4-translated `::ffff:0:0:0/96` (SIIT, RFC 2765 §2.1): the low 32 bits
  (a stateless translator delivers it to that IPv4 address).
- IPv4-compatible `::/96` (RFC 4291 §2.5.5.1, deprecated) except `::` and
  `::1`: the low 32 bits (`::127.0.0.1` is 127.0.0.1; `::2` is 0.0.0.2).
- NAT64 `64:ff9b::/96` (RFC 6052 §2.1): the low 32 bits.
- NAT64 local-use `64:ff9b:1::/48` (RFC 8215): read as the /96 layout of
  RFC 6052 (low 32 bits), the only one in common use; since other prefix
  lengths embed the address elsewhere, the original /48 address is also
  judged as special (not globally reachable) — `vet` checks both.
- 6to4 `2002::/16` (RFC 3056 §2): bits 16..47, the IPv4 address of the site.
- Teredo `2001::/32` (RFC 4380 §4): the client's address (the last 32 bits,
  inverted), which is where traffic to the address ends up; the server's
  address (bits 32..63) only relays qualification, not data.

`ALWAYS_REFUSED`: cloud metadata and credential endpoints no entry can open.
`SPECIAL_RANGES`: the IANA special-purpose registries (RFC 6890 and
successors) — ranges that are not globally reachable or not for use. An
address inside one may be used only when a CIDR entry for the port contains it
and lies entirely inside the (narrowest) special range that holds it, so
`10.1.2.0/24` or `127.0.0.1/32` open one while `0.0.0.0/0`, `::/0`,
`8.0.0.0/5` or `10.0.0.0/7` never do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Protocol

from vectraguard.records import record

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class CidrEntry(Protocol):
    """What `vet` needs of an allowlist entry (allowlist.Entry fits)."""

    @property
    def network(self) -> IPNetwork | None: ...

    def allows_port(self, port: int) -> bool: ...


@record
class Refusal:
    """kind: "always-refused" | "special-address"; message: one short line."""

    kind: str
    message: str


_METADATA = "cloud instance metadata service (AWS, Azure, GCP, Oracle, OpenStack, DigitalOcean, Hetzner)"

# Sources (read 2026-11):
# AWS IMDS 169.254.169.254, fd00:ec2::254:
#   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
# AWS ECS task credentials 169.254.170.2:
#   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
# EKS Pod Identity agent 169.254.170.23, fd00:ec2::23:
#   https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html
# Amazon DNS 169.254.169.253, fd00:ec2::253:
#   https://docs.aws.amazon.com/vpc/latest/userguide/AmazonDNS-concepts.html
# Amazon Time Sync 169.254.169.123, fd00:ec2::123:
#   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/set-time.html
# Azure IMDS 169.254.169.254:
#   https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service
# Azure WireServer 168.63.129.16:
#   https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16
# GCP metadata server 169.254.169.254 (and fd20:ce::254 on IPv6-only VMs):
#   https://cloud.google.com/compute/docs/metadata/querying-metadata
# Alibaba Cloud ECS metadata 100.100.100.200:
#   https://www.alibabacloud.com/help/en/ecs/user-guide/view-instance-metadata
# Oracle Cloud 169.254.169.254; 192.0.0.192 (OCI Classic):
#   https://docs.oracle.com/en-us/iaas/Content/Compute/Tasks/gettingmetadata.htm
# Tencent Cloud 169.254.0.23 (metadata.tencentyun.com):
#   https://www.tencentcloud.com/document/product/213/4934
# OpenStack 169.254.169.254: https://docs.openstack.org/nova/latest/user/metadata.html
# DigitalOcean 169.254.169.254: https://docs.digitalocean.com/reference/api/metadata/
# Hetzner Cloud 169.254.169.254: https://docs.hetzner.cloud/reference/cloud#server-metadata
ALWAYS_REFUSED: dict[IPAddress, str] = {
    ipaddress.ip_address(text): what for text, what in (
        ("169.254.169.254", _METADATA),
        ("fd00:ec2::254", "AWS instance metadata service (IPv6)"),
        ("fd20:ce::254", "GCP metadata server (IPv6)"),
        ("169.254.170.2", "AWS ECS task credential endpoint"),
        ("169.254.170.23", "EKS Pod Identity credential endpoint"),
        ("fd00:ec2::23", "EKS Pod Identity credential endpoint (IPv6)"),
        ("100.100.100.200", "Alibaba Cloud metadata service"),
        ("168.63.129.16", "Azure WireServer"),
        ("192.0.0.192", "Oracle Cloud (Classic) metadata service"),
        ("169.254.0.23", "Tencent Cloud metadata service"),
        ("169.254.169.253", "AWS VPC DNS resolver"),
        ("fd00:ec2::253", "AWS VPC DNS resolver (IPv6)"),
        ("169.254.169.123", "AWS Time Sync service"),
        ("fd00:ec2::123", "AWS Time Sync service (IPv6)"),
    )
}

# IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, updated by
# RFC 8190), plus 240.0.0.0/4 and multicast from the address-space registries:
# the entries that are not globally reachable. Each name reads after "is".
# The IPv4-in-IPv6 wrappers are absent: `normalize` judges what they reach.
SPECIAL_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(text), name) for text, name in (
        ("0.0.0.0/8", "'this network' (RFC 791)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (CGNAT, RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "an IETF protocol assignment (RFC 6890)"),
        ("192.0.2.0/24", "documentation (TEST-NET-1, RFC 5737)"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation (TEST-NET-2, RFC 5737)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3, RFC 5737)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
        ("255.255.255.255/32", "the limited broadcast address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("2001:2::/48", "benchmarking (RFC 5180)"),
        ("2001:10::/28", "deprecated ORCHID (RFC 4843)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("5f00::/16", "segment routing SIDs (RFC 9602)"),
        ("fc00::/7", "unique local (RFC 4193)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "deprecated site-local (RFC 3879)"),
        ("ff00::/8", "multicast"),
    )
)

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT's IPv4-translated form, ::ffff:0:a.b.c.d (RFC 2765)
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
# Wrappers that carry the IPv4 address in their last 32 bits.
_LOW_32 = (_MAPPED, _TRANSLATED, _COMPATIBLE, _NAT64, _NAT64_LOCAL)


def ip_literal(host: str) -> IPAddress | None:
    """The IP address a host text names (`10.0.0.1`, `::1`, `[::1]`), as written; None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def normalize(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 spelling reaches (see the module docstring);
    any other address unchanged."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address in _COMPATIBLE and int(address) <= 1:  # :: and ::1 are IPv6 themselves
        return address
    if any(address in wrapper for wrapper in _LOW_32):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    if address in _TEREDO:
        return ipaddress.IPv4Address(~int(address) & 0xFFFFFFFF)
    return address


def normalize_network(network: IPNetwork) -> IPNetwork:
    """An IPv6-spelled CIDR entry as the IPv4 network it stands for, when it
    lies inside one wrapper with every bit before the IPv4 part fixed
    (`::ffff:10.0.0.0/104` is 10.0.0.0/8); otherwise unchanged. Teredo stays
    IPv6 (its IPv4 part is inverted and behind a port)."""
    if isinstance(network, ipaddress.IPv4Network):
        return network
    for wrapper, low_bit in [(w, 0) for w in _LOW_32] + [(_SIX_TO_FOUR, 80)]:
        prefix = 128 - low_bit - 32  # bits before the IPv4 part
        if network.subnet_of(wrapper) and prefix <= network.prefixlen <= prefix + 32:
            if wrapper is _COMPATIBLE and network.prefixlen == 128 and int(network.network_address) <= 1:
                return network
            value = (int(network.network_address) >> low_bit) & 0xFFFFFFFF
            return ipaddress.IPv4Network((value, network.prefixlen - prefix))
    return network


def special_range(address: IPAddress) -> tuple[IPNetwork, str] | None:
    """The narrowest special range holding the address, with its name."""
    holding = [(net, name) for net, name in SPECIAL_RANGES if address in net]
    return max(holding, key=lambda item: item[0].prefixlen, default=None)


def vet(address: IPAddress, port: int, entries: Iterable[CidrEntry]) -> Refusal | None:
    """Why `address` may not be used for a connection to `port` under these
    allowlist entries, or None. Rules in the module docstring."""
    plain = normalize(address)
    shown = str(plain) if plain == address else f"{address} (= {plain})"
    if plain in ALWAYS_REFUSED or address in ALWAYS_REFUSED:
        what = ALWAYS_REFUSED.get(plain) or ALWAYS_REFUSED[address]
        return Refusal("always-refused", f"{shown} is the {what} (always refused)")
    networks = [e.network for e in entries if e.network is not None and e.allows_port(port)]
    candidates = [normalize_network(n) for n in networks] + networks
    for judged in dict.fromkeys((plain, address)):  # the original too: see 64:ff9b:1::/48
        found = special_range(judged)
        if found is None:
            continue
        special, name = found
        if not any(_opens(net, judged, special) for net in candidates):
            return Refusal("special-address", f"{shown} is {name}: open it with a CIDR entry inside "
                           f"{special}, e.g. {_example(judged, port)}")
    return None


def _opens(network: IPNetwork, address: IPAddress, special: IPNetwork) -> bool:
    if network.version != address.version:
        return False
    return address in network and network.subnet_of(special)  # type: ignore[arg-type]


def _example(address: IPAddress, port: int) -> str:
    if address.version == 4:
        return f"{address}/32:{port}"
    return f"[{address}/128]:{port}"
