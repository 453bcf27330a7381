"""Shell completion scripts for bash, zsh and fish, generated from the real
parser (cli.build_parser) by shtab (https://github.com/iterative/shtab).

shtab completes commands, subcommands, options and choices from the parser
alone. What it cannot know — which profiles and sessions exist — the script
asks for while the user types, through `vectraguard completion --list KIND`
(completion/listing.py). Which arguments take those is decided here, by what
the parser says about them, so cli.py stays free of completion concerns and
a new command's `-p/--profile` or session ID completes without changes here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

SHELLS = ("bash", "zsh", "fish")
PROG = "vectraguard"

# Tuple of (command path, action) -> how it completes.
Walk = Iterator[tuple[tuple[str, ...], argparse.Action]]


def script(shell: str) -> str:
    """The completion script for `shell` (one of SHELLS), as text to source or install."""
    import shtab

    from vectraguard import cli

    parser = cli.build_parser()
    for path, action in _actions(parser, ()):
        kind = dynamic_kind(path, action)
        if kind is not None:
            # fish gives every candidate the option's description unless each has its own.
            action.complete = _listing(kind, described=shell == "fish")  # type: ignore[attr-defined]  # shtab reads it
        elif action.dest in FILE_ARGUMENTS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.dest in DIRECTORY_ARGUMENTS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    text = str(shtab.complete(parser, shell=shell))
    if shell == "zsh":
        # shtab registers the function when the script is eval'ed and runs it when
        # autoloaded from $fpath; `source <(vectraguard completion zsh)`, as with
        # podman, is a third way in (zsh_eval_context "file") that must register too.
        text = text.replace("[[ $zsh_eval_context[-1] == eval ]]", "[[ $zsh_eval_context[-1] == (eval|file) ]]")
    if shell == "fish":
        # shtab turns off file names for every word (`complete -f`); after `--` come the sandboxed
        # command and its arguments, which are mostly paths (bash and zsh fall back to paths there).
        text += f"\ncomplete -c {PROG} -n 'contains -- -- (commandline -opc)' -F\n"
    return text


def dynamic_kind(path: tuple[str, ...], action: argparse.Action) -> str | None:
    """A kind of completion/listing.py ('profiles', 'agents', 'sessions', 'recorded', 'running') when
    `action` (under the subcommand `path`, e.g. ("logs", "show")) names one, else None."""
    if action.dest == "name" and path in AGENT_NAMED:
        return "agents"
    if action.dest == "profile" or (action.dest == "name" and path in PROFILE_NAMED):
        return "profiles"
    if not action.option_strings and action.metavar == "ID" and path[:1] not in NOT_SESSION_IDS:
        return "running" if path in RUNNING_ONLY else "recorded" if path in RECORDED_ONLY else "sessions"
    return None


# Positional NAME arguments that are profile names, and those that are agents' (profiles with an `agent` section).
PROFILE_NAMED = {("profile", "show")}
AGENT_NAMED = {("agent", "start")}
# Commands whose ID is a running session's (sessions/running.py): ended ones would only be refused.
RUNNING_ONLY = {("stop",), ("exec",)}
# Commands whose ID is a session with a terminal recording: others have nothing to play.
RECORDED_ONLY = {("logs", "replay")}
# Commands whose ID is not a session's (approvals revoke takes approval ids).
NOT_SESSION_IDS = {("approvals",)}
# Arguments that are paths on the host.
FILE_ARGUMENTS = {"files", "head_file", "output"}
DIRECTORY_ARGUMENTS = {"dir"}


def _listing(kind: str, described: bool = False) -> dict[str, Any]:
    """A shtab completer that runs the hidden listing command (`described`: each word with its own
    description, for fish). Its errors go nowhere: a missing `vectraguard` or store must not scribble
    on the line."""
    import shtab

    return dict(shtab.cmd(f"{PROG} completion --list {kind}{' --described' if described else ''} 2>/dev/null"))


def _actions(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Walk:
    """Every action of `parser` and of its subcommands, with the subcommand path it belongs to."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*path, name))
        else:
            yield path, action
