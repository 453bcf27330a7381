"""`vectraguard trust [DIR] | untrust [DIR] | trust list [--json]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from vectraguard import errors, output
from vectraguard.config import profiles, project, trust, trust_review
from vectraguard.config.layers import Layer, load_bytes
from vectraguard.terminal.escape import printable


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
    known = trust.load().get(str(found.path))
    if known is not None and known.holds(trust.digest(raw)):
        print(f"{found.path} is already trusted in this version (sha256 {trust.digest(raw)[:16]}…)")
    else:
        try:
            _show_changes(found.path, raw, layer, known)
            sys.stdout.flush()
        except BrokenPipeError:
            # `trust | head`: what it shows is what is trusted, and it was not all read.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise errors.UsageError(f"vectraguard: {found.path} was not trusted: what changed was not read to the "
                                    "end (the output's reader went away)",
                                    hint="run `vectraguard trust` again and read it all (e.g. `| less`, then quit "
                                    "at the end)") from None
    entry = trust.trust(found.path, raw)
    print(f"trusted {found.path} (sha256 {entry.sha256[:16]}…)")
    defines = printable(", ".join(names)) or "nothing"
    print(f"  default profile: {printable(sources.default_name())}; defines: {defines}")
    print("  any change to the file revokes this trust (versions trusted before stay trusted); "
          "the system policy still applies")
    return 0


def _show_changes(path: Path, raw: bytes, layer: Layer, known: trust.TrustEntry | None) -> None:
    """What this version changes: against the last trusted one, or against no project file."""
    old_raw = trust.trusted_content(known.sha256) if known else None
    old = _old_layer(path, old_raw)
    if known is None:
        print(f"first trust of {path}: what it changes from your own profiles (without a project file):")
    elif old is None:
        print(f"{path} changed since you trusted it ({known.trusted_at}); that version's content is not kept, "
              "so it is compared with your own profiles (without a project file):")
    else:
        print(f"{path} changed since you trusted it ({known.trusted_at}):")
    reviews = trust_review.review(layer, old)
    for item in reviews:
        note = f" ({printable(item.note)})" if item.note else ""
        print(f"  profile {printable(item.name)}{note}:")
        for change in sorted(item.changes, key=lambda c: not c.widens):
            print(f"    {WIDENS if change.widens else NARROWS}{printable(change.text)}")
    if not any(item.changes for item in reviews):
        print("  (nothing a sandbox gets changes)")
    # Every line the file says, whatever the summary knows how to read: on a first
    # trust (or with the trusted content lost) the diff against an empty file.
    if old_raw is not None:
        print("  the file, line by line:")
        diff = trust_review.text_diff(_text(old_raw), _text(raw), str(path))
    else:
        print("  the whole file (no trusted version to compare with):")
        diff = trust_review.text_diff("", _text(raw), str(path), before="nothing trusted")
    for line in diff:
        print(f"    {printable(line)}")


WIDENS = "WIDENS  "
NARROWS = "narrows "  # config/widening.py marks a change as not widening only when it is known to narrow


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _old_layer(path: Path, raw: bytes | None) -> Layer | None:
    if raw is None:
        return None
    try:
        return load_bytes(raw, path, "project")
    except errors.VGError:
        return None  # valid when trusted, but the schema has changed since: compared as a first trust


def untrust(args: argparse.Namespace) -> int:
    start = os.path.realpath(args.dir or os.getcwd())
    found = project.find(start)
    if found is not None:
        path: Path | None = found.path
    else:
        # No file now (a branch without it): forget the one runs from here would use when it is back.
        known = trust.load()
        path = next((place for place in project.places(start) if str(place) in known), None)
    if path is not None and trust.untrust(path):
        print(f"no longer trusted: {path}")  # every version: trust.untrust forgets them all
    else:
        print(f"was not trusted: {path or f'no {project.FILE_NAME} in {start} or above (up to the repository root)'}")
    return 0


def list_trusted(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for entry in trust.load().values():
        try:
            current = trust.digest(Path(entry.path).read_bytes())
            state = ("trusted" if current == entry.sha256 else
                     "trusted (an earlier version)" if entry.holds(current) else "changed (not trusted)")
        except OSError:
            state = "missing"
        rows.append({"path": entry.path, "sha256": entry.sha256, "trusted at": entry.trusted_at, "state": state,
                     "versions": len(entry.versions)})
    if args.json:
        output.print_json(rows)
    else:
        output.print_table([{**r, "sha256": r["sha256"][:16]} for r in rows],
                           ["path", "sha256", "trusted at", "state", "versions"])
    return 0
