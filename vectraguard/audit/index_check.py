"""The sessions, the session index, stored outputs and recordings checked against the events, in flat memory.

Each session's events must begin with its opening event (started, refused or
checked: a prune never splits a session, so a session that begins with
anything else lost its beginning) and hold no second one; each event body
must be a JSON object. The `sessions` table is a listing index: every
column of a row must be what the session's status events say, derived as
their writers derive it (audit/run_audit.py, audit/checked.py,
AuditStore.append); every session with a status event must have a row,
and a row needs events. Each stored output row must be a stream the
session's `finished` record names, as bytes matching the SHA-256 sums it
records; a recording it names must exist with the recorded SHA-256.

Three queries, each ordered by session id, are merged like sorted files:
the events (ordered by session and sequence, the index `events_session` or
SQLite's own external sort), the index rows (its primary key), and the
output rows. Python holds one session of each at a time, whatever the
store's size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectraguard.audit import exact
from vectraguard.audit.record import COMMAND_COLUMN
from vectraguard.audit.store import OPENING_KINDS, STATUS_KINDS, AuditStore, index_text
from vectraguard.terminal.escape import printable

INDEX_COLUMNS = ("started_at", "ended_at", "agent", "user", "profile", "command", "status", "exit_status",
                 "duration_ms", "owner")
# What each status event's body gives, in one json_extract (one parse of the body).
_FIELDS = ("status", "exit_status", "at", "agent", "user", "profile", "argv", "command", "owner", "duration_ms",
           "output", "recording")
_KINDS = ", ".join(f"'{kind}'" for kind in STATUS_KINDS)
_PATHS = ", ".join(f"'$.{name}'" for name in _FIELDS)
_EVENTS = (f"SELECT session_id, seq, kind, CASE WHEN json_valid(body) THEN json_type(body) END, "
           f"CASE WHEN json_valid(body) AND kind IN ({_KINDS}) THEN json_extract(body, {_PATHS}) END "
           "FROM events ORDER BY session_id, seq")
_INDEX = f"SELECT id, {', '.join(INDEX_COLUMNS)} FROM sessions ORDER BY id"
_OUTPUTS = "SELECT session_id, stream, typeof(head), typeof(tail), head, tail FROM outputs ORDER BY session_id, stream"
_UNKNOWN = object()  # a column the events cannot tell (a refused run's owner): not compared
_CHUNK = 1 << 20


def _key(value: Any) -> tuple[int, Any]:
    """SQLite's order of values (numbers, then text, then blobs), comparable in Python:
    a session id stored as a blob by someone editing the file must not stop the merge."""
    if isinstance(value, (int, float)):
        return 0, value
    if isinstance(value, str):
        return 1, value
    return 2, bytes(value) if value is not None else b""


def _shown(value: Any) -> str:
    """Stored data quoted in a problem: its repr, escaped (it may hold escape sequences)."""
    return printable(repr(value))


@dataclass
class _Session:
    """What a session's events say: the index row they imply, its last finished record's
    output summaries and recording, and what is wrong with the events themselves."""

    id: Any
    row: dict[str, Any] | None = None
    finished: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def _groups(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, list[tuple[Any, ...]]]]:
    for key, group in itertools.groupby(rows, key=lambda row: row[0]):
        yield key, list(group)


def _events(store: AuditStore) -> Iterator[tuple[Any, _Session]]:
    """One _Session a session, by session id (pruned events are checked for their body only)."""
    for session_id, group in itertools.groupby(store.db.execute(_EVENTS), key=lambda row: row[0]):
        session = _Session(session_id)
        opened = False
        for _, seq, kind, body_type, values in group:
            where = f"event {seq} ({printable(str(kind))} of session {printable(str(session_id))})"
            if body_type != "object":
                session.problems.append(f"{where}: its body is not a JSON object — it was edited")
                continue
            if kind == "pruned":
                continue
            if not opened and kind not in OPENING_KINDS:
                session.problems.append(
                    f"{where}: the session's events begin here, not with its opening event (started, refused or "
                    "checked) — its beginning was deleted (a forged prune, or one that split the session)")
            elif opened and kind in OPENING_KINDS:
                session.problems.append(f"{where}: a second opening event for the session — it was inserted")
            opened = True
            if values is not None:
                try:
                    fields = exact.from_record(json.loads(values))
                except ValueError:  # a {"b64": ...} that is not base64
                    session.problems.append(f"{where}: its body holds bytes that are not base64 — it was edited")
                    continue
                _fold(session, kind, dict(zip(_FIELDS, fields, strict=True)))
        if opened or session.problems:
            yield session_id, session


def _fold(session: _Session, kind: str, fields: dict[str, Any]) -> None:
    """The index row as the event's writer sets it (OPENING_KINDS insert it, the others update it)."""
    if kind in OPENING_KINDS:
        closed = kind != "started"  # a refusal or a check is over when it is recorded
        session.row = {"started_at": fields["at"], "ended_at": fields["at"] if closed else None,
                       "agent": fields["agent"], "user": fields["user"], "profile": fields["profile"],
                       "command": _command(kind, fields), "status": fields["status"],
                       "exit_status": fields["exit_status"] if closed else None, "duration_ms": None,
                       "owner": fields["owner"] if kind == "started" else _UNKNOWN if kind == "refused" else None}
        return
    if kind == "finished":
        session.finished = fields
    row = session.row
    if row is None:  # no opening event: the session's beginning is gone (reported), nothing to compare
        return
    row.update(status=fields["status"], ended_at=fields["at"])
    if kind == "finished":
        row.update(exit_status=fields["exit_status"], duration_ms=fields["duration_ms"])
    elif fields["exit_status"] is not None:  # an incomplete record that knows how the run ended
        row["exit_status"] = fields["exit_status"]


def _command(kind: str, fields: dict[str, Any]) -> Any:
    """The index's command column: the argv (a check's command line, or argv) as one line, cut."""
    value = fields["command"] if kind == "checked" else fields["argv"]
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        value = exact.index_line(value)
    return value[:COMMAND_COLUMN] if isinstance(value, str) else value


def _aligned(*streams: Iterator[tuple[Any, Any]]) -> Iterator[tuple[Any, list[Any]]]:
    """Sorted (key, item) streams with unique keys, merged: each key with each stream's item or None."""
    heads = [next(stream, None) for stream in streams]
    while any(head is not None for head in heads):
        here = min(_key(head[0]) for head in heads if head is not None)
        key, items = None, []
        for n, head in enumerate(heads):
            if head is not None and _key(head[0]) == here:
                key = head[0]
                items.append(head[1])
                heads[n] = next(streams[n], None)
            else:
                items.append(None)
        yield key, items


def check_index(store: AuditStore) -> Iterator[str]:
    """Each disagreement between the events and the index, the outputs and the recordings, by session id."""
    index = ((row[0], row) for row in store.db.execute(_INDEX))
    outputs = _groups(store.db.execute(_OUTPUTS))
    for key, (session, row, blobs) in _aligned(_events(store), index, outputs):
        session_id = printable(str(key))
        if session is None:
            if row is not None:
                yield f"session {session_id}: in the index but has no events"
            for _, stream, *_ in blobs or []:
                yield (f"session {session_id}: stored output {_shown(stream)} has no finished record that names it "
                       "— it was added")
            continue
        yield from session.problems
        if session.row is not None:
            yield from _compare(session_id, session.row, row)
        yield from _check_outputs(session_id, session.finished, blobs or [])
        yield from _check_recording(session_id, session.finished)


def _compare(session_id: str, derived: dict[str, Any], row: tuple[Any, ...] | None) -> Iterator[str]:
    if row is None:
        yield f"session {session_id}: missing from the session index"
        return
    for column, stored in zip(INDEX_COLUMNS, row[1:], strict=True):
        said = derived.get(column)
        if said is _UNKNOWN:
            continue
        said = index_text(said) if isinstance(said, str) else said
        if stored != said or type(stored) is not type(said):
            yield (f"session {session_id}: the index says {column} {_shown(stored)}, the events say "
                   f"{_shown(said)} — the index was edited")


def _check_outputs(session_id: str, finished: dict[str, Any] | None, blobs: list[tuple[Any, ...]]) -> Iterator[str]:
    summaries = finished.get("output") if finished is not None else None
    summaries = summaries if isinstance(summaries, dict) else {}
    stored = {}
    for _, stream, head_type, tail_type, head, tail in blobs:
        if stream not in summaries:
            yield (f"session {session_id}: stored output {_shown(stream)} is not a stream its finished record names "
                   "— it was added")
        elif (head_type, tail_type) != ("blob", "blob"):
            yield (f"session {session_id}: stored {_shown(stream)} is not bytes (its head is {head_type}, its tail "
                   f"{tail_type}) — it was edited")
        else:
            stored[stream] = (bytes(head), bytes(tail))
    for stream, summary in summaries.items():
        head, tail = stored.get(stream, (b"", b""))
        sums = (hashlib.sha256(head).hexdigest(), hashlib.sha256(tail).hexdigest())
        if not isinstance(summary, dict) or sums != (summary.get("head_sha256"), summary.get("tail_sha256")):
            yield f"session {session_id}: stored {printable(str(stream))} does not match its record — it was edited"


def _check_recording(session_id: str, finished: dict[str, Any] | None) -> Iterator[str]:
    recording = finished.get("recording") if finished is not None else None
    if recording is None:
        return
    if not isinstance(recording, dict) or not isinstance(recording.get("path"), str):
        yield f"session {session_id}: its finished record names a recording it does not locate — it was edited"
        return
    path = Path(recording["path"])
    problem = recording_problem(path, recording.get("sha256"))
    if problem is not None:
        yield f"session {session_id}: {problem}"


def recording_problem(path: Path, recorded: Any) -> str | None:
    """What is wrong with the recording at `path` given the SHA-256 its record holds, or None.
    Read in chunks: a recording may be tens of MiB."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return f"the recording {_shown(str(path))} its finished record names is missing — it was removed"
    except OSError as exc:
        return f"the recording {_shown(str(path))} cannot be read ({printable(str(exc.strerror))})"
    if digest.hexdigest() != recorded:
        return (f"the recording {_shown(str(path))} does not match the SHA-256 its finished record holds — it was "
                "changed after the session")
    return None
