"""`vectraguard logs list | show ID | verify`: reading the audit trail.

Sessions are runs (statuses ok, failed, refused, ...) and the decisions of
`vectraguard check` that agents' hooks ask for (status checked/allow,
checked/ask, checked/deny; `logs list --kind checked`); both are on one
hash-chained store and shown, exported and verified alike.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vectraguard import errors, output
from vectraguard.audit.store import AuditStore, open_store
from vectraguard.audit.verify import verify
from vectraguard.network import attempts
from vectraguard.output import printable

EXIT_BROKEN = 1
COLUMNS = ["id", "start", "agent", "profile", "command", "status", "exit", "duration"]


def main(args: argparse.Namespace) -> int:
    store = open_store()  # an empty store answers "nothing yet" like a full one
    try:
        if args.logs_command == "list":
            return list_sessions(store, args)
        if args.logs_command == "show":
            return show(store, args)
        if args.logs_command == "export":
            return export(store, args)
        if args.logs_command == "prune":
            return prune(store, args)
        if args.logs_command == "replay":
            return replay(store, args)
        return check(store)
    finally:
        store.close()


def list_sessions(store: AuditStore, args: argparse.Namespace) -> int:
    where, values = [], []
    for column, value in (("agent", args.agent), ("profile", args.profile), ("status", args.status)):
        if value is not None:
            where.append(f"{column} = ?")
            values.append(value)
    if args.since:
        where.append("started_at >= ?")
        values.append(args.since)
    if args.kind is not None:  # a check's decision has status checked/DECISION (audit/checked.py)
        where.append("status LIKE 'checked/%'" if args.kind == "checked" else "status NOT LIKE 'checked/%'")
    sql = ("SELECT id, started_at, agent, profile, command, status, exit_status, duration_ms FROM sessions"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY started_at DESC, id DESC LIMIT ?")
    rows = [dict(zip(COLUMNS, row)) for row in store.db.execute(sql, (*values, args.limit))]
    if args.json:
        output.print_json(rows)
        return 0
    for row in rows:
        row["duration"] = "" if row["duration"] is None else f"{row['duration'] / 1000:.1f}s"
        row["start"] = (row["start"] or "").replace("T", " ")[:19]
    output.print_table(rows, COLUMNS)
    return 0


def show(store: AuditStore, args: argparse.Namespace) -> int:
    matches = store.find(args.id)
    if not matches:
        raise errors.UsageError(f"vectraguard: no session {args.id!r} in the audit trail")
    if len(matches) > 1:
        raise errors.UsageError(f"vectraguard: {args.id!r} matches several sessions; give more of the id")
    session_id = matches[0]
    events = store.session_events(session_id)
    outputs = store.outputs(session_id)
    if args.json:
        output.print_json({"id": session_id, "events": [{"kind": k, **body} for k, body in events],
                           "output": {name: {"head": head.decode("utf-8", "replace"),
                                             "tail": tail.decode("utf-8", "replace")}
                                      for name, (head, tail) in outputs.items()}})
        return 0
    for kind, body in events:
        print(f"== {kind}")
        for key, value in body.items():
            if key == "approvals" and value:
                _print_approvals(value)
            elif key == "findings" and kind == "checked":
                _print_findings(value, body.get("findings_omitted", 0))
            elif key == "findings_omitted" and kind == "checked":
                pass  # said under the findings
            elif key in attempts.RECORD_KEYS and kind == "finished":
                if key == "network":  # the other keys are its counts
                    for line in attempts.describe(body):
                        print(f"  {line}")
            elif key not in ("version", "session", "output"):
                print(f"  {key}: {printable(_text(value))}")
        for name, summary in (body.get("output") or {}).items():
            print(f"  {name}: {summary['bytes']} bytes, sha256 {summary['sha256']}"
                  + (" (middle not kept)" if summary["truncated"] else ""))
    for name, (head, tail) in outputs.items():
        if head or tail:
            print(f"== {name} (raw bytes as recorded)")
            sys.stdout.flush()
            sys.stdout.buffer.write(head + (b"\n[... middle not kept ...]\n" if tail and head else b"") + tail)
            sys.stdout.buffer.write(b"\n")
    return 0


def _print_approvals(entries: list[dict[str, Any]]) -> None:
    """Who decided what, when, about which findings."""
    print("  approvals:")
    for entry in entries:
        print(f"    {entry.get('decision')} by {entry.get('by')} (user {entry.get('user')}, {entry.get('at')})")
        for finding in entry.get("findings", []):
            print(f"      {finding['class']} ({finding['rule']}): {printable(finding['matched'])} -> "
                  f"{finding['decision']} by {finding['by']}")
        for key, what in (("findings_omitted", "findings"), ("runs_omitted", "files it runs"),
                          ("entries_omitted", "approval entries")):
            if entry.get(key):
                print(f"      ... and {entry[key]} more {what}, counted, not kept (caps: vectraguard-profile(5))")


def _print_findings(findings: list[dict[str, Any]], omitted: int = 0) -> None:
    """What a check found, one finding a line (the decision itself is its own key)."""
    print("  findings:" + ("" if findings else " none"))
    for finding in findings:
        print(f"    {finding['class']} ({finding['rule']}): {printable(finding['matched'])} -> "
              f"{finding['decision']} by {finding['by']}")
    if omitted:
        print(f"    ... and {omitted} more, counted, not kept (caps: vectraguard-profile(5))")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value)) if value and not isinstance(value[0], dict) else str(value)
    return str(value)


def check(store: AuditStore) -> int:
    verdict = verify(store)
    if verdict.problems:
        for problem in verdict.problems:
            print(f"vectraguard: audit trail broken: {problem}", file=sys.stderr)
        return EXIT_BROKEN
    print(f"ok: {verdict.events} events, chain head {verdict.head}")
    return 0


def export(store: AuditStore, args: argparse.Namespace) -> int:
    """JSON Lines for a SIEM: every event with its chain links (and, for a
    finished session, its recorded output, base64), then the chain head."""
    import base64
    import json

    out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115 - closed below
    try:
        head, count = "", 0
        for seq, session_id, kind, body, prev_hash, digest in store.events():
            line: dict[str, Any] = {"seq": seq, "session": session_id, "kind": kind, "prev_hash": prev_hash,
                                    "hash": digest, "record": json.loads(body)}
            if kind == "finished":
                line["output"] = {name: {"head_b64": base64.b64encode(h).decode(), "tail_b64": base64.b64encode(t).decode()}
                                  for name, (h, t) in store.outputs(session_id).items()}
            out.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
            head, count = digest, count + 1
        through, _ = store.pruned_checkpoint()
        out.write(json.dumps({"chain_head": head, "events": count, "pruned_through": through}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"exported {count} events to {args.output}; chain head {head}", file=sys.stderr)
    return 0


def prune(store: AuditStore, args: argparse.Namespace) -> int:
    from vectraguard.audit.record import now
    from vectraguard.audit.recording import recordings_dir

    through, gone = store.prune(args.before, now())
    if not gone:
        print("nothing to prune")
        return 0
    # Their recordings go too: what was retained no longer (terminal output can hold secrets).
    removed = 0
    for session_id in gone:
        recording = recordings_dir() / f"{session_id}.cast"
        if recording.exists():
            recording.unlink()
            removed += 1
    # And their workspace layers, applied or not: the review window closes with the record.
    from vectraguard.workspace.store import remove as remove_layers

    layers = remove_layers(gone)
    print(f"pruned {len(gone)} sessions (events up to {through}), {removed} recordings and {layers} workspace "
          "layers; the chain stays verifiable from there")
    return 0


def replay(store: AuditStore, args: argparse.Namespace) -> int:
    from pathlib import Path

    from vectraguard.audit.recording import replay as play

    matches = store.find(args.id)
    if len(matches) != 1:
        raise errors.UsageError(f"vectraguard: {args.id!r} matches {len(matches)} sessions; give a unique id prefix")
    finished = [body for kind, body in store.session_events(matches[0]) if kind == "finished"]
    recording = finished[0].get("recording") if finished else None
    if not recording:
        raise errors.UsageError(f"vectraguard: session {matches[0]} has no recording (only shells and agent "
                                "sessions are recorded)")
    path = Path(recording["path"])
    if not path.exists():
        raise errors.ConfigError(f"vectraguard: the recording {path} is gone")

    def write(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    play(path, write, speed=args.speed, idle_limit=args.idle_limit)
    return 0
