"""`vectraguard check [--json] [OPTIONS] -- CMD`: the decision a run would get, without running.

For agents' pre-execution hooks (contrib/agent-hooks/). It resolves the same
profile with the same options as `run`, judges the command the same way,
and honours remembered approvals; it never asks, and nothing is started or
recorded. A single argument after `--` is a command line, as an agent's
Bash tool gives it (`check -- 'rm -rf "$D"'`); several are an argv.

Exit status: 0 allow, 1 ask, 2 deny, 125 when the decision cannot be made
(bad configuration, untrusted project file, ...).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vectraguard import output
from vectraguard.output import printable
from vectraguard.risk.judged import judge

EXIT_FOR = {"allow": 0, "ask": 1, "deny": 2}


def main(args: argparse.Namespace) -> int:
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
    if args.json:
        output.print_json(result)
    else:
        _print(result)
    return EXIT_FOR[verdict]


def _print(result: dict[str, Any]) -> None:
    print(f"{result['decision']}: {printable(result['command'])} (profile {result['profile']})")
    for finding in result["findings"]:
        print(f"  {finding['class']} ({finding['rule']}): {printable(finding['matched'])} — {finding['reason']}; "
              f"{finding['decision']} by {finding['by']}")
    if result["remembered"]:
        print(f"  approved earlier: remembered approval {result['remembered']['id']}")
    sys.stdout.flush()
