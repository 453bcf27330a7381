"""Stopping a running session from outside (`vectraguard stop ID`).

The session is ended by the `vectraguard` that runs it, as a Ctrl-C or a
SIGTERM to it would end it: that process owns the sandbox, stops it (TERM,
the profile's kill_grace, KILL: runtime/session.py), records how it ended
and removes it. So `stop` only says who asks — a `stop-requested` event in
the session's record, committed first — and sends SIGTERM to the owner
(PID:STARTTIME, checked again just before: a reused pid is never signalled).
A run served by the fork server is owned by its client, which passes the
signal on (forkserver/). The run's `finished` record then names the request
(`stopped_by`), with status `interrupted` and exit status 143.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from vectraguard import errors
from vectraguard.audit import record
from vectraguard.audit.store import SCHEMA_VERSION, AuditStore
from vectraguard.runtime.owner import owner_alive
from vectraguard.sessions.running import RunningSession

STOP_REQUESTED = "stop-requested"
POLL_S = 0.05


def request(store: AuditStore, session: RunningSession) -> dict[str, Any]:
    """Record who asks, then signal the session's owner; the event's body."""
    user, _ = record.who()
    body = {"version": SCHEMA_VERSION, "session": session.id, "at": record.now(), "signal": "SIGTERM",
            "by": {"user": user, "uid": os.getuid(), "pid": os.getpid(), "command": "vectraguard stop"}}
    store.append(session.id, STOP_REQUESTED, body, index={}, known_session=True)
    if not owner_alive(session.owner):
        raise errors.UsageError(f"vectraguard: session {session.id} ended before it could be stopped")
    try:
        os.kill(session.owner_pid, signal.SIGTERM)
    except ProcessLookupError:
        raise errors.UsageError(f"vectraguard: session {session.id} ended before it could be stopped") from None
    except PermissionError:
        raise errors.PolicyError(f"vectraguard: session {session.id} runs as another user: it cannot be stopped "
                                 "from here", hint="stop it as the user who started it") from None
    return body


def wait_ended(store: AuditStore, session: RunningSession, within: float) -> str | None:
    """The session's status once it is no longer `started`; None when it still
    is after `within` seconds (its owner still working on it)."""
    deadline = time.monotonic() + within
    while True:
        row = store.db.execute("SELECT status FROM sessions WHERE id = ?", (session.id,)).fetchone()
        if row is not None and row[0] != "started":
            return str(row[0])
        if not owner_alive(session.owner):  # gone without recording: the next run marks it incomplete
            return "incomplete"
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)


def stopped_by(store: AuditStore, session_id: str) -> str | None:
    """For an interrupted run's `finished` reason: who asked it to stop, if someone did."""
    import json

    row = store.db.execute("SELECT body FROM events WHERE session_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
                           (session_id, STOP_REQUESTED)).fetchone()
    if row is None:
        return None
    by = json.loads(row[0]).get("by") or {}
    return (f"stopped by `vectraguard stop` (user {by.get('user')}, uid {by.get('uid')}, pid {by.get('pid')}, "
            f"at {json.loads(row[0]).get('at')})")
