"""One run's risk, start to finish: its command's findings, its network's,
and the verdict under the profile and the system policy. `vectraguard run`
(and shell, and agent start) and `vectraguard check` call this same function,
so `check` gives the decision a run would get.

The network is judged as resolved, not by the flags that shaped it:
whenever the command-line layer set anything at all (any key, by any flag:
no list of spellings can be complete), the profile is resolved a second
time without that layer, and whatever the command line reaches beyond it
(`--allow`, `--network`, `--set network=...`, `--set network.allow+=...`)
is a finding. Without flags the profile is its files' and the second
resolution (2-4 ms, bench/resolve_overhead's layers) is skipped: agents'
hooks call `check` without them.
"""

from __future__ import annotations

import argparse

from vectraguard import errors
from vectraguard.config import policy, profiles
from vectraguard.config.flags import COMMAND_LINE
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.risk.classify import classify
from vectraguard.risk.decide import Decision, decide, network_findings
from vectraguard.risk.rules import RuleError
from vectraguard.risk.ruleset import broken, rules_of


def assess(argv: tuple[str, ...] | str, cwd: str, profile: ResolvedProfile, args: argparse.Namespace,
           sources: profiles.Sources, system_policy: policy.Policy | None) -> Decision:
    """The decision for running `argv` (an argv, or a command line) in `cwd` under
    `profile`, resolved from `sources` plus the command line. `args` (the run's
    options) is not read: what the command line did is judged by its result."""
    del args
    rules = rules_of(profile, system_policy)
    try:
        findings = classify(argv if isinstance(argv, str) else list(argv), rules, cwd)
    except RuleError as exc:  # an expression compiled late (the check was cached) and failed after all
        raise broken(profile, exc) from None
    findings += network_findings(profile, _without_command_line(profile, sources))
    if system_policy is None:
        return decide(findings, profile)
    return decide(findings, profile, system_policy.get("risk.decisions"), system_policy.rule)


def _without_command_line(profile: ResolvedProfile, sources: profiles.Sources) -> ResolvedProfile | None:
    """The profile as its files define it (trusted project file included);
    None when it does not resolve without the command line's values, so that
    all of its network counts as the command line's. Every key a layer sets
    or appends to has an origin (config/merge.py): none from the command
    line means the command line changed nothing."""
    if not any(origin.source == COMMAND_LINE for origin in profile.provenance.values()):
        return profile
    try:
        return profiles.resolve(profile.name, [], sources)
    except errors.ConfigError:
        return None
