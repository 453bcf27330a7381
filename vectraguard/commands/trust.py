"""`vectraguard trust [DIR] | untrust [DIR] | trust list [--json]`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vectraguard import errors, output
from vectraguard.config import profiles, project, trust
from vectraguard.config.layers import load_bytes


def main(args: argparse.Namespace) -> int:
    if args.command_name == "untrust":
        return untrust(args)
    if args.dir == "list":
        return list_trusted(args)
    return trust_project(args)


def _find(directory: str | None) -> project.ProjectFile:
    start = os.path.realpath(directory or os.getcwd())
    if not os.path.isdir(start):
        raise errors.UsageError(f"vectraguard: {directory} is not a directory")
    found = project.find(start)
    if found is None:
        raise errors.ConfigError(f"vectraguard: no {project.FILE_NAME} in {start} or above (up to the repository root)")
    return found


def trust_project(args: argparse.Namespace) -> int:
    found = _find(args.dir)
    raw = project.read_checked(found)
    # Only a valid file can be trusted; its profiles must resolve, too.
    layer = load_bytes(raw, found.path, "project")
    project.refuse_host_only_keys(layer)
    sources = profiles.Sources(layer)
    names = list(layer.data.get("profiles", {}))
    for name in names:
        profiles.resolve(name, [], sources)
    entry = trust.trust(found.path, raw)
    print(f"trusted {found.path} (sha256 {entry.sha256[:16]}…)")
    print(f"  default profile: {sources.default_name()}; defines: {', '.join(names) or 'nothing'}")
    print("  any change to the file revokes this trust; the system policy still applies")
    return 0


def untrust(args: argparse.Namespace) -> int:
    start = Path(os.path.realpath(args.dir or os.getcwd()))
    found = project.find(str(start))
    path = found.path if found else start / project.FILE_NAME
    if trust.untrust(path):
        print(f"no longer trusted: {path}")
    else:
        print(f"was not trusted: {path}")
    return 0


def list_trusted(args: argparse.Namespace) -> int:
    rows = []
    for entry in trust.load().values():
        try:
            current = trust.digest(Path(entry.path).read_bytes())
            state = "trusted" if current == entry.sha256 else "changed (not trusted)"
        except OSError:
            state = "missing"
        rows.append({"path": entry.path, "sha256": entry.sha256, "trusted at": entry.trusted_at, "state": state})
    if args.json:
        output.print_json(rows)
    else:
        output.print_table([{**r, "sha256": r["sha256"][:16]} for r in rows], ["path", "sha256", "trusted at", "state"])
    return 0
