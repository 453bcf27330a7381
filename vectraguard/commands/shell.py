"""`vectraguard sandbox shell [OPTIONS] [-- SHELL ARGS]`: an interactive, recorded sandbox."""

from __future__ import annotations

import argparse
import os

from vectraguard import errors
from vectraguard.commands import run

# bash when the image has it, else the POSIX shell; "$@" are the SHELL ARGS after `--`
# (the README's `sandbox shell [-- SHELL ARGS]`: `-- -c 'make test'` runs `bash -c 'make test'`).
PICK_SHELL = 'if command -v bash >/dev/null; then exec bash "$@"; else exec sh "$@"; fi'


def shell_command(shell_args: list[str]) -> list[str]:
    """The sandbox's argv: the shell, interactive (`-i`) when given no arguments,
    else given exactly `shell_args` (ARGS are never read as a program to run)."""
    return ["/bin/sh", "-c", PICK_SHELL, "vectraguard-shell", *(shell_args or ["-i"])]


def main(args: argparse.Namespace) -> int:
    if not (os.isatty(0) and os.isatty(1)):
        raise errors.UsageError("vectraguard: sandbox shell needs a terminal on stdin and stdout",
                                hint="for a command without a terminal, use `vectraguard run -- CMD`")
    args.command = shell_command(list(args.command or []))
    return run.launch(args, run.SHELL)
