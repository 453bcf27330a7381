"""`vectraguard paths [--json]`: the directories in effect for this user, and why.

A command of its own rather than a section of `doctor`: it only reads the
environment (no Podman, no probes), so it answers at once and scripts can
use it (`vectraguard paths --json`), where doctor checks the host. Every
path comes from vectraguard/paths.py, the one place they are computed.
"""

from __future__ import annotations

import argparse

from vectraguard import output, paths


def main(args: argparse.Namespace) -> int:
    places = paths.places()
    if args.json:
        # name, path (absolute), set_by (the variable, or "default"), what.
        output.print_json([{"name": p.name, "path": str(p.path), "set_by": p.set_by, "what": p.what}
                           for p in places])
    else:
        output.print_table([{"name": p.name, "path": str(p.path), "set by": p.set_by, "holds": p.what}
                            for p in places], ["name", "path", "set by", "holds"])
    return 0
