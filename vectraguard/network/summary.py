"""What a person reads on stderr after a run whose network requests were refused.

Input: a record's network keys (vectraguard/network/attempts.py: `network`,
`network_rest`, `network_rest_others`). Each denied entry or bucket carries
`refusal`, one of KINDS; records written before it have only the `reason`
text, from which the kind is read back (`_kind_from_reason`).

Output: no lines when nothing was refused; otherwise a heading, then one line
per destination (host, port and kind together, with its count of attempts),
saying why in plain words and, where an allowlist entry could open it, the
exact entry as a flag and as a profile line. The fix names host:port exactly,
even for 80 or 443: an entry without a port opens both, more than was asked.
Every text the sandbox chose (host names, Host headers, server names,
reasons) is cut and made printable: it could carry terminal escapes.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vectraguard.audit.bounds import cut
from vectraguard.network.allowlist import parse_entry
from vectraguard.output import printable

KINDS = ("not-allowlisted", "port", "special-address", "always-refused", "host-mismatch", "sni-mismatch",
         "not-tls", "unresolvable", "unreachable", "over-limit", "malformed", "upgrade")
SHOWN_BYTES = 120  # of any one text the sandbox chose
_ENTRY_CHARACTERS = re.compile(r"[A-Za-z0-9._\-]+:[0-9]+|\[[0-9a-fA-F:.]+/[0-9]+\]:[0-9]+|[0-9.]+/[0-9]+:[0-9]+")


@dataclass
class Refused:
    """The refused attempts to one destination, of one kind."""

    host: str
    port: Any
    kind: str
    attempts: int
    address: str | None
    asked: str | None
    reason: str


def refused_summary(section: dict[str, Any] | None, session_id: str, *, limit: int = 8) -> list[str]:
    """The lines to print: [] when nothing was refused; at most `limit` destinations,
    then one line pointing at `vectraguard logs show SESSION` for the rest."""
    groups = _group(_denied(section or {}))
    others = (section or {}).get("network_rest_others") or {}
    if not groups:
        return []
    lines = [f"vectraguard: the sandbox's network requests to {len(groups)} destination(s) were refused:"]
    lines += ["  " + _line(refused) for refused in groups[:limit]]
    more = len(groups) - limit
    session = printable(cut(str(session_id), SHOWN_BYTES))
    if more > 0:
        lines.append(f"  … and {more} more: vectraguard logs show {session}")
    if others.get("attempts"):
        lines.append(f"  … and {others['attempts']} attempt(s) to {others.get('destinations', 0)} other "
                     f"destination(s), refused or not: vectraguard logs show {session}")
    return lines


def _denied(section: dict[str, Any]) -> Iterable[tuple[dict[str, Any], int]]:
    for entry in section.get("network") or []:
        if entry.get("decision") == "denied":
            yield entry, 1
    for bucket in section.get("network_rest") or []:
        if bucket.get("decision") == "denied":
            attempts = bucket.get("attempts")
            yield bucket, attempts if isinstance(attempts, int) and attempts > 0 else 1


def _group(denied: Iterable[tuple[dict[str, Any], int]]) -> list[Refused]:
    groups: dict[tuple[str, str, str], Refused] = {}
    for entry, attempts in denied:
        reason = str(entry.get("reason") or "")
        refusal = entry.get("refusal")
        kind = refusal if isinstance(refusal, str) and refusal in KINDS else _kind_from_reason(entry, reason)
        host, port = str(entry.get("host", "")), entry.get("port", "")
        key = (host, str(port), kind)
        if key in groups:
            groups[key].attempts += attempts
            continue
        address = str(entry.get("address") or "") or (_address_in(reason) if kind == "special-address" else None)
        asked = entry.get("asked")
        groups[key] = Refused(host, port, kind, attempts, address, None if asked is None else str(asked), reason)
    return list(groups.values())


def _kind_from_reason(entry: dict[str, Any], reason: str) -> str:
    """The kind of an old record's refusal, read from the reason texts dial.py and proxy.py wrote."""
    if entry.get("host") == "(malformed request)":
        return "malformed"
    for kind, mark in (("not-allowlisted", "no network.allow entry matches"),
                       ("unresolvable", "the name does not resolve"),
                       ("always-refused", "cloud metadata"),
                       ("special-address", "loopback, private or special address")):
        if mark in reason:
            return kind
    if re.match(r"[0-9a-fA-F.:]+: ", reason):
        return "unreachable"
    return "other"


def _address_in(reason: str) -> str | None:
    found = re.search(r"([0-9a-fA-F.:]+) is a loopback, private or special address", reason)
    return found.group(1) if found else None


def _line(refused: Refused) -> str:
    count = f" ({refused.attempts} attempts)" if refused.attempts > 1 else ""
    if refused.kind == "malformed":  # it named no destination
        return f"a request the proxy could not read{count}: {_shown(refused.reason)}."
    if refused.kind == "over-limit":  # refused before it could name one
        return f"connections beyond the limit{count}: {_why(refused)}"
    return f"{_where(refused.host, refused.port)}{count}: {_why(refused)}"


def _why(refused: Refused) -> str:
    kind, port = refused.kind, refused.port
    if kind == "not-allowlisted":
        return "not on the allowlist." + _fix(f"{_host_entry(refused.host)}:{port}")
    if kind == "port":
        return f"the host is on the allowlist, but not port {port}." + _fix(f"{_host_entry(refused.host)}:{port}")
    if kind == "special-address":
        return _special(refused)
    if kind == "always-refused":
        return ("a cloud metadata or credential endpoint; no allowlist entry can open it "
                "(it would hand the sandbox the host's cloud credentials).")
    if kind == "host-mismatch":
        return (f"a plain HTTP request whose Host header named {_shown(refused.asked or '')}; no allowlist entry "
                "can allow it (a request may only go to the host it names).")
    if kind == "sni-mismatch":
        asked = f"named {_shown(refused.asked)}" if refused.asked else "named no server"
        return (f"its TLS greeting {asked}; no allowlist entry can allow it "
                "(a tunnel may only carry TLS for the host it was opened to).")
    if kind == "not-tls":
        return ("the connection started neither TLS nor an HTTP request for this host, and an entry without a "
                "port lets only those through; to let another protocol through, name the port."
                + _fix(f"{_host_entry(refused.host)}:{port}"))
    if kind == "unresolvable":
        return f"the name does not resolve ({_shown(_after(refused.reason, 'the name does not resolve'))})."
    if kind == "unreachable":
        return f"no connection could be made ({_shown(refused.reason)})."
    if kind == "upgrade":
        return ("a plain-HTTP request to switch protocols (a WebSocket or h2c); no allowlist entry can allow it "
                "(after the switch, requests to any host could follow): use wss:// or https://.")
    if kind == "over-limit":
        return ("more connections at once than network.max_connections allows; "
                "raise it in a profile (network: {max_connections: N}) if the run needs more.")
    return f"refused ({_shown(refused.reason)})."


def _special(refused: Refused) -> str:
    try:
        address = ipaddress.ip_address(str(refused.address))
    except ValueError:
        return ("it resolved to a loopback, private or special address; only a CIDR entry naming that address "
                "can open it (vectraguard logs show the address).")
    network = f"{address}/{address.max_prefixlen}"
    entry = f"[{network}]:{refused.port}" if address.version == 6 else f"{network}:{refused.port}"
    return (f"it resolved to {address}, a loopback, private or special address, which only a CIDR entry opens;"
            " open it only if the sandbox should reach that machine (it reaches whatever listens there on that"
            " port, the host's own services too)." + _fix(entry))


def _fix(entry: str) -> str:
    """The flag and the profile line that add `entry`, or a word that none can, for a text
    that is no allowlist entry (a host name the sandbox made up)."""
    if not _ENTRY_CHARACTERS.fullmatch(entry):  # the idna codec lets escapes through in ASCII labels
        return " No allowlist entry can name it."
    try:
        parse_entry(entry)
    except ValueError:
        return " No allowlist entry can name it."
    return f" To allow it: --allow {shlex.quote(entry)}, or in a profile: network: {{allow: [\"{entry}\"]}}"


def _host_entry(host: str) -> str:
    """A host as it is written in an entry: a v6 literal in brackets, as /128."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return f"[{address}/128]" if address.version == 6 else str(address)


def _where(host: str, port: Any) -> str:
    shown = _shown(host)
    if ":" in host and not host.startswith("["):
        shown = f"[{shown}]"
    return f"{shown}:{_shown(str(port))}"


def _shown(text: str) -> str:
    return printable(cut(text, SHOWN_BYTES))


def _after(reason: str, mark: str) -> str:
    """The detail in "mark (detail)", or the whole reason."""
    found = re.search(re.escape(mark) + r" \((.*)\)", reason)
    return found.group(1) if found else reason
