"""One run's risk, start to finish: its command's findings, its network's,
and the verdict under the profile and the system policy. `vectraguard run`
(and shell, and agent start) and `vectraguard check` call this same function,
so `check` gives the decision a run would get.
"""

from __future__ import annotations

import argparse

from vectraguard.config import policy, profiles
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.risk.classify import classify
from vectraguard.risk.decide import Decision, decide, network_findings
from vectraguard.risk.rules import RuleError
from vectraguard.risk.ruleset import broken, rules_of


def assess(argv: tuple[str, ...] | str, cwd: str, profile: ResolvedProfile, args: argparse.Namespace,
           sources: profiles.Sources, system_policy: policy.Policy | None) -> Decision:
    rules = rules_of(profile, system_policy)
    try:
        findings = classify(argv if isinstance(argv, str) else list(argv), rules, cwd)
    except RuleError as exc:  # an expression compiled late (the check was cached) and failed after all
        raise broken(profile, exc) from None
    findings += network_findings(profile, _without_flags(profile, args, sources))
    if system_policy is None:
        return decide(findings, profile)
    return decide(findings, profile, system_policy.get("risk.decisions"), system_policy.rule)


def _without_flags(profile: ResolvedProfile, args: argparse.Namespace, sources: profiles.Sources) -> ResolvedProfile | None:
    """The profile as its files define it, when the command line changed its network."""
    touched = bool(getattr(args, "allow", None)) or getattr(args, "network", None) is not None or any(
        item.startswith("network.") for item in getattr(args, "set", []))
    return profiles.resolve(profile.name, [], sources) if touched else None
