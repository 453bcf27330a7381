"""`vectraguard profile list | show NAME [--explain] [--json] | validate [FILE...]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from vectraguard import errors, output, paths
from vectraguard.config import merge, policy, profiles, project, resolved
from vectraguard.config.layers import load_file
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile, as_dict

EXIT_INVALID = 1


def main(args: argparse.Namespace) -> int:
    if args.profile_command == "list":
        return list_profiles(args)
    if args.profile_command == "show":
        return show(args)
    return validate(args)


def list_profiles(args: argparse.Namespace) -> int:
    sources = _sources(args)
    rows = []
    for name, files in profiles.available(sources).items():
        try:
            description = profiles.resolve(name, [], sources).description
        except errors.VGError as exc:
            description = f"(invalid: {exc.message})"
        rows.append({"name": name, "description": description, "defined in": ", ".join(files)})
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(rows, ["name", "description", "defined in"])
    return 0


def show(args: argparse.Namespace) -> int:
    sources = _sources(args)
    profile = _as_runs_get_it(profiles.resolve(args.name, [], sources))
    canonical = as_dict(profile)
    if args.explain:
        rows = [{"key": key, "value": _text(value), "set by": str(_origin(profile, key))}
                for key, value in _leaves(canonical, "")]
        if args.json:
            output.print_json(rows)
        else:
            _print_explained(rows)
    elif args.json:
        output.print_json({"name": profile.name, **canonical})
    else:
        for key, value in _leaves(canonical, ""):
            print(f"{key}: {_text(value)}")
    return 0


def _as_runs_get_it(profile: ResolvedProfile) -> ResolvedProfile:
    """Shipped defaults above the policy's ceilings lowered, "set by" the policy (config/ceilings.py).
    An invalid policy lowers nothing here: runs and doctor refuse and report it."""
    from vectraguard.config import ceilings

    try:
        return ceilings.lower_shipped(profile, policy.load())[0]
    except errors.VGError:
        return profile


def _print_explained(rows: list[dict[str, str]]) -> None:
    """The table fitted to the terminal (config/explain.py): the "set by" column stays in view."""
    from vectraguard import resources
    from vectraguard.config import explain

    home = os.environ.get("HOME") or None
    shipped = str(resources.profiles_dir())
    cells = [(row["key"], row["value"], explain.abbreviate(row["set by"], shipped, home)) for row in rows]
    sys.stdout.write("".join(line + "\n" for line in explain.table(cells, explain.width())))


def _sources(args: argparse.Namespace) -> profiles.Sources:
    return profiles.Sources.for_directory(os.getcwd(), ignore_project=args.ignore_project)


def _leaves(node: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "set":
            out += _leaves(value, f"{path}.")
        elif key == "set" and isinstance(value, dict):
            out += [(f"{path}.{name}", item) for name, item in value.items()] or [(path, {})]
        else:
            out.append((path, value))
    return out


def _origin(profile: ResolvedProfile, key: str) -> Origin:
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        origin = profile.provenance.get(".".join(parts[:end]))
        if origin is not None:
            return origin
    return Origin("<built-in>")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()) if value else "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files] if args.files else _known_files()
    verdicts = [_verdict(path) for path in files]
    if args.json:
        output.print_json(verdicts)
    for verdict in [] if args.json else verdicts:
        if verdict["ok"]:
            print(f"ok  {verdict['file']}")
        else:
            for line in (verdict["message"], *(f"  {d}" for d in verdict["details"])):
                print(line, file=sys.stderr)
    return EXIT_INVALID if any(not verdict["ok"] for verdict in verdicts) else 0


def _verdict(path: Path) -> dict[str, Any]:
    """`profile validate --json`'s entry for one file: file, kind (profile, project,
    policy), ok; when not ok, message (with its hint) and details, the located
    problems (what the text output prints)."""
    verdict: dict[str, Any] = {"file": str(path), "kind": _schema_for(path), "ok": True}
    try:
        _validate_one(path)
    except errors.VGError as exc:
        verdict.update(ok=False, message=exc.lines()[0], details=list(exc.details))
    return verdict


def _schema_for(path: Path) -> str:
    if path.name == project.FILE_NAME:
        return "project"
    if path.name == policy.FILE_NAME:
        return "policy"
    return "profile"


def _validate_one(path: Path) -> None:
    kind = _schema_for(path)
    layer = load_file(path, kind)
    # Values the schema leaves as text (sizes, durations) are checked by resolving:
    # the file on top of the profile it extends.
    if kind == "profile":
        parent = layer.data.get("extends", profiles.IMPLICIT_PARENT)
        if path.stem != profiles.IMPLICIT_PARENT or "extends" in layer.data:
            resolved.build(path.stem, merge.merge([*profiles.chain(parent, profiles.Sources()), layer]))
    elif kind == "project":
        sources = profiles.Sources(layer)
        for name in layer.data.get("profiles", {}):
            profiles.resolve(name, [], sources)


def _known_files() -> list[Path]:
    found = [Path(f) for files in profiles.available(profiles.Sources()).values() for f in files]
    system_policy = paths.system_dir() / policy.FILE_NAME
    if system_policy.exists():
        found.append(system_policy)
    here = project.find(str(Path.cwd()))
    if here is not None:
        found.append(here.path)
    return found
