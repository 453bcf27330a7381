"""`vectraguard changes [ID] [--all] [--json] | diff ID [PATH...]`: reviewing
what an overlay session changed, before `apply` brings it into the workspace."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from vectraguard import errors, output
from vectraguard.output import printable
from vectraguard.workspace import apply, store
from vectraguard.workspace.changeset import ABSENT, Change

COLUMNS = ["action", "kind", "size", "path", "note"]
LAYER_COLUMNS = ["session", "state", "created", "changes", "protected", "applied", "workspace"]


def main(args: argparse.Namespace) -> int:
    if args.command_name == "diff":
        return diff(args)
    if args.all:
        if args.id:
            raise errors.UsageError("vectraguard changes: give a session ID or --all, not both")
        return list_layers(args)
    return show(args)


def reviewable(session_id: str | None) -> tuple[store.Layer, store.LayerRecord, list[Change]]:
    """The layer (by id prefix, or the newest of this directory), its record and change set;
    UsageError when it has none to review."""
    layer = store.find(session_id) if session_id else store.latest_for(os.path.realpath(os.getcwd()))
    record = layer.record()
    if record.state == store.DISCARDED:
        raise errors.UsageError(f"vectraguard: session {layer.session_id} was discarded; its changes are gone")
    return layer, record, layer.changes()


def show(args: argparse.Namespace) -> int:
    layer, record, changes = reviewable(args.id)
    applied = set(record.applied)
    rows = [_row(layer, record, change, applied) for change in changes]
    if args.json:
        output.print_json({"session": layer.session_id, "workspace": record.workspace, "state": record.state,
                           "created_at": record.created_at, "cap": record.cap, "used": record.used,
                           "cap_hit": record.cap_hit, "changes": rows})
        return 0
    protected = sum(1 for row in rows if row["protected"])
    print(printable(f"session {layer.session_id} ({record.state}), workspace {record.workspace}: "
                    f"{len(rows)} change(s), {protected} protected"))
    if record.cap_hit:
        print(f"the sandbox hit the layer's size cap ({record.cap} bytes): writes past it failed, so this "
              "may be incomplete")
    output.print_table([_table_row(row) for row in rows], COLUMNS)
    if record.state == store.PENDING:
        print(f"review: vectraguard diff {layer.session_id}    apply: vectraguard apply {layer.session_id}    "
              f"drop: vectraguard discard {layer.session_id}")
    return 0


def _row(layer: store.Layer, record: store.LayerRecord, change: Change, applied: set[str]) -> dict[str, Any]:
    return {"path": change.path, "action": change.action, "after": change.after, "before": change.before,
            "mode": change.mode, "size": change.size, "sha256": change.sha256, "link": change.link,
            "protected": record.protection(change.path),
            "applied": change.path in applied, "refused": apply.content_refusal(change, layer) or None}


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    notes = []
    if row["protected"]:
        notes.append(f"protected ({row['protected']})")
    if row["refused"]:
        notes.append(f"refused: {row['refused']}")
    if row["applied"]:
        notes.append("applied")
    kind = row["after"] if row["after"] != ABSENT else row["before"]
    size = "" if row["after"] == ABSENT else row["size"]
    path = row["path"] + (f" → {row['link']}" if row["link"] else "")
    return {"action": row["action"], "kind": kind, "size": size, "path": path, "note": "; ".join(notes)}


def list_layers(args: argparse.Namespace) -> int:
    rows = [_layer_row(layer) for layer in store.all_layers()]
    if args.json:
        output.print_json(rows)
        return 0
    if not rows:
        print("no workspace layers kept")
        return 0
    output.print_table([{**row, "created": row["created"].replace("T", " ")[:19]} for row in rows], LAYER_COLUMNS)
    return 0


def _layer_row(layer: store.Layer) -> dict[str, Any]:
    record = layer.record()
    counts: dict[str, Any] = {"changes": None, "protected": None}
    if record.state in (store.PENDING, store.APPLIED):
        try:
            changes = layer.changes()
        except errors.VGError:
            changes = []
        counts = {"changes": len(changes),
                  "protected": sum(1 for c in changes if record.protection(c.path))}
    return {"session": layer.session_id, "state": record.state, "created": record.created_at,
            "workspace": record.workspace, **counts, "applied": len(record.applied)}


def diff(args: argparse.Namespace) -> int:
    from vectraguard.workspace.diff import render

    layer, record, changes = reviewable(args.id)
    named = apply.names(layer, record, changes, args.paths)
    chosen = [c for c in changes if apply.selected(c.path, named)]
    page(render(layer, chosen))
    return 0


def page(lines: Iterable[str]) -> None:
    """Through $PAGER (default less) when stdout is a terminal; else straight to stdout.
    The lines are escaped already, so the pager needs no raw-control mode."""
    if not sys.stdout.isatty():
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git does: quit if one screen, leave the text on the terminal
    try:
        pager = subprocess.Popen(shlex.split(os.environ.get("PAGER") or "less"), stdin=subprocess.PIPE, env=env)
    except (OSError, ValueError):
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    assert pager.stdin is not None
    try:
        for line in lines:
            pager.stdin.write((line + "\n").encode("utf-8", "surrogateescape"))
        pager.stdin.close()
    except BrokenPipeError:
        pass  # the reader quit the pager early
    pager.wait()
