"""`vectraguard logs list | show ID | verify | head | export | prune | replay`: reading the audit trail.

Sessions are runs (statuses ok, failed, refused, ...) and the decisions of
`vectraguard check` that agents' hooks ask for (status checked/allow,
checked/ask, checked/deny; `logs list --kind checked`); both are on one
hash-chained store and shown, exported and verified alike.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

from vectraguard import errors, ids, output, times
from vectraguard.audit import anchor, exact, text_view, views
from vectraguard.audit.anchor import Anchor
from vectraguard.audit.store import (
    GENESIS,
    AuditStore,
    TamperedRecord,
    index_text,
    open_store,
)
from vectraguard.audit.verify import Verdict, verify, verify_empty
from vectraguard.network import attempts
from vectraguard.output import printable
from vectraguard.terminal.escape import printable_output
from vectraguard.terminal.sequences import TERMINAL_OWNER, SequenceFilter

EXIT_BROKEN = 1
COLUMNS = ["id", "start", "agent", "profile", "command", "status", "exit", "duration"]


def main(args: argparse.Namespace) -> int:
    if args.logs_command in ("verify", "head"):  # read-only: a full disk, a read-only copy
        return read_only(args)
    store = open_store()  # an empty store answers "nothing yet" like a full one
    try:
        if args.logs_command == "list":
            return list_sessions(store, args)
        if args.logs_command == "show":
            return show(store, args)
        if args.logs_command == "export":
            return export(store, args)
        if args.logs_command == "prune":
            from vectraguard.commands.logs_prune import prune

            return prune(store, args)
        if args.logs_command == "replay":
            return replay(store, args)
        raise AssertionError(args.logs_command)
    finally:
        store.close()


def read_only(args: argparse.Namespace) -> int:
    """`logs verify` and `logs head`, which write nothing (store.open_reader)."""
    from vectraguard.audit.store import open_reader

    head = _anchor(args) if args.logs_command == "verify" else None
    key = _key() if args.logs_command == "verify" else None
    store = open_reader()
    try:
        if args.logs_command == "head":
            seq, digest = store.head() if store else (0, GENESIS)
            print(f"{seq}:{digest}")
            return 0
        return check(store, head, key, args.json)
    finally:
        if store is not None:
            store.close()


def _key() -> bytes | None:
    """Keyed mode's key when the policy sets audit.key_file (unusable: ConfigError, exit 125)."""
    from vectraguard.audit import settings

    loaded = settings.load()
    return settings.read_key(loaded.key_file) if loaded.key_file else None


def _anchor(args: argparse.Namespace) -> Anchor | None:
    from pathlib import Path

    if args.head is not None:
        return anchor.parse(args.head)
    return anchor.read(Path(args.head_file)) if args.head_file is not None else None


def list_sessions(store: AuditStore, args: argparse.Namespace) -> int:
    where, values = [], []
    for column, value in (("agent", args.agent), ("profile", args.profile), ("status", args.status)):
        if value is not None:
            where.append(f"{column} = ?")
            values.append(index_text(value))  # as the index keeps it
    for option, value, operator in (("--since", args.since, ">="), ("--until", args.until, "<")):
        if value is not None:  # compared as times: both sides in the store's fixed-width UTC form
            where.append(f"started_at {operator} ?")
            values.append(times.store_form(times.parse_time(value, option)))
    if args.kind is not None:  # a check's decision has status checked/DECISION (audit/checked.py)
        where.append("status LIKE 'checked/%'" if args.kind == "checked" else "status NOT LIKE 'checked/%'")
    sql = (f"SELECT {', '.join(views.SESSION_FIELDS)} FROM sessions"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY started_at DESC, id DESC LIMIT ?")
    rows = [dict(zip(views.SESSION_FIELDS, row)) for row in store.db.execute(sql, (*values, args.limit))]
    if args.json:
        output.print_json(rows)
        return 0
    output.print_table([_table_row(row) for row in rows], COLUMNS)
    return 0


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """A session as the table shows it: short headings, seconds, and the start in
    local time to the second — the way --since and --until read a time without a
    zone, so a start copied from the table selects that session."""
    duration = row["duration_ms"]
    return {**row, "start": times.local_text(row["started_at"]), "exit": row["exit_status"],
            "duration": "" if duration is None else f"{duration / 1000:.1f}s"}


def show(store: AuditStore, args: argparse.Namespace) -> int:
    session_id = _find(store, args.id)
    events = store.session_events(session_id)
    outputs = store.outputs(session_id, _named_streams(events))
    if args.json:
        # Exact: bodies as recorded, output that is not UTF-8 as {"b64": ...} too (audit/exact.py).
        output.print_json({"id": session_id, "events": [views.event(*row) for row in store.session_chain(session_id)],
                           "output": {name: {"head": exact.bytes_to_record(head),
                                             "tail": exact.bytes_to_record(tail)}
                                      for name, (head, tail) in outputs.items()}})
        return 0
    for kind, body in events:
        try:
            _print_event(kind, body)
        except (KeyError, TypeError, AttributeError, ValueError):  # a record re-hashed into a shape no writer gives
            raise TamperedRecord(f"vectraguard: a {kind} record of session {session_id} does not have the shape its "
                                 "writer gives it — the audit store was edited") from None
    for name, (head, tail) in outputs.items():
        if head or tail:
            _print_output(printable(name), head, tail, raw=args.raw)
    return 0


def _print_event(kind: str, body: dict[str, Any]) -> None:
    """One record, a field a line; every value and key escaped (terminal/escape.py)."""
    body = exact.from_record(body)
    print(f"== {printable(kind)}")
    for key, value in body.items():
        if key == "argv" and isinstance(value, list):
            print(f"  argv: {printable(exact.shell_line(value))}")
        elif key == "approvals" and value:
            _print_approvals(value)
        elif key == "findings" and kind == "checked":
            _print_findings(value, body.get("findings_omitted", 0))
        elif key == "findings_omitted" and kind == "checked":
            pass  # said under the findings
        elif key in attempts.RECORD_KEYS and kind == "finished":
            if key == "network":  # the other keys are its counts
                for line in attempts.describe(body):
                    print(f"  {printable(line)}")
        elif key not in ("version", "session", "output"):
            for line in text_view.lines(key, value, depth=1):  # nested, YAML-like, times in ISO 8601
                print(printable(line))
    summaries = body.get("output")
    for name, summary in (summaries if isinstance(summaries, dict) else {}).items():
        _print_summary(name, summary)


def _named_streams(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The streams the session's (last) finished record describes: only their stored output is its output."""
    finished = [body.get("output") for kind, body in events if kind == "finished"]
    return list(finished[-1]) if finished and isinstance(finished[-1], dict) else []


def _print_summary(name: str, summary: Any) -> None:
    """A stream's size and digest as recorded (escaped: a re-hashed record is the attacker's text too)."""
    if not isinstance(summary, dict):
        print(printable(f"  {name}: {summary!r}"))
        return
    print(printable(f"  {name}: {summary.get('bytes')} bytes, sha256 {summary.get('sha256')}"
                    + (" (middle not kept)" if summary.get("truncated") else "")))
    failed = summary.get("delivery_failed")
    if isinstance(failed, dict):
        print(printable(f"  {name}: not delivered to the caller after {failed.get('delivered_bytes')} bytes: "
                        f"{failed.get('error')} (captured all the same)"))


def _find(store: AuditStore, given: str) -> str:
    """The session `given` names: a whole id, or its unique first or last characters."""
    return ids.one(given, store.find(given, limit=ids.SHOWN + 1), what="session",
                   hint="`vectraguard logs list` shows the sessions recorded")


def _print_output(name: str, head: bytes, tail: bytes, *, raw: bool) -> None:
    """The recorded output: escaped (terminal/escape.py), as every display of what a sandbox
    wrote is, terminal or not (a pipe often ends in one); with --raw, the bytes themselves."""
    gap = b"\n[... middle not kept ...]\n" if tail and head else b""
    if raw:
        print(f"== {name} (raw bytes as recorded)")
        sys.stdout.flush()
        sys.stdout.buffer.write(head + gap + tail + b"\n")
        return
    print(f"== {name} (as recorded, control characters escaped; --raw for the bytes)")
    # Head and tail escaped apart: a UTF-8 character cut where the middle was dropped shows as its bytes.
    sys.stdout.write(printable_output(head) + gap.decode() + printable_output(tail) + "\n")


def _print_approvals(entries: list[dict[str, Any]]) -> None:
    """Who decided what, when, about which findings."""
    print("  approvals:")
    for entry in entries:
        print(printable(f"    {entry.get('decision')} by {entry.get('by')} "
                        f"(user {entry.get('user')}, {entry.get('at')})"))
        for finding in entry.get("findings", []):
            print(printable(f"      {finding['class']} ({finding['rule']}): {finding['matched']} -> "
                            f"{finding['decision']} by {finding['by']}"))
        for key, what in (("findings_omitted", "findings"), ("runs_omitted", "files it runs"),
                          ("entries_omitted", "approval entries")):
            if entry.get(key):
                print(f"      ... and {entry[key]} more {what}, counted, not kept (caps: vectraguard-profile(5))")


def _print_findings(findings: list[dict[str, Any]], omitted: int = 0) -> None:
    """What a check found, one finding a line (the decision itself is its own key)."""
    print("  findings:" + ("" if findings else " none"))
    for finding in findings:
        print(printable(f"    {finding['class']} ({finding['rule']}): {finding['matched']} -> "
                        f"{finding['decision']} by {finding['by']}"))
    if omitted:
        print(f"    ... and {omitted} more, counted, not kept (caps: vectraguard-profile(5))")


def check(store: AuditStore | None, head: Anchor | None, key: bytes | None, as_json: bool = False) -> int:
    """Exit 1 naming the first broken point; 0 with the head (no store yet: an empty chain)."""
    verdict = verify(store, head, key) if store is not None else verify_empty(head)
    # Problems and notes quote stored data (a status, a session id, a stream name): escaped, or a
    # tampered value could draw a fake "ok" on the terminal. --json stays exact (json_text escapes).
    for note in verdict.notes:
        print(f"vectraguard: note: {printable(note)}", file=sys.stderr)
    if as_json:
        output.print_json(verdict_json(verdict))
        return EXIT_BROKEN if verdict.problems else 0
    if verdict.problems:
        for problem in verdict.problems:
            print(f"vectraguard: audit trail broken: {printable(problem)}", file=sys.stderr)
        return EXIT_BROKEN
    print(f"ok: {verdict.events} events, chain head {verdict.head}")
    if head is not None:
        print(f"ok: the store extends the head kept elsewhere, {head}")
    if key is not None:
        print("ok: keyed mode: every event since keyed mode began carries a MAC made with audit.key_file's key")
    return 0


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """`logs verify --json`: ok, the problems found (first broken link first), and the
    head verified as far as the chain held: seq, hash and head (SEQ:HASH)."""
    return {"ok": not verdict.problems, "problems": verdict.problems, "seq": verdict.events,
            "hash": verdict.head, "head": f"{verdict.events}:{verdict.head}"}


def export(store: AuditStore, args: argparse.Namespace) -> int:
    """JSON Lines for a SIEM: every event (audit/views.py: the record's fields and its
    chain fields; for a finished session, output_raw: its recorded output, base64),
    then the chain head, a line of kind chain-head."""
    import base64

    out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115 - closed below
    try:
        through, head = store.pruned_checkpoint()
        seq, count = through, 0
        for seq, session_id, kind, body, prev_hash, head in store.events():
            line = views.event(seq, session_id, kind, body, prev_hash, head)
            if kind == "finished":  # the streams its record describes, none other
                named = line["output"] if isinstance(line.get("output"), dict) else {}
                line["output_raw"] = {name: {"head_b64": base64.b64encode(h).decode(),
                                             "tail_b64": base64.b64encode(t).decode()}
                                      for name, (h, t) in store.outputs(session_id, named).items()}
            out.write(output.json_text(line, indent=None) + "\n")
            count += 1
        out.write(output.json_text(views.chain_head(seq, head, count, through), indent=None) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"exported {count} events to {args.output}; chain head {seq}:{head}", file=sys.stderr)
    return 0


def replay(store: AuditStore, args: argparse.Namespace) -> int:
    from pathlib import Path

    from vectraguard.audit.recording import replay as play

    session_id = _find(store, args.id)
    finished = [body for kind, body in store.session_events(session_id) if kind == "finished"]
    recording = finished[0].get("recording") if finished else None
    if not recording:
        raise errors.UsageError(f"vectraguard: session {session_id} has no recording (only shells and agent "
                                "sessions are recorded)")
    if not isinstance(recording, dict) or not isinstance(recording.get("path"), str):
        raise TamperedRecord(f"vectraguard: session {session_id}: its finished record names no recording file")
    path = Path(recording["path"])
    if not path.exists():
        raise errors.ConfigError(f"vectraguard: the recording {printable(str(path))} is gone")
    # Played from the bytes whose digest was checked: a file swapped meanwhile is not played.
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != recording.get("sha256"):
        raise TamperedRecord(f"vectraguard: the recording {path} does not match the SHA-256 its record holds — it was "
                             "changed after the session; not played")

    # As the live session showed it (terminal/sequences.py, the terminal owner's policy), unless --raw.
    sequences = None if args.raw else SequenceFilter(TERMINAL_OWNER)

    def write(data: bytes) -> None:
        sys.stdout.buffer.write(data if sequences is None else sequences.feed(data))
        sys.stdout.buffer.flush()

    play(data, write, speed=args.speed, idle_limit=args.idle_limit)
    return 0
