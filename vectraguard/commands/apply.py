"""`vectraguard apply ID [PATH...] | discard ID`: bringing an overlay
session's changes into the real workspace, or dropping them. Each is an
event on the audit chain of the session (who, when, which paths and their
SHA-256)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vectraguard import errors
from vectraguard.audit import bounds
from vectraguard.audit import record as audit_record
from vectraguard.audit.store import SCHEMA_VERSION, AuditStore, open_store
from vectraguard.output import printable
from vectraguard.workspace import apply, store
from vectraguard.workspace.changeset import Change

EXIT_STOPPED = 1  # conflicts (or paths that cannot be reached safely) stopped the apply


def main(args: argparse.Namespace) -> int:
    if args.command_name == "discard":
        return discard(args)
    return apply_changes(args)


def apply_changes(args: argparse.Namespace) -> int:
    layer = store.find(args.id)
    with apply.locked(layer):
        plan = apply.plan(layer, args.paths, include_protected=args.include_protected)
        _report(plan)
        if plan.blocked:
            _say(f"nothing applied: {len(plan.blocked)} path(s) cannot be reached safely in the workspace "
                 "(fix the workspace, or leave those paths out)")
            return EXIT_STOPPED
        if plan.conflicts and not args.force:
            _say(f"nothing applied: {len(plan.conflicts)} conflict(s) with changes made in the workspace since the "
                 "session started; review them, then --force overwrites them")
            return EXIT_STOPPED
        if not plan.steps:
            print(f"nothing applied{_held_note(plan)}")
            return 0
        if plan.protected:
            _show_protected(plan)
        if args.dry_run:
            for change in plan.steps:
                print(printable(f"would apply: {change.action} {change.path}"))
            print(f"dry run: {len(plan.steps)} change(s) would be applied{_held_note(plan)}")
            return 0
        return _execute(plan, args.force)


def _execute(plan: apply.Plan, force: bool) -> int:
    audit = open_store()  # before anything is written: an apply that cannot be recorded does not happen
    try:
        outcome = apply.execute(plan, force=force)
        if outcome.applied:
            audit.append(plan.layer.session_id, "workspace-applied", _applied_event(plan, outcome, force), index={})
    finally:
        audit.close()
    state = plan.layer.record().state
    print(printable(f"applied {len(outcome.applied)} change(s) to {plan.record.workspace}") + _held_note(plan)
          + (f"; session {plan.layer.session_id} is now {state}" if not outcome.failure else ""))
    if outcome.failure:
        raise errors.VGError(f"vectraguard: apply stopped after {len(outcome.applied)} of {len(plan.steps)} "
                             f"change(s): {printable(outcome.failure)}",
                             hint="what was applied is recorded; run apply again for the rest")
    return 0


def _applied_event(plan: apply.Plan, outcome: apply.Outcome, force: bool) -> dict[str, Any]:
    user, host = audit_record.who()
    return {"version": SCHEMA_VERSION, "session": plan.layer.session_id, "at": audit_record.now(), "user": user,
            "host": host, "workspace": plan.record.workspace, "forced": force,
            # A sandbox makes as many paths as it likes: each list keeps its first ones and a count (bounds.py).
            **bounds.listed("paths", [_entry(c) for c in outcome.applied]),
            **bounds.listed("overridden", [p.path for p in plan.conflicts] if force else []),
            **bounds.listed("protected", [h.change.path for h in plan.protected]),
            **bounds.listed("held_back", [h.change.path for h in plan.held_back]),
            **bounds.listed("refused", [p.path for p in plan.refused]), "failure": outcome.failure or None}


def _entry(change: Change) -> dict[str, str]:
    return {"path": change.path, "action": change.action, "kind": change.after, "sha256": change.sha256}


def _report(plan: apply.Plan) -> None:
    """Everything that stands in the way, all of it, before anything is written."""
    for problem in plan.blocked:
        _say(f"refused: {problem.path}: {problem.reason}")
    for problem in plan.conflicts:
        _say(f"conflict: {problem.path}: {problem.reason}")
    for problem in plan.refused:
        _say(f"refused: {problem.path}: {problem.reason} (never applied)")
    for held in plan.held_back:
        _say(f"held back: {held.change.path}: {held.why}")


def _held_note(plan: apply.Plan) -> str:
    notes = []
    if plan.held_back:
        notes.append(f"{len(plan.held_back)} protected path(s) held back (name each with --include-protected PATH "
                     "after reviewing their diff)")
    if plan.refused:
        notes.append(f"{len(plan.refused)} refused")
    return "; " + "; ".join(notes) if notes else ""


def _show_protected(plan: apply.Plan) -> None:
    """The protected paths being applied, in full, before they are."""
    from vectraguard.workspace.diff import render

    print(f"protected paths to be applied ({len(plan.protected)}), as named with --include-protected:")
    for line in render(plan.layer, [held.change for held in plan.protected]):
        print(line)


def _say(line: str) -> None:
    print(printable(line), file=sys.stderr)


def discard(args: argparse.Namespace) -> int:
    layer = store.find(args.id)
    with apply.locked(layer):
        record = layer.record()
        if record.state == store.DISCARDED:
            raise errors.UsageError(f"vectraguard: session {layer.session_id} was already discarded")
        if record.state == store.RUNNING:
            raise errors.UsageError(f"vectraguard: session {layer.session_id} has no change set yet "
                                    "(still running, or its run was killed before the layer was read)")
        pending = _pending(layer, record)
        audit = open_store()
        try:
            _drop(layer, record, audit, pending)
        finally:
            audit.close()
    print(f"discarded session {layer.session_id}: {len(pending)} change(s) not applied are gone")
    return 0


def _pending(layer: store.Layer, record: store.LayerRecord) -> list[Change]:
    """What the discard drops; a layer whose change set could not be read is discarded all the same."""
    applied = set(record.applied)
    try:
        changes = layer.changes()
    except errors.VGError:
        return []
    return [c for c in changes if c.path not in applied]


def _drop(layer: store.Layer, record: store.LayerRecord, audit: AuditStore, pending: list[Change]) -> None:
    user, host = audit_record.who()
    at = audit_record.now()
    body = {"version": SCHEMA_VERSION, "session": layer.session_id, "at": at, "user": user, "host": host,
            "workspace": record.workspace, **bounds.listed("paths", [_entry(c) for c in pending])}
    layer.drop_content()
    layer.update(state=store.DISCARDED,
                 history=(*record.history, {"event": "discarded", "at": at, "user": user, "host": host,
                                            "paths": len(pending)}))
    audit.append(layer.session_id, "workspace-discarded", body, index={})
