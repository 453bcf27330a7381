"""The lines a person reads after a run whose network requests were refused,
from hand-built record sections (the keys of vectraguard/network/attempts.py)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from vectraguard.network.allowlist import Allowlist
from vectraguard.network.summary import refused_summary

HEADING = "vectraguard: the sandbox's network requests to {} destination(s) were refused:"


def denied(host: str, port: Any, refusal: str | None, **extra: Any) -> dict[str, Any]:
    entry = {"at": 1700000000.0, "via": "proxy", "host": host, "port": port, "address": None, "decision": "denied",
             "reason": "", "bytes_out": 0, "bytes_in": 0, **extra}
    if refusal is not None:
        entry["refusal"] = refusal
    return entry


def allowed(host: str, port: int) -> dict[str, Any]:
    return {"at": 1700000000.0, "via": "proxy", "host": host, "port": port, "address": "192.0.2.1",
            "decision": "allowed", "reason": "rule x", "bytes_out": 10, "bytes_in": 20}


def bucket(host: str, port: int, refusal: str, attempts: int, decision: str = "denied") -> dict[str, Any]:
    return {"via": "proxy", "host": host, "port": port, "decision": decision, "reason": "", "refusal": refusal,
            "attempts": attempts, "first_at": 1.0, "last_at": 2.0, "bytes_out": 0, "bytes_in": 0}


def lines_for(*entries: dict[str, Any]) -> list[str]:
    return refused_summary({"network": list(entries), "network_attempts": len(entries)}, "s-1")


def one_line(entry: dict[str, Any]) -> str:
    lines = lines_for(entry)
    assert lines[0] == HEADING.format(1)
    assert len(lines) == 2
    return lines[1]


@pytest.mark.parametrize("section", [None, {}, {"network": [], "network_attempts": 0},
                                     {"network": [allowed("pypi.org", 443)], "network_attempts": 1}])
def test_nothing_refused_prints_nothing(section: dict[str, Any] | None) -> None:
    assert refused_summary(section, "s-1") == []


# --- one line per kind ----------------------------------------------------------------

def test_not_allowlisted_gives_the_exact_entry() -> None:
    assert one_line(denied("pypi.org", 443, "not-allowlisted")) == (
        '  pypi.org:443: not on the allowlist. To allow it: --allow pypi.org:443, '
        'or in a profile: network: {allow: ["pypi.org:443"]}')


def test_a_v6_literal_is_bracketed_and_its_entry_is_a_128() -> None:
    assert one_line(denied("2001:db8::5", 8080, "not-allowlisted")) == (
        "  [2001:db8::5]:8080: not on the allowlist. To allow it: --allow '[2001:db8::5/128]:8080', "
        'or in a profile: network: {allow: ["[2001:db8::5/128]:8080"]}')


def test_port() -> None:
    assert one_line(denied("github.com", 22, "port")) == (
        "  github.com:22: the host is on the allowlist, but not port 22. To allow it: --allow github.com:22, "
        'or in a profile: network: {allow: ["github.com:22"]}')


def test_special_address_v4() -> None:
    assert one_line(denied("db.internal", 5432, "special-address", address="10.1.2.3")) == (
        "  db.internal:5432: it resolved to 10.1.2.3, a loopback, private or special address, which only a CIDR "
        "entry opens; open it only if the sandbox should reach that machine (it reaches whatever listens there on "
        "that port, the host's own services too). To allow it: --allow 10.1.2.3/32:5432, or in a profile: "
        'network: {allow: ["10.1.2.3/32:5432"]}')


def test_special_address_v6() -> None:
    assert one_line(denied("cache.internal", 6379, "special-address", address="fd00::7")) == (
        "  cache.internal:6379: it resolved to fd00::7, a loopback, private or special address, which only a CIDR "
        "entry opens; open it only if the sandbox should reach that machine (it reaches whatever listens there on "
        "that port, the host's own services too). To allow it: --allow '[fd00::7/128]:6379', or in a profile: "
        'network: {allow: ["[fd00::7/128]:6379"]}')


def test_special_address_without_an_address() -> None:
    assert one_line(denied("db.internal", 5432, "special-address")) == (
        "  db.internal:5432: it resolved to a loopback, private or special address; only a CIDR entry naming that "
        "address can open it (vectraguard logs show the address).")


def test_the_entries_offered_do_open_the_destination() -> None:
    """The fixes the summary offers are entries the allowlist accepts and that match."""
    assert Allowlist.parse(("10.1.2.3/32:5432",)).match_request("10.1.2.3", 5432) is not None
    assert Allowlist.parse(("[fd00::7/128]:6379",)).vet(ipaddress.ip_address("fd00::7"), 6379) is None
    assert Allowlist.parse(("[2001:db8::5/128]:8080",)).match_request("2001:db8::5", 8080) is not None
    assert Allowlist.parse(("github.com:22",)).match_request("github.com", 22) is not None


def test_always_refused() -> None:
    assert one_line(denied("169.254.169.254", 80, "always-refused")) == (
        "  169.254.169.254:80: a cloud metadata or credential endpoint; no allowlist entry can open it "
        "(it would hand the sandbox the host's cloud credentials).")


def test_host_mismatch() -> None:
    assert one_line(denied("pypi.org", 80, "host-mismatch", asked="evil.example")) == (
        "  pypi.org:80: a plain HTTP request whose Host header named evil.example; no allowlist entry can allow it "
        "(a request may only go to the host it names).")


def test_sni_mismatch_and_missing_sni() -> None:
    assert one_line(denied("pypi.org", 443, "sni-mismatch", asked="evil.example")) == (
        "  pypi.org:443: its TLS greeting named evil.example; no allowlist entry can allow it "
        "(a tunnel may only carry TLS for the host it was opened to).")
    assert one_line(denied("pypi.org", 443, "sni-mismatch", asked="")) == (
        "  pypi.org:443: its TLS greeting named no server; no allowlist entry can allow it "
        "(a tunnel may only carry TLS for the host it was opened to).")


def test_not_tls() -> None:
    assert one_line(denied("pypi.org", 443, "not-tls")) == (
        "  pypi.org:443: the connection started neither TLS nor an HTTP request for this host, and an entry without "
        "a port lets only those through; to let another protocol through, name the port. To allow it: "
        "--allow pypi.org:443, "
        'or in a profile: network: {allow: ["pypi.org:443"]}')


def test_unresolvable() -> None:
    entry = denied("nothing.invalid", 443, "unresolvable", reason="the name does not resolve (Name or service not known)")
    assert one_line(entry) == "  nothing.invalid:443: the name does not resolve (Name or service not known)."


def test_unreachable() -> None:
    entry = denied("down.example", 443, "unreachable", reason="192.0.2.1: Connection refused")
    assert one_line(entry) == "  down.example:443: no connection could be made (192.0.2.1: Connection refused)."


def test_over_limit() -> None:
    assert one_line(denied("(over the connection limit)", 0, "over-limit")) == (
        "  connections beyond the limit: more connections at once than network.max_connections allows; "
        "raise it in a profile (network: {max_connections: N}) if the run needs more.")


def test_malformed() -> None:
    entry = denied("(malformed request)", 0, "malformed", reason="the proxy takes absolute http:// URLs")
    assert one_line(entry) == "  a request the proxy could not read: the proxy takes absolute http:// URLs."


def test_an_unknown_refusal_reads_the_reason() -> None:
    assert one_line(denied("x.example", 443, "from-the-future", reason="a new rule")) == (
        "  x.example:443: refused (a new rule).")


# --- old records: no `refusal`, the reason text -----------------------------------------

@pytest.mark.parametrize(("reason", "ending"), [
    ("no network.allow entry matches", ("not on the allowlist. To allow it: --allow old.example:443, "
                                        'or in a profile: network: {allow: ["old.example:443"]}')),
    ("the name does not resolve (Temporary failure in name resolution)",
     "the name does not resolve (Temporary failure in name resolution)."),
    ("a cloud metadata address (always refused)", ("a cloud metadata or credential endpoint; no allowlist entry "
                                                   "can open it (it would hand the sandbox the host's cloud "
                                                   "credentials).")),
    ("10.0.0.5 is a loopback, private or special address not named by a CIDR entry; 192.0.2.1: No route to host",
     ("it resolved to 10.0.0.5, a loopback, private or special address, which only a CIDR entry opens; open it "
      "only if the sandbox should reach that machine (it reaches whatever listens there on that port, the host's "
      'own services too). To allow it: --allow 10.0.0.5/32:443, or in a profile: '
      'network: {allow: ["10.0.0.5/32:443"]}')),
    ("192.0.2.1: Connection timed out", "no connection could be made (192.0.2.1: Connection timed out)."),
    ("no usable address", "refused (no usable address)."),
])
def test_old_records_are_read_from_the_reason(reason: str, ending: str) -> None:
    assert one_line(denied("old.example", 443, None, reason=reason)) == f"  old.example:443: {ending}"


def test_an_old_malformed_request() -> None:
    entry = denied("(malformed request)", 0, None, reason="a request line without a version")
    assert one_line(entry) == "  a request the proxy could not read: a request line without a version."


# --- grouping, buckets, the limit -----------------------------------------------------------

def test_attempts_are_grouped_by_destination_and_kind_in_first_seen_order() -> None:
    lines = lines_for(denied("a.example", 443, "not-allowlisted"), allowed("ok.example", 443),
                      denied("b.example", 443, "not-allowlisted"), denied("a.example", 443, "not-allowlisted"),
                      denied("a.example", 8443, "port"), denied("a.example", 443, "over-limit"),
                      denied("a.example", 443, "not-allowlisted"))
    assert [line.split(":", 2)[0] + ":" + line.split(":", 2)[1] for line in lines[1:]] == [
        "  a.example:443 (3 attempts)", "  b.example:443", "  a.example:8443",
        "  connections beyond the limit: more connections at once than network.max_connections allows; "
        "raise it in a profile (network"]
    assert lines[0] == HEADING.format(4)
    assert "network.max_connections" in lines[4]


def test_buckets_add_their_attempts_and_allowed_buckets_are_left_out() -> None:
    section = {"network": [denied("a.example", 443, "not-allowlisted")], "network_attempts": 1006,
               "network_rest": [bucket("a.example", 443, "not-allowlisted", 500),
                                bucket("ok.example", 443, "", 5, decision="allowed"),
                                bucket("c.example", 80, "host-mismatch", 500)]}
    lines = refused_summary(section, "s-1")
    assert lines[0] == HEADING.format(2)
    assert lines[1].startswith("  a.example:443 (501 attempts): not on the allowlist.")
    assert lines[2].startswith("  c.example:80 (500 attempts): a plain HTTP request whose Host header named ;")


def test_more_destinations_than_the_limit_point_at_the_logs() -> None:
    entries = [denied(f"h{i}.example", 443, "not-allowlisted") for i in range(11)]
    lines = refused_summary({"network": entries}, "2026-11-30T19-00-00-abcd", limit=8)
    assert lines[0] == HEADING.format(11)
    assert [line.split(":")[0] for line in lines[1:9]] == [f"  h{i}.example" for i in range(8)]
    assert lines[9:] == ["  … and 3 more: vectraguard logs show 2026-11-30T19-00-00-abcd"]


def test_exactly_the_limit_has_no_more_line() -> None:
    entries = [denied(f"h{i}.example", 443, "not-allowlisted") for i in range(3)]
    assert len(refused_summary({"network": entries}, "s-1", limit=3)) == 4


def test_the_others_bucket_is_pointed_at_too() -> None:
    section = {"network": [denied("a.example", 443, "not-allowlisted")],
               "network_rest_others": {"destinations": 1000, "attempts": 99000, "first_at": 1.0, "last_at": 2.0,
                                       "bytes_out": 0, "bytes_in": 0}}
    assert refused_summary(section, "s-9")[-1] == (
        "  … and 99000 attempt(s) to 1000 other destination(s), refused or not: vectraguard logs show s-9")


# --- hostile strings ------------------------------------------------------------------------

def test_a_host_with_terminal_escapes_is_shown_printable_and_offered_no_fix() -> None:
    line = one_line(denied("evil\x1b]0;pwned\x07\x1b[2J.example", 443, "not-allowlisted"))
    assert line == "  evil\\x1b]0;pwned\\x07\\x1b[2J.example:443: not on the allowlist. No allowlist entry can name it."
    assert "\x1b" not in line and "\x07" not in line


def test_hostile_host_header_sni_reason_and_session_are_printable() -> None:
    lines = refused_summary({"network": [
        denied("pypi.org", 80, "host-mismatch", asked="x\x1b[31m\u202eevil"),
        denied("pypi.org", 443, "sni-mismatch", asked="\r\x1b[1Aevil"),
        denied("x.example", 443, "unreachable", reason="\x1b[2J"),
    ]}, "s\x1b[0m", limit=1)
    text = "\n".join(lines)
    assert not any(ch in text for ch in "\x1b\r\u202e")
    assert "Host header named x\\x1b[31m\\u202eevil;" in lines[1]
    assert lines[-1] == "  … and 2 more: vectraguard logs show s\\x1b[0m"


def test_a_long_host_is_cut() -> None:
    line = one_line(denied("a" * 5000 + ".example", 443, "not-allowlisted"))
    assert len(line) < 300
    assert "…[+" in line
    assert line.endswith("No allowlist entry can name it.")


def test_a_port_no_tcp_port_can_be_gets_no_fix() -> None:
    line = one_line(denied("pypi.org", "99999999999", "not-allowlisted"))
    assert line == "  pypi.org:99999999999: not on the allowlist. No allowlist entry can name it."
