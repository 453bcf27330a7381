"""The egress proxy's resolver: literals, a hosts map (and hosts(5) files), then DNS.

DNS is asked only about `localhost`, which the host's own resolver answers
from its hosts file, and about a name under `.invalid` (RFC 6761: never
resolves) from a network namespace with nothing routed.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from tests.support.netns import private_netns
from vectraguard.network.resolve import HOSTS_FILE_LIMIT, ResolveError, Resolver

A = ipaddress.ip_address


def _resolve(resolver: Resolver, host: str, port: int = 443) -> list[object]:
    return list(asyncio.run(resolver.resolve(host, port)))


@pytest.mark.parametrize(("host", "address"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[::ffff:10.0.0.1]", "::ffff:10.0.0.1"),
])
def test_an_ip_literal_is_returned_as_is(host: str, address: str) -> None:
    assert _resolve(Resolver({"192.0.2.7": (A("10.9.9.9"),)}), host) == [A(address)]


def test_a_listed_name_resolves_only_from_the_map() -> None:
    resolver = Resolver({"Pinned.Example.": (A("192.0.2.1"), A("2001:db8::5"))})
    assert _resolve(resolver, "pinned.example") == [A("192.0.2.1"), A("2001:db8::5")]
    assert _resolve(resolver, "PINNED.example.") == [A("192.0.2.1"), A("2001:db8::5")]


def test_a_listed_name_is_never_asked_of_dns() -> None:
    # localhost resolves through DNS (the host's resolver) to loopback; pinned, it is what the map says
    assert _resolve(Resolver({"localhost": (A("192.0.2.9"),)}), "localhost") == [A("192.0.2.9")]
    # and a name DNS would refuse resolves when the map lists it
    assert _resolve(Resolver({"nothing.invalid": (A("192.0.2.10"),)}), "nothing.invalid") == [A("192.0.2.10")]


def test_a_listed_name_without_addresses_does_not_resolve() -> None:
    with pytest.raises(ResolveError) as caught:
        _resolve(Resolver({"localhost": ()}), "localhost")
    assert str(caught.value) == "the name does not resolve (the hosts map lists it without an address)"


def test_other_names_go_to_dns_deduplicated_in_order() -> None:
    addresses = _resolve(Resolver(), "localhost", 80)
    assert addresses, "localhost resolves"
    assert all(a.is_loopback for a in addresses)  # type: ignore[attr-defined]
    assert len(addresses) == len(set(addresses))


def test_a_name_that_does_not_resolve() -> None:
    """Asked from a namespace where nothing is routed: even a resolver that
    forwards `.invalid` cannot send the question off the machine."""
    with private_netns() as netns, pytest.raises(ResolveError, match=r"^the name does not resolve \(.+\)$"):
        netns.call(lambda: _resolve(Resolver(), "no-such-host.invalid"))


def test_a_name_that_cannot_be_one() -> None:
    with pytest.raises(ResolveError, match=r"^the name does not resolve \('' is not a host name\)$"):
        _resolve(Resolver(), " . ")


# --- hosts files ----------------------------------------------------------------------

def _hosts_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hosts"
    path.write_text(text)
    return str(path)


def test_a_hosts_file(tmp_path: Path) -> None:
    path = _hosts_file(tmp_path, (
        "# comment line\n"
        "192.0.2.1   api.example  API2.Example.   # trailing comment\n"
        "\n"
        "   \t\n"
        "2001:db8::1 api.example\n"
        "192.0.2.2\tother.example\n"
        "192.0.2.1   api.example\n"       # the same address again is not repeated
        "192.0.2.3   api2.example\n"))
    resolver = Resolver.from_hosts_file(path)
    assert resolver.hosts == {"api.example": (A("192.0.2.1"), A("2001:db8::1")),
                              "api2.example": (A("192.0.2.1"), A("192.0.2.3")),
                              "other.example": (A("192.0.2.2"),)}
    assert _resolve(resolver, "API.example") == [A("192.0.2.1"), A("2001:db8::1")]


def test_an_empty_hosts_file(tmp_path: Path) -> None:
    assert Resolver.from_hosts_file(_hosts_file(tmp_path, "# nothing\n")).hosts == {}


def test_idn_names_are_normalised_to_punycode(tmp_path: Path) -> None:
    resolver = Resolver.from_hosts_file(_hosts_file(tmp_path, "192.0.2.4 bücher.example\n"))
    assert resolver.hosts == {"xn--bcher-kva.example": (A("192.0.2.4"),)}
    assert _resolve(resolver, "BÜCHER.example") == [A("192.0.2.4")]


@pytest.mark.parametrize(("text", "message"), [
    ("192.0.2.1 fine\n300.1.1.1 bad\n", ":2: '300.1.1.1' is not an IPv4 or IPv6 address"),
    ("api.example 192.0.2.1\n", ":1: 'api.example' is not an IPv4 or IPv6 address"),
    ("\n\n192.0.2.1\n", ":3: 192.0.2.1 is followed by no host name"),
    ("192.0.2.1 " + "a" * 300 + "\n", ":1: '" + "a" * 300 + "' is not a host name"),
])
def test_bad_lines_are_located(tmp_path: Path, text: str, message: str) -> None:
    path = _hosts_file(tmp_path, text)
    with pytest.raises(ValueError) as caught:
        Resolver.from_hosts_file(path)
    assert str(caught.value) == path + message


def test_an_unreadable_hosts_file(tmp_path: Path) -> None:
    path = str(tmp_path / "missing")
    with pytest.raises(ValueError) as caught:
        Resolver.from_hosts_file(path)
    assert str(caught.value) == f"{path}: cannot read the hosts file (No such file or directory)"


def test_a_directory_is_no_hosts_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        Resolver.from_hosts_file(str(tmp_path))
    assert str(caught.value) == f"{tmp_path}: cannot read the hosts file (Is a directory)"


def test_a_hosts_file_over_1_mib_is_refused(tmp_path: Path) -> None:
    line = "192.0.2.1 padded.example\n"
    path = _hosts_file(tmp_path, line * (HOSTS_FILE_LIMIT // len(line) + 1))
    with pytest.raises(ValueError) as caught:
        Resolver.from_hosts_file(path)
    assert str(caught.value) == f"{path}: the hosts file is over 1048576 bytes"


def test_a_hosts_file_of_exactly_1_mib_is_read(tmp_path: Path) -> None:
    line = "192.0.2.1 padded.example\n"
    text = line * (HOSTS_FILE_LIMIT // len(line))
    path = _hosts_file(tmp_path, text + "#" * (HOSTS_FILE_LIMIT - len(text)))
    assert Resolver.from_hosts_file(path).hosts == {"padded.example": (A("192.0.2.1"),)}
