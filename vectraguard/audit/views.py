"""The JSON shapes of the audit trail for scripts: one set of field names for
`logs list --json`, `logs show --json` and `logs export` (README, "The audit
trail"; man vectraguard(1)).

- A session (a `logs list --json` row) has the columns of the session index
  under the names the records use: id, started_at, ended_at, agent, user,
  profile, command, status, exit_status, duration_ms.
- An event (each of `logs show --json`'s `events`, each line of `logs
  export`) is the record's own fields (session, status, exit_status,
  duration_ms, at, argv ...) with its place on the chain beside them: seq,
  kind, prev_hash, hash (and session, which every record but a `pruned`
  event's also holds). The hash covers prev_hash, seq, session, kind and the
  record — the event without seq, kind, prev_hash, hash and output_raw (and
  without session on a `pruned` event) — as canonical JSON (audit/store.py).
- The chain head closes an export: a line of the same shape with kind
  `chain-head`, not an event on the chain (no prev_hash, no hash of its
  own): seq and hash of the last event, head as SEQ:HASH, the number of
  events exported, and pruned_through.
"""

from __future__ import annotations

from typing import Any

from vectraguard.audit.store import record_of

SESSION_FIELDS = ("id", "started_at", "ended_at", "agent", "user", "profile", "command", "status", "exit_status",
                  "duration_ms")
CHAIN_FIELDS = ("seq", "session", "kind", "prev_hash", "hash")
CHAIN_HEAD = "chain-head"


def event(seq: int, session_id: str, kind: str, body: str | dict[str, Any], prev_hash: str,
          digest: str) -> dict[str, Any]:
    """One event: its record's fields, then its chain fields, which win a clash
    (a record's `session` is the event's own; an edited one shows as the event's)."""
    record = record_of(seq, session_id, body) if isinstance(body, str) else body
    return {**record, "seq": seq, "session": session_id, "kind": kind, "prev_hash": prev_hash, "hash": digest}


def chain_head(seq: int, digest: str, events: int, pruned_through: int) -> dict[str, Any]:
    """The line that closes an export: where the chain stood (keep it elsewhere)."""
    return {"seq": seq, "session": None, "kind": CHAIN_HEAD, "prev_hash": None, "hash": digest,
            "head": f"{seq}:{digest}", "events": events, "pruned_through": pruned_through}
