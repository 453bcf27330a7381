"""`vectraguard agent start NAME [OPTIONS] [-- ARGS]` and `agent list`.

An agent definition is a profile with an `agent` section (shipped ones in
profiles/, more through the same layers as any profile). Starting one is a
sandbox session like `run`, with the agent's command, the repository as a
workspace whose changes are kept in a layer for review (overlay mode), a persistent
home volume, the agent's name in the audit record, and a recording. With a
terminal it is interactive, like `sandbox shell`; without one (scripts, CI)
its output is piped and still recorded.
"""

from __future__ import annotations

import argparse
import os
import shlex

from vectraguard import errors, output
from vectraguard.commands import run
from vectraguard.config import profiles


def main(args: argparse.Namespace) -> int:
    if args.agent_command == "list":
        return list_agents(args)
    return start(args)


def start(args: argparse.Namespace) -> int:
    if args.agent is not None and args.agent != args.name:
        raise errors.UsageError(f"vectraguard: agent start {args.name} records the session under {args.name!r}; "
                                f"--agent {args.agent!r} contradicts it")
    args.profile, args.agent = args.name, args.name
    terminal = os.isatty(0) and os.isatty(1)
    return run.launch(args, run.Session(terminal=terminal, recorded=True, agent=True))


def refuse_unknown(name: str, sources: profiles.Sources) -> None:
    """An agent name that names no profile: ConfigError suggesting among the agents
    (`agent start claude`: claude-code), not among every profile. Called by the run's
    prepare (commands/run.py), so that the refusal is recorded like any other."""
    names = profiles.available(sources)
    if name in names:
        return
    from vectraguard.suggest import did_you_mean

    agents = [known for known in names if _is_agent(known, sources)]
    raise errors.ConfigError(f"vectraguard: unknown agent {name!r}{did_you_mean(name.lower(), agents)}",
                             hint=f"available agents: {', '.join(agents) or '(none)'}; `vectraguard agent list` "
                                  "describes them")


def _is_agent(name: str, sources: profiles.Sources) -> bool:
    try:
        return profiles.resolve(name, [], sources).agent is not None
    except errors.VGError:
        return False


def list_agents(args: argparse.Namespace) -> int:
    sources = profiles.Sources.for_directory(os.getcwd(), ignore_project=args.ignore_project)
    rows = []
    for name, files in profiles.available(sources).items():
        try:
            profile = profiles.resolve(name, [], sources)
        except errors.VGError as exc:
            # A broken file should not hide the others; it may or may not be an agent.
            rows.append({"name": name, "command": "", "image": "", "network": "",
                         "description": f"(invalid: {exc.message})", "defined in": ", ".join(files)})
            continue
        if profile.agent is None:
            continue
        rows.append({
            "name": name,
            "command": shlex.join(profile.agent.command) or "(given after --)",
            "image": profile.image,
            "network": ", ".join(profile.network_allow) if profile.network_mode == "allowlist" else profile.network_mode,
            "description": profile.description,
            "defined in": ", ".join(files),
        })
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(rows, ["name", "command", "network", "description"])
    return 0
