"""The gate of a run, remembered: a run judged before, with nothing it was
judged on changed since, goes ahead on the earlier decision without the
risk judge being imported or run (~30 ms of a ~150 ms run).

`settle` is what `prepare` (commands/run.py) calls in place of
`risk.assess.assess` followed by `gate.settle`; on a miss it calls exactly
those, watching what judging reads (approvals/observed.py).

What is reused: only an outcome no person had a say in — a run with no
findings, one the profile allows, one a remembered approval covers, one
`--yes` approves (as the policy permits). Never one that consulted the
terminal: a question is always asked again, and an approval "because there
is no terminal" depends on whether there is one. A refusal (deny, declined,
no terminal) is not cached either: it starts no sandbox, so there is no time
worth saving, and its message and details are always those of a fresh
judgement.

An entry is reused when, all at once:
- its key (approvals/decision_key.py: argv, directory, profile and its
  provenance, the profile as its files define it, policy, `--yes`, the
  approvals store's generation, the judge's code) is the run's;
- every look judging made gives the same result now (the scripts the line
  runs, their SHA-256, symbolic links, makefiles, `~`);
- now is between when it was judged and `until`: at most MAX_AGE later, and
  before the remembered approval it rests on expires (a clock set back is a miss).
A decision is stored only when the key computed after judging is the one
computed before (nothing changed while judging).

The audit entries of a reused decision are the same as a fresh judgement's —
decision, by, verdict, findings, the files run, the remembered approval —
with a fresh "user" and "at": the audit trail neither shows nor depends on
the cache. (`-vv` says so in the diagnostics.)

Anyone who can write the user's cache directory can plant a decision; that
is the user (and root), who can as well write their approvals store and
their profiles, which decide as much. No sandbox can mount it (paths.own_state).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from vectraguard import diag
from vectraguard.approvals import decision_cache, decision_key, observed
from vectraguard.audit import record
from vectraguard.config import profiles
from vectraguard.config.policy import Policy
from vectraguard.config.resolved import ResolvedProfile, digest

if TYPE_CHECKING:
    from vectraguard.approvals.gate import Settled

MAX_AGE = 3600.0  # seconds: how long a decision is reused at most, whatever else holds


def settle(argv: tuple[str, ...], cwd: str, profile: ResolvedProfile, sources: profiles.Sources,
           system_policy: Policy | None, writable: tuple[str, ...], *, yes: bool,
           args: argparse.Namespace, within_session: bool = False) -> tuple[dict[str, Any], ...]:
    """The audit entries of a run that may go ahead, or PolicyError — as
    `gate.settle(assess(...), gate.Run(...), yes=yes, policy=system_policy)` would give.

    `writable` lists the run's read-write mounts ("host path -> sandbox
    path"), for the question; `args` is passed on to `assess`, which does not
    read it (a key part if it ever does). `within_session`: an exec's command,
    judged without the session's own options (risk/assess.py); a key part, so
    that an exec's decision is never a run's."""
    key = decision_key.key(argv, cwd, profile, sources, system_policy, yes=yes, within_session=within_session)
    if key is not None:
        reused = _reuse(key)
        if reused is not None:
            diag.debug(f"gate decision reused from the cache ({key[:12]})")
            return reused
    judged_at = time.time()
    with observed.watching() as notes:
        settled = _judge(argv, cwd, profile, sources, system_policy, writable, yes=yes, args=args,
                         within_session=within_session)
    until = min(judged_at + MAX_AGE, settled.until if settled.until is not None else float("inf"))
    if key is not None and notes.complete and not settled.asked and time.time() < until \
            and decision_key.key(argv, cwd, profile, sources, system_policy, yes=yes,
                                 within_session=within_session) == key:
        decision_cache.store(key, decision_cache.Entry(settled.entries, notes.items(), judged_at, until))
    return settled.entries


def _reuse(key: str) -> tuple[dict[str, Any], ...] | None:
    entry = decision_cache.lookup(key)
    if entry is None or not entry.cached_at <= time.time() < entry.until or not observed.unchanged(entry.notes):
        return None
    user, _ = record.who()
    at = record.now()
    # In place, so that each entry keeps its keys' order: the record reads as a fresh one.
    return tuple({name: user if name == "user" else at if name == "at" else value for name, value in item.items()}
                 for item in entry.entries)


def _judge(argv: tuple[str, ...], cwd: str, profile: ResolvedProfile, sources: profiles.Sources,
           system_policy: Policy | None, writable: tuple[str, ...], *, yes: bool,
           args: argparse.Namespace, within_session: bool) -> Settled:
    from vectraguard.approvals import gate  # the judge: imported on a miss only
    from vectraguard.risk.assess import assess

    decision = assess(argv, cwd, profile, args, sources, system_policy, within_session=within_session)
    run = gate.Run(argv, cwd, profile, digest(profile), writable, gate.network_summary(profile))
    return gate.settled(decision, run, yes=yes, policy=system_policy)
