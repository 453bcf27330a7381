"""`vectraguard sandbox shell [OPTIONS] [-- SHELL ARGS]`: an interactive, recorded sandbox."""

from __future__ import annotations

import argparse
import os

from vectraguard import errors
from vectraguard.commands import run

# bash when the image has it, else the POSIX shell.
DEFAULT_SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null; then exec bash -i; else exec sh -i; fi"]


def main(args: argparse.Namespace) -> int:
    if not (os.isatty(0) and os.isatty(1)):
        raise errors.UsageError("vectraguard: sandbox shell needs a terminal on stdin and stdout",
                                hint="for a command without a terminal, use `vectraguard run -- CMD`")
    if not args.command:
        args.command = DEFAULT_SHELL
    return run.launch(args, run.SHELL)
