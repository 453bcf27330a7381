"""`vectraguard check [--json] [OPTIONS] -- CMD`: the decision a run would get, without running.

For agents' pre-execution hooks (contrib/agent-hooks/). It resolves the same
profile with the same options as `run`, judges the command the same way,
and honours remembered approvals; it never asks, and nothing is started.
A single argument after `--` is a command line, as an agent's Bash tool
gives it (`check -- 'rm -rf "$D"'`); several are an argv.

Every decision is recorded on the audit chain before it is given: a
`checked` record (audit/checked.py) with the agent (`--agent`, else
$VECTRAGUARD_AGENT), the hook's session id (`--hook-session`), the
directory, the command, the decision, its findings, the profile and its
digest, and the remembered approval that allowed it, if one did. If the
record cannot be written, no decision is given (exit 125).

Exit status: 0 allow, 1 ask, 2 deny, 125 when the decision cannot be made
(bad configuration, untrusted project file, unwritable audit store, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vectraguard import errors, output
from vectraguard.audit.checked import Checked, record_checked
from vectraguard.output import printable
from vectraguard.risk.judged import judge

EXIT_FOR = {"allow": 0, "ask": 1, "deny": 2}
MAX_AGENT = 64  # characters of an agent name
MAX_HOOK_SESSION = 200  # characters of a hook's session id


def main(args: argparse.Namespace) -> int:
    if args.agent is not None:
        agent = label(args.agent, "--agent", MAX_AGENT)
    else:  # as `run` reads it: unset or empty is no agent
        agent = label(os.environ.get("VECTRAGUARD_AGENT") or None, "$VECTRAGUARD_AGENT", MAX_AGENT)
    hook_session = label(args.hook_session, "--hook-session", MAX_HOOK_SESSION)
    judged = judge(args, "check")
    decision = judged.decision
    remembered = judged.remembered() if decision.verdict == "ask" else None
    verdict = "allow" if remembered is not None else decision.verdict
    result: dict[str, Any] = {
        "decision": verdict, "command": judged.text(), "cwd": judged.cwd, "profile": judged.profile.name,
        "profile_digest": judged.digest, "findings": [j.as_dict() for j in decision.judged],
        "remembered": None if remembered is None else {"id": remembered.id, "expires_at": remembered.expires_at},
        "reason": ("remembered approval " + remembered.id) if remembered is not None else decision.summary(),
    }
    result["audit_id"] = record_checked(Checked(
        agent=agent, hook_session=hook_session, command=judged.command, cwd=judged.cwd,
        profile=judged.profile.name, profile_digest=judged.digest, decision=verdict, exit_status=EXIT_FOR[verdict],
        findings=result["findings"], remembered=result["remembered"], reason=result["reason"]),
        args.env, args.set)
    if args.json:
        output.print_json(result)
    else:
        _print(result)
    return EXIT_FOR[verdict]


def label(value: str | None, option: str, limit: int, verb: str = "check") -> str | None:
    """An agent name or hook session id as recorded: 1 to `limit` printable characters."""
    if value is None:
        return None
    if not 0 < len(value) <= limit or not value.isprintable() or value.strip() != value:
        raise errors.UsageError(
            f"vectraguard {verb}: {option} '{printable(value[:limit])}' is not 1 to {limit} printable characters "
            "without leading or trailing spaces", hint="it is recorded in the audit trail as given")
    return value


def _print(result: dict[str, Any]) -> None:
    print(f"{result['decision']}: {printable(result['command'])} (profile {result['profile']})")
    for finding in result["findings"]:
        print(f"  {finding['class']} ({finding['rule']}): {printable(finding['matched'])} — {finding['reason']}; "
              f"{finding['decision']} by {finding['by']}")
    if result["remembered"]:
        print(f"  approved earlier: remembered approval {result['remembered']['id']}")
    sys.stdout.flush()
