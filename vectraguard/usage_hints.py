"""Hints for command lines written with `docker run` / `podman run` habits.

People come to `vectraguard run` with their fingers trained on `docker run -p
8080:3000 -v /src:/dst -e NAME=value -it --rm`. Each of those means something
here too, under another name (or is always so); this module says which. It is
imported only when a command line has failed to parse (cli.py) or a profile
name was refused (config/profiles.py), so a run that parses pays nothing for it.

Sources: the options of docker-run(1) and podman-run(1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# `-p 8080:3000`, `-p 127.0.0.1:8080:3000`, `-p [::1]:8080:3000`: a port mapping, never a profile name.
_PORT_MAPPING = re.compile(r"(\[[0-9a-fA-F:.]+\]:|[0-9.]+:)?\d+:\d+(/(tcp|udp))?")

# An option of `docker run` (and `podman run`) -> what a run of Vectra Guard says for it.
_RUN_HABITS = {
    "-v": "a host directory is mounted with --mount SRC:DST[:ro|rw] (read-only unless :rw)",
    "--volume": "a host directory is mounted with --mount SRC:DST[:ro|rw] (read-only unless :rw)",
    "-e": "an environment variable is set with --env NAME[=VALUE]",
    "--env-file": "environment variables are set one by one with --env NAME[=VALUE]",
    "-i": "a run gets your terminal when it has one; an interactive shell: vectraguard sandbox shell",
    "-t": "a run gets your terminal when it has one; an interactive shell: vectraguard sandbox shell",
    "-it": "a run gets your terminal when it has one; an interactive shell: vectraguard sandbox shell",
    "-ti": "a run gets your terminal when it has one; an interactive shell: vectraguard sandbox shell",
    "--interactive": "a run gets your terminal when it has one; an interactive shell: vectraguard sandbox shell",
    "--tty": "a run gets your terminal when it has one; an interactive shell: vectraguard sandbox shell",
    "--rm": "sandboxes are always removed when their command ends: leave --rm out",
    "-d": "a run stays in the foreground (its sandbox ends with it); running sandboxes: vectraguard ps",
    "--detach": "a run stays in the foreground (its sandbox ends with it); running sandboxes: vectraguard ps",
    "-w": "the working directory is set with --workdir PATH",
    "--name": "a sandbox is named by its session id (vectraguard ps shows it)",
}

# Commands whose options are a run's (cli._add_run_options).
_RUN_COMMANDS = ("vectraguard run", "vectraguard sandbox run", "vectraguard sandbox shell", "vectraguard agent start")


def profile_name_hint(name: str) -> str | None:
    """For `-p NAME` where NAME is a port mapping (`docker run -p 8080:3000`): the option meant; else None."""
    if _PORT_MAPPING.fullmatch(name):
        return (f"-p is --profile here; a port is published with --publish {name} "
                "(e.g. vectraguard run --publish 8080:3000 -- npm run dev)")
    return None


def run_option_hint(prog: str, unknown: Sequence[str]) -> str | None:
    """For options of `docker run` given to a run (`prog`: the parser's prog, e.g. "vectraguard run"):
    what each means here, joined with "; "; None when no word of `unknown` is such a habit."""
    if prog not in _RUN_COMMANDS:
        return None
    said: list[str] = []
    for word in unknown:
        habit = _RUN_HABITS.get(word.split("=", 1)[0])
        if habit is not None and f"{word.split('=', 1)[0]}: {habit}" not in said:
            said.append(f"{word.split('=', 1)[0]}: {habit}")
    return "; ".join(said) or None


def misplaced_option(options: Sequence[str], commands: Sequence[str]) -> tuple[str, str] | None:
    """For `vectraguard --set k=v run ...` (an option of a command given before the command, so that its
    value was taken for the command's name): what went wrong and an example of the right order; None when
    that is not it. `options`: the words before `--`; `commands`: the command names."""
    for index, word in enumerate(options):
        if word in commands:
            return None  # the command came first: not this mistake
        if not word.startswith("-") or word in ("-q", "--quiet", "--version", "-h", "--help") \
                or re.fullmatch(r"-v+|--verbose", word):
            continue
        name, equals, inline = word.partition("=")
        at = next((i for i in range(index + 1, len(options)) if options[i] in commands), None)
        command = "run" if at is None else options[at]
        if at is not None and command != "run" and at + 1 < len(options) and not options[at + 1].startswith("-"):
            command += f" {options[at + 1]}"  # sandbox shell, agent start
        value = options[index + 1] if not equals and index + 1 < len(options) else ""
        given = f"{name}={inline}" if equals else f"{name} {value}" if value and value != command else name
        said = f"{name} is an option of the command (run, sandbox shell, ...), not of vectraguard itself: give it " \
               "after the command"
        return said, f"e.g. vectraguard {command} {given} -- ..."
    return None
