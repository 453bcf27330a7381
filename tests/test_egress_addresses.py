"""The special-address table and its rules (vectraguard/network/addresses.py)."""

from __future__ import annotations

import ipaddress

import pytest

from vectraguard.network.addresses import (
    ALWAYS_REFUSED,
    SPECIAL_RANGES,
    Refusal,
    normalize,
    normalize_network,
    vet,
)
from vectraguard.network.allowlist import Allowlist, parse_entry

ip = ipaddress.ip_address


def refusal(address: str, port: int, *entries: str) -> Refusal | None:
    return vet(ip(address), port, [parse_entry(e) for e in entries])


@pytest.mark.parametrize(("given", "plain"), [
    ("::ffff:169.254.169.254", "169.254.169.254"),
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::ffff:0:a01:203", "10.1.2.3"),        # SIIT's IPv4-translated form (found by a blind attack)
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b:1::a00:1", "10.0.0.1"),
    ("::127.0.0.1", "127.0.0.1"),
    ("::2", "0.0.0.2"),
    ("2002:a00:1::1", "10.0.0.1"),
    ("2002:7f00:1:5::9", "127.0.0.1"),
    # Teredo: server 65.54.227.120, client 192.0.2.45 stored inverted (RFC 4380 §4 example).
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
    ("::", "::"),
    ("::1", "::1"),
    ("2606:4700::1111", "2606:4700::1111"),
    ("8.8.8.8", "8.8.8.8"),
])
def test_normalize_unwraps_ipv4_spellings(given: str, plain: str) -> None:
    assert normalize(ip(given)) == ip(plain)


@pytest.mark.parametrize(("given", "plain"), [
    ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
    ("::ffff:127.0.0.1/128", "127.0.0.1/32"),
    ("64:ff9b::/96", "0.0.0.0/0"),
    ("2002:a01::/32", "10.1.0.0/16"),
    ("::/0", "::/0"),
    ("::1/128", "::1/128"),
    ("::ff00:0:0/88", "::ff00:0:0/88"),
    ("10.0.0.0/8", "10.0.0.0/8"),
])
def test_normalize_network(given: str, plain: str) -> None:
    assert normalize_network(ipaddress.ip_network(given)) == ipaddress.ip_network(plain)


ALWAYS = sorted(ALWAYS_REFUSED, key=str)


@pytest.mark.parametrize("address", ALWAYS, ids=str)
@pytest.mark.parametrize("entry", ["0.0.0.0/0:80", "[::/0]:80", "own"])
def test_always_refused_whatever_the_entries(address: ipaddress.IPv4Address, entry: str) -> None:
    if entry == "own":
        entry = f"{address}/32:80" if address.version == 4 else f"[{address}/128]:80"
    got = refusal(str(address), 80, entry)
    assert got is not None and got.kind == "always-refused"
    assert got.message == f"{address} is the {ALWAYS_REFUSED[address]} (always refused)"


def test_every_listed_endpoint_is_present() -> None:
    expected = {"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.170.23", "fd00:ec2::23",
                "100.100.100.200", "168.63.129.16", "192.0.0.192", "169.254.0.23", "169.254.169.253",
                "169.254.169.123", "fd00:ec2::253", "fd00:ec2::123"}
    assert {ip(a) for a in expected} <= set(ALWAYS_REFUSED)


def test_ecs_message() -> None:
    got = refusal("169.254.170.2", 80, "169.254.170.0/24:80")
    assert got == Refusal("always-refused", "169.254.170.2 is the AWS ECS task credential endpoint (always refused)")


@pytest.mark.parametrize("wrapped", ["::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "::169.254.169.254",
                                     "2002:a9fe:a9fe::1", "64:ff9b:1::a9fe:a9fe", "::ffff:0:a9fe:a9fe"])
def test_wrapped_metadata_is_refused(wrapped: str) -> None:
    got = refusal(wrapped, 80, "[::/0]:80", "0.0.0.0/0:80", f"[{wrapped}/128]:80")
    assert got is not None and got.kind == "always-refused"
    assert got.message.startswith(f"{ip(wrapped)} (= 169.254.169.254) is the cloud instance metadata service")


def test_loopback_message() -> None:
    got = refusal("127.0.0.1", 8080)
    assert got == Refusal("special-address", "127.0.0.1 is loopback: open it with a CIDR entry inside "
                                             "127.0.0.0/8, e.g. 127.0.0.1/32:8080")


def test_ipv6_message_uses_bracketed_entry() -> None:
    got = refusal("fe80::1", 443)
    assert got is not None
    assert got.message == "fe80::1 is link-local: open it with a CIDR entry inside fe80::/10, e.g. [fe80::1/128]:443"


@pytest.mark.parametrize(("address", "port", "entry"), [
    ("127.0.0.1", 8080, "127.0.0.1/32:8080"),
    ("10.1.2.3", 443, "10.1.2.0/24"),
    ("10.1.2.3", 443, "10.0.0.0/8:443"),
    ("192.168.5.5", 5432, "192.168.0.0/16:5432"),
    ("172.20.0.1", 80, "172.16.0.0/12"),
    ("100.64.1.1", 80, "100.64.0.0/10"),
    ("::1", 8080, "[::1/128]:8080"),
    ("fd12:3456::1", 443, "[fd12::/16]:443"),
    ("::ffff:127.0.0.1", 8080, "127.0.0.1/32:8080"),
    ("127.0.0.1", 8080, "[::ffff:127.0.0.1/128]:8080"),
    ("10.1.2.3", 443, "[::ffff:10.0.0.0/104]:443"),
    ("64:ff9b::7f00:1", 8080, "127.0.0.0/8:8080"),
])
def test_cidr_entry_inside_the_range_opens_it(address: str, port: int, entry: str) -> None:
    assert refusal(address, port, entry) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1"])
@pytest.mark.parametrize("entry", ["0.0.0.0/0:80", "[::/0]:80", "8.0.0.0/5:80", "0.0.0.0/1:80", "10.0.0.0/7:80",
                                   "[::ffff:0:0/96]:80", "[64:ff9b::/96]:80", "[::/96]:80"])
def test_wide_entries_never_open_special_ranges(address: str, entry: str) -> None:
    got = refusal(address, 80, entry)
    assert got is not None and got.kind == "special-address"


def test_port_must_match_the_opening_entry() -> None:
    assert refusal("127.0.0.1", 8080, "127.0.0.1/32:8080") is None
    got = refusal("127.0.0.1", 8081, "127.0.0.1/32:8080")
    assert got is not None and got.kind == "special-address"
    assert refusal("10.1.2.3", 22, "10.1.2.0/24") is not None  # no port: 80 and 443 only
    assert refusal("10.1.2.3", 443, "10.1.2.0/24") is None


def test_entry_must_contain_the_address() -> None:
    assert refusal("10.1.3.1", 443, "10.1.2.0/24") is not None
    assert refusal("127.0.0.2", 8080, "127.0.0.1/32:8080") is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_need_no_cidr(address: str) -> None:
    assert refusal(address, 443) is None
    assert refusal(address, 443, "example.com") is None


def test_narrowest_range_must_hold_the_entry() -> None:
    # 255.255.255.255 is inside both 240.0.0.0/4 and the broadcast /32.
    got = refusal("255.255.255.255", 80, "240.0.0.0/4:80")
    assert got is not None and "limited broadcast" in got.message
    assert refusal("255.255.255.255", 80, "255.255.255.255/32:80") is None


def test_local_use_nat64_is_special_in_its_own_right() -> None:
    # Other RFC 6052 prefix lengths put the IPv4 address elsewhere, so a public
    # reading of the low 32 bits is not enough.
    got = refusal("64:ff9b:1::808:808", 443)
    assert got is not None and "local-use IPv4/IPv6 translation" in got.message
    assert refusal("64:ff9b:1::808:808", 443, "[64:ff9b:1::/48]:443") is None


@pytest.mark.parametrize(("address", "name"), [
    ("0.1.2.3", "'this network'"), ("169.254.1.1", "link-local"), ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"), ("198.18.0.1", "benchmarking"), ("192.0.2.1", "TEST-NET-1"),
    ("198.51.100.1", "TEST-NET-2"), ("203.0.113.1", "TEST-NET-3"), ("192.0.0.8", "IETF protocol"),
    ("::", "unspecified"), ("ff02::1", "multicast"), ("2001:db8::1", "documentation"),
    ("fc00::1", "unique local"), ("100::1", "discard-only"),
])
def test_special_ranges_are_named(address: str, name: str) -> None:
    got = refusal(address, 80)
    assert got is not None and got.kind == "special-address" and name in got.message


def test_special_ranges_table_is_well_formed() -> None:
    assert all(name for _, name in SPECIAL_RANGES)
    assert len({net for net, _ in SPECIAL_RANGES}) == len(SPECIAL_RANGES)


def test_allowlist_delegates_with_port() -> None:
    allow = Allowlist.parse(("127.0.0.1/32:8080", "example.com"))
    assert allow.vet(ip("127.0.0.1"), 8080) is None
    assert allow.vet(ip("127.0.0.1"), 9000) == ("127.0.0.1 is loopback: open it with a CIDR entry inside "
                                                "127.0.0.0/8, e.g. 127.0.0.1/32:9000")
    assert allow.refusal(ip("169.254.169.254"), 80) is not None
    assert allow.vet(ip("93.184.216.34"), 443) is None


def test_match_request_normalizes_literals() -> None:
    allow = Allowlist.parse(("169.254.0.0/16:80", "10.0.0.0/8:443", "[::ffff:192.168.0.0/112]:443"))
    entry = allow.match_request("[::ffff:169.254.169.254]", 80)
    assert entry is not None and entry.text == "169.254.0.0/16:80"
    # Matching the request is not enough: the address is still vetted.
    assert allow.refusal(ip("::ffff:169.254.169.254"), 80) is not None
    assert allow.match_request("[64:ff9b::a01:203]", 443) is not None
    assert allow.match_request("192.168.1.1", 443) is not None
    assert allow.match_request("[::ffff:10.1.2.3]", 80) is None  # wrong port
    assert allow.match_request("[::1]", 443) is None


@pytest.mark.parametrize("host", ["x\r\nHost: evil.b.com", "evil.b.com/x", "evil b.com", "a\x00.b.com",
                                  "evil.b.com:80@x.b.com", "-.b.com"])
def test_a_host_with_characters_no_name_has_matches_no_entry(host: str) -> None:
    assert Allowlist.parse(("*.b.com",)).match_request(host, 443) is None
