"""`vectraguard completion bash|zsh|fish`: print the shell's completion script.

`vectraguard completion --list KIND [--described]` (hidden) prints the words the
scripts complete profile names and session ids with, one a line
(completion/listing.py).
"""

from __future__ import annotations

import argparse
import sys

from vectraguard import errors


def main(args: argparse.Namespace) -> int:
    if args.list is not None:
        from vectraguard.completion import listing

        # Always status 0 and nothing on stderr: a shell calls this at every Tab press.
        for word in listing.words(args.list, described=args.described):
            print(word)
        return 0
    if args.shell is None:
        raise errors.UsageError("vectraguard completion: name the shell: bash, zsh or fish",
                                hint="e.g. source <(vectraguard completion bash)")
    from vectraguard.completion import scripts

    sys.stdout.write(scripts.script(args.shell))
    return 0
