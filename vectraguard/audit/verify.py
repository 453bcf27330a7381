"""Checking the audit store: the hash chain, the output blobs, the index.

Reports the first broken link — an edited, deleted, inserted or reordered
event — and any session whose index row or stored output disagrees with
its events. (Removing events from the end leaves a shorter, valid chain:
keep the head that `logs verify` prints somewhere else to notice that.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from vectraguard.audit.store import GENESIS, STATUS_KINDS, AuditStore, chain_hash


@dataclass
class Verdict:
    events: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)


def verify(store: AuditStore) -> Verdict:
    verdict = Verdict()
    integrity = store.db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        verdict.problems.append(f"the database file is damaged: {integrity}")
        return verdict
    pruned_through, prev = store.pruned_checkpoint()
    expected_seq = pruned_through + 1
    last: dict[str, tuple[str, dict[str, object]]] = {}
    noted: set[str] = set()  # sessions with events that carry no status (their status events may be pruned)
    for seq, session_id, kind, body, prev_hash, stored_hash in store.events():
        where = f"event {seq} ({kind} of session {session_id})"
        if seq != expected_seq:
            verdict.problems.append(f"{where}: expected event {expected_seq} here — events were deleted or reordered")
            return verdict
        if prev_hash != prev:
            verdict.problems.append(f"{where}: does not follow event {seq - 1} — the chain is broken here")
            return verdict
        if chain_hash(prev_hash, seq, session_id, kind, body) != stored_hash:
            verdict.problems.append(f"{where}: its content does not match its hash — it was edited")
            return verdict
        verdict.events, verdict.head = seq, stored_hash
        expected_seq, prev = seq + 1, stored_hash
        if kind in STATUS_KINDS:
            last[session_id] = (kind, json.loads(body))
        elif kind != "pruned":
            noted.add(session_id)
    verdict.problems += _check_index(store, last, noted) + _check_outputs(store, last)
    return verdict


def _check_index(store: AuditStore, last: dict[str, tuple[str, dict[str, object]]],
                 noted: set[str]) -> list[str]:
    problems = []
    rows = {row[0]: row for row in store.db.execute("SELECT id, status, exit_status FROM sessions")}
    for session_id, (_, body) in last.items():
        row = rows.pop(session_id, None)
        if row is None:
            problems.append(f"session {session_id}: missing from the session index")
        elif row[1] != body.get("status") or (body.get("exit_status") is not None and row[2] != body["exit_status"]):
            problems.append(f"session {session_id}: the index says {row[1]}/{row[2]}, the events say "
                            f"{body.get('status')}/{body.get('exit_status')} — the index was edited")
    problems += [f"session {extra}: in the index but has no events" for extra in rows if extra not in noted]
    return problems


def _check_outputs(store: AuditStore, last: dict[str, tuple[str, dict[str, object]]]) -> list[str]:
    problems = []
    for session_id, (kind, body) in last.items():
        summaries = body.get("output") if kind == "finished" else None
        if not isinstance(summaries, dict):
            continue
        blobs = store.outputs(session_id)
        for stream, summary in summaries.items():
            head, tail = blobs.get(stream, (b"", b""))
            if (hashlib.sha256(head).hexdigest(), hashlib.sha256(tail).hexdigest()) != (
                    summary["head_sha256"], summary["tail_sha256"]):
                problems.append(f"session {session_id}: stored {stream} does not match its record — it was edited")
    return problems
