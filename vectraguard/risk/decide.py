"""What to do about a command's findings: allow, ask or deny.

A profile's `risk.decisions` maps classes and rule ids to a verdict; a rule
id is more specific than its class and wins. A class the profile says
nothing about is asked about (fail closed, but not shut). The system
policy's `risk.decisions` is a floor: it can make a verdict stricter, never
looser, whatever the layers say. The whole command gets the strictest
verdict of its findings.

Besides the command, the run itself can be risky: the full network, or
destinations the command line adds to the profile's allowlist, however it
spells them (risk/assess.py compares the resolved network with the
profile's own). Those are findings of class `network` too (rules
`network-full`, `network-widened`), decided by the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.network.allowlist import Entry, parse_entry
from vectraguard.risk.classify import Finding
from vectraguard.risk.names import NETWORK_FULL, NETWORK_PUBLISH, NETWORK_WIDENED

VERDICTS = ("allow", "ask", "deny")  # weakest first
DEFAULT_VERDICT = "ask"


@dataclass(frozen=True)
class Judged:
    """A finding with its verdict and the setting that chose it."""

    finding: Finding
    verdict: str
    by: str  # the setting that chose the verdict, with its origin

    def as_dict(self) -> dict[str, str]:
        return {**self.finding.as_dict(), "decision": self.verdict, "by": self.by}


@dataclass(frozen=True)
class Decision:
    """The verdict for a whole run, and each finding's."""

    verdict: str  # allow, ask or deny
    judged: tuple[Judged, ...]

    def summary(self) -> str:
        """One line: which findings, for the audit reason and `check`."""
        if not self.judged:
            return "no risk found"
        return "; ".join(f"{j.finding.cls} ({j.finding.rule}: {j.finding.matched}) -> {j.verdict}" for j in self.judged)


def stricter(a: str, b: str) -> str:
    return a if VERDICTS.index(a) >= VERDICTS.index(b) else b


def decide(findings: list[Finding], profile: ResolvedProfile, floor: Mapping[str, Any] | None = None,
           floor_rule: Callable[[str], str] = str) -> Decision:
    """The verdict for these findings under the profile's decisions and the policy's floor."""
    own: Mapping[str, Any] = (profile.risk or {}).get("decisions") or {}
    judged = []
    for finding in findings:
        verdict, by = DEFAULT_VERDICT, f"the default for a class with no decision ({DEFAULT_VERDICT})"
        for key in (finding.cls, finding.rule):  # the rule id, more specific, last
            if key in own:
                origin = profile.provenance.get(f"risk.decisions.{key}", Origin("<profile>"))
                verdict, by = str(own[key]), f"risk.decisions.{key} ({origin})"
        for key in (finding.cls, finding.rule):
            minimum = (floor or {}).get(key)
            if minimum is not None and stricter(str(minimum), verdict) != verdict:
                verdict, by = str(minimum), floor_rule(f"risk.decisions.{key}")
        judged.append(Judged(finding, verdict, by))
    overall = "allow"
    for item in judged:
        overall = stricter(item.verdict, overall)
    return Decision(overall, tuple(judged))


def network_findings(profile: ResolvedProfile, base: ResolvedProfile | None) -> list[Finding]:
    """The run's own network risk: its mode and allowlist (below), and its published ports."""
    return [*_mode_findings(profile, base), *_publish_findings(profile)]


def _publish_findings(profile: ResolvedProfile) -> list[Finding]:
    """Published ports, whoever set them: pages the sandbox serves run in the
    person's browser, which has the network the sandbox lacks."""
    if not profile.network_publish:
        return []
    origin = profile.provenance.get("network.publish", Origin("<profile>"))
    return [Finding(NETWORK_PUBLISH, "network", "publish " + ", ".join(profile.network_publish),
                    f"the host's browser reaches the sandbox's server, and runs what it serves with the host's "
                    f"network (network.publish set by {origin})")]


def _mode_findings(profile: ResolvedProfile, base: ResolvedProfile | None) -> list[Finding]:
    """The run's own network risk. `base` is the same profile resolved without
    the command line (None when it does not resolve so: then every destination
    counts as the command line's). Mode `full` is a finding whoever set it;
    allowlist destinations beyond the base's are `network-widened`. Switching
    on the profile's own allowlist (`dev` keeps it off by default) is not
    widening it, nor is naming a destination that one of its own covers."""
    origin = profile.provenance.get("network.mode", Origin("<profile>"))
    if profile.network_mode == "full":
        return [Finding(NETWORK_FULL, "network", f"network.mode: full (set by {origin})",
                        "the sandbox gets an ordinary network: any destination, any protocol")]
    if profile.network_mode != "allowlist" or (base is not None and base.network_mode == "full"):
        return []
    own = base.network_allow if base is not None else ()
    added = [entry for entry in profile.network_allow if not _covered(entry, own)]
    if not added:
        return []
    where = profile.provenance.get("network.allow", Origin("<profile>"))
    return [Finding(NETWORK_WIDENED, "network", "allow " + ", ".join(added),
                    f"reaches beyond profile {profile.name}'s own allowlist (network.allow set by {where})")]


def _covered(text: str, own: tuple[str, ...]) -> bool:
    """Whether every destination `text` allows is allowed by one of `own`'s
    entries (same name or a wildcard above it, or a containing network; its
    ports among theirs). An entry that does not parse is not covered."""
    try:
        entry = parse_entry(text)
        theirs = [parse_entry(t) for t in own]
    except ValueError:
        return False
    return any(_within(entry, other) for other in theirs)


def _within(entry: Entry, other: Entry) -> bool:
    if not set(entry.ports) <= set(other.ports):
        return False
    if entry.network is not None and other.network is not None:
        same_version = entry.network.version == other.network.version
        return same_version and entry.network.subnet_of(other.network)  # type: ignore[arg-type]
    if entry.host is not None and other.host is not None:
        return entry.host == other.host or (other.host.startswith("*.") and entry.host.endswith(other.host[1:]))
    return False
