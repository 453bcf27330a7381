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
import os
import shlex
import sys
from typing import Any

from vectraguard import errors, output
from vectraguard.approvals import store
from vectraguard.approvals.prompt import printable
from vectraguard.config import flags, policy, profiles
from vectraguard.config.problems import raise_if_any
from vectraguard.config.resolved import digest
from vectraguard.risk.assess import assess

EXIT_FOR = {"allow": 0, "ask": 1, "deny": 2}


def main(args: argparse.Namespace) -> int:
    if not args.command or not any(word.strip() for word in args.command):
        raise errors.UsageError("vectraguard check: no command given",
                                hint="vectraguard check [--json] -- CMD [ARG...]   or   vectraguard check -- 'CMD LINE'")
    cwd = os.path.realpath(os.getcwd())
    # One word is a line too: a shell reads `rm${IFS}-rf${IFS}/` as three words.
    command: tuple[str, ...] | str = args.command[0] if len(args.command) == 1 else tuple(args.command)
    sources = profiles.Sources.for_directory(cwd, ignore_project=args.ignore_project)
    profile = profiles.resolve(args.profile or sources.default_name(), [flags.flags_layer(args)], sources)
    system_policy = policy.load()
    raise_if_any(policy.check_profile(profile, system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    decision = assess(command, cwd, profile, args, sources, system_policy)
    profile_digest = digest(profile)
    argvs = _argvs(command)
    remembered = None
    if decision.verdict == "ask":
        remembered = next(filter(None, (store.find(argv, cwd, profile_digest) for argv in argvs)), None)
    verdict = "allow" if remembered is not None else decision.verdict
    result: dict[str, Any] = {
        "decision": verdict, "command": command if isinstance(command, str) else shlex.join(command),
        "cwd": cwd, "profile": profile.name, "profile_digest": profile_digest,
        "findings": [j.as_dict() for j in decision.judged],
        "remembered": None if remembered is None else {"id": remembered.id, "expires_at": remembered.expires_at},
        "reason": ("remembered approval " + remembered.id) if remembered is not None else decision.summary(),
    }
    if args.json:
        output.print_json(result)
    else:
        _print(result)
    return EXIT_FOR[verdict]


def _argvs(command: tuple[str, ...] | str) -> list[tuple[str, ...]]:
    """The argvs a remembered approval for this command may be bound to: a
    line runs as `vectraguard run -- sh -c LINE`, or, when it is plain words,
    as those words."""
    if not isinstance(command, str):
        return [command]
    argvs: list[tuple[str, ...]] = [("sh", "-c", command)]
    try:
        words = tuple(shlex.split(command))
    except ValueError:
        return argvs
    if words and shlex.join(words) == command:  # nothing a shell would expand or redirect
        argvs.append(words)
    return argvs


def _print(result: dict[str, Any]) -> None:
    print(f"{result['decision']}: {printable(result['command'])} (profile {result['profile']})")
    for finding in result["findings"]:
        print(f"  {finding['class']} ({finding['rule']}): {printable(finding['matched'])} — {finding['reason']}; "
              f"{finding['decision']} by {finding['by']}")
    if result["remembered"]:
        print(f"  approved earlier: remembered approval {result['remembered']['id']}")
    sys.stdout.flush()
