"""The session index and stored outputs checked against the events, in flat memory.

The `sessions` table is a listing index: each row must agree with its
session's last status event (status, exit status), every session with a
status event must have a row, and a row needs events. Stored output blobs
must match the SHA-256 sums the `finished` event records.

Three queries, each ordered by session id, are merged like sorted files:
the last status event of each session (events ordered by session and
sequence, the index `events_session` or SQLite's own external sort), the
index rows (its primary key), and the sessions that have other events.
Python holds one session of each at a time, whatever the store's size.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

from vectraguard.audit.store import STATUS_KINDS, AuditStore

_KINDS = ", ".join(f"'{kind}'" for kind in STATUS_KINDS)
_LAST_STATUS = (f"SELECT session_id, json_extract(body, '$.status'), json_extract(body, '$.exit_status'), "
                f"CASE WHEN kind = 'finished' THEN json_extract(body, '$.output') END "
                f"FROM events WHERE kind IN ({_KINDS}) ORDER BY session_id, seq")
_INDEX = "SELECT id, status, exit_status FROM sessions ORDER BY id"
_NOTED = (f"SELECT DISTINCT session_id FROM events WHERE kind NOT IN ({_KINDS}, 'pruned') "
          "ORDER BY session_id")


def _key(value: Any) -> tuple[int, Any]:
    """SQLite's order of values (numbers, then text, then blobs), comparable in Python:
    a session id stored as a blob by someone editing the file must not stop the merge."""
    if isinstance(value, (int, float)):
        return 0, value
    if isinstance(value, str):
        return 1, value
    return 2, bytes(value)


def _last_status(store: AuditStore) -> Iterator[tuple[Any, ...]]:
    """(session, status, exit_status, output summaries as JSON or None), one row per session, by session."""
    rows = store.db.execute(_LAST_STATUS)
    for _, group in itertools.groupby(rows, key=lambda row: row[0]):
        *_, last = group
        yield last


def check_index(store: AuditStore) -> Iterator[str]:
    """Each disagreement between the index, the outputs and the events, as one line, by session id."""
    statuses = _last_status(store)
    index = iter(store.db.execute(_INDEX))
    noted = (row[0] for row in store.db.execute(_NOTED))
    status, row, note = next(statuses, None), next(index, None), next(noted, None)
    while status is not None or row is not None:
        here = min(_key(item[0]) for item in (status, row) if item is not None)
        if status is not None and _key(status[0]) == here:
            if row is not None and _key(row[0]) == here:
                yield from _compare(status, row)
                row = next(index, None)
            else:
                yield f"session {status[0]}: missing from the session index"
            yield from _check_outputs(store, status)
            status = next(statuses, None)
            continue
        assert row is not None
        while note is not None and _key(note) < here:
            note = next(noted, None)
        if note is None or _key(note) != here:  # a row whose status events were pruned still has other events
            yield f"session {row[0]}: in the index but has no events"
        row = next(index, None)


def _compare(status: tuple[Any, ...], row: tuple[Any, ...]) -> Iterator[str]:
    session_id, event_status, event_exit, _ = status
    if row[1] != event_status or (event_exit is not None and row[2] != event_exit):
        yield (f"session {session_id}: the index says {row[1]}/{row[2]}, the events say "
               f"{event_status}/{event_exit} — the index was edited")


def _check_outputs(store: AuditStore, status: tuple[Any, ...]) -> Iterator[str]:
    session_id, _, _, output = status
    summaries = json.loads(output) if isinstance(output, str) else None
    if not isinstance(summaries, dict):
        return
    blobs = store.outputs(session_id)
    for stream, summary in summaries.items():
        head, tail = blobs.get(stream, (b"", b""))
        if not isinstance(summary, dict) or (hashlib.sha256(head).hexdigest(), hashlib.sha256(tail).hexdigest()) != (
                summary.get("head_sha256"), summary.get("tail_sha256")):
            yield f"session {session_id}: stored {stream} does not match its record — it was edited"
