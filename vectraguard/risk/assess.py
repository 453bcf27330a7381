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
hooks call `check` without them. The profile as its files define it is
`decision_key.profile_without_command_line`, so that a cached decision's
key holds exactly what is compared here.
"""

from __future__ import annotations

import argparse

from vectraguard.approvals.decision_key import profile_without_command_line
from vectraguard.config import policy, profiles
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.risk.classify import classify
from vectraguard.risk.decide import Decision, decide, network_findings
from vectraguard.risk.rules import RuleError
from vectraguard.risk.ruleset import broken, rules_of


def assess(argv: tuple[str, ...] | str, cwd: str, profile: ResolvedProfile, args: argparse.Namespace,
           sources: profiles.Sources, system_policy: policy.Policy | None, *,
           within_session: bool = False) -> Decision:
    """The decision for running `argv` (an argv, or a command line) in `cwd` under
    `profile`, resolved from `sources` plus the command line. `args` (the run's
    options) is not read: what the command line did is judged by its result.

    `within_session`: `argv` runs in a running session (`exec`), whose start
    already settled the session's own options (network mode, allowlist,
    published ports): an exec changes none of them, so only the command is
    judged, by the same rules as a run's command.

    A run's decision is cached (approvals/cached_gate.py) under a key of what
    this reads (approvals/decision_key.py), and is checked against the files
    judging read (approvals/observed.py): whatever new this comes to read
    belongs in one of them."""
    del args
    rules = rules_of(profile, system_policy)
    try:
        findings = classify(argv if isinstance(argv, str) else list(argv), rules, cwd)
    except RuleError as exc:  # an expression compiled late (the check was cached) and failed after all
        raise broken(profile, exc) from None
    if not within_session:
        findings += network_findings(profile, profile_without_command_line(profile, sources))
    if system_policy is None:
        return decide(findings, profile)
    return decide(findings, profile, system_policy.get("risk.decisions"), system_policy.rule)
