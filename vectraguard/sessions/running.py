"""Finding running sessions in the audit store, and naming one by a fragment of its id.

A session runs while its index row says `started` and its owner process
(`PID:STARTTIME`) is alive; a row left `started` by a killed `vectraguard`
is not running (the next run marks it `incomplete`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from vectraguard import errors, ids
from vectraguard.audit.store import AuditStore
from vectraguard.records import record
from vectraguard.runtime.owner import owner_alive

HINT = "`vectraguard ps` lists the running sessions"


@record
class RunningSession:
    """One running session, as its `started` record has it."""

    id: str
    started_at: str  # UTC, "2026-12-01T15:13:00.123Z"
    profile: str
    argv: tuple[str, ...]
    cwd: str  # on the host
    owner: str  # PID:STARTTIME of the `vectraguard` that runs it
    isolation: str  # container | gvisor | lite
    agent: str | None
    user: str
    started: dict[str, Any]  # the whole `started` record

    @property
    def owner_pid(self) -> int:
        return int(self.owner.partition(":")[0])


def running(store: AuditStore) -> list[RunningSession]:
    """Every running session in `store`, oldest first."""
    rows = store.db.execute("SELECT id, owner FROM sessions WHERE status = 'started' ORDER BY started_at, id")
    return [session for session_id, owner in rows.fetchall()
            if owner and owner_alive(owner) and (session := _load(store, session_id)) is not None]


def _load(store: AuditStore, session_id: str) -> RunningSession | None:
    row = store.db.execute("SELECT body FROM events WHERE session_id = ? AND kind = 'started' ORDER BY seq LIMIT 1",
                           (session_id,)).fetchone()
    if row is None:
        return None
    body = json.loads(row[0])
    return RunningSession(session_id, str(body.get("at", "")), str(body.get("profile", "")),
                          tuple(str(a) for a in body.get("argv", [])), str(body.get("cwd", "")),
                          str(body.get("owner", "")), str(body.get("isolation", "container")),
                          body.get("agent"), str(body.get("user", "")), body)


def one_running(store: AuditStore, given: str) -> RunningSession:
    """The running session `given` names (its whole id, or its first or last
    characters, as every command taking an ID reads it: ids.py), matched among
    the running sessions only (as `docker stop` does: ended ones would make
    every short prefix ambiguous). UsageError (125) when it names no running
    session (saying how a whole id's session ended), or several."""
    live = {session.id: session for session in running(store)}
    matches = ids.matching(given, live)
    if not matches:
        _refuse_ended(store, given)
    session = live[ids.one(given, matches, what="running session", hint=HINT)]
    _refuse_unless_own(session, store)
    return session


def _refuse_ended(store: AuditStore, given: str) -> None:
    """UsageError for a fragment that names no running session: how a session
    it names alone ended, else that there is none."""
    found = store.find(given, limit=2)
    if len(found) != 1:
        raise errors.UsageError(f"vectraguard: no running session {given!r}", hint=HINT)
    session_id = found[0]
    [status] = store.db.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if status == "started":  # its index row says so, but the vectraguard that ran it is gone
        raise errors.UsageError(f"vectraguard: session {session_id} is not running: the vectraguard that ran it "
                                "is gone (killed); its sandbox is removed by the next run or `vectraguard sandbox reap`")
    raise errors.UsageError(f"vectraguard: session {session_id} is not running (it ended: {status})",
                            hint=f"`vectraguard logs show {session_id}` shows how")


def _refuse_unless_own(session: RunningSession, store: AuditStore) -> None:
    """A store is one user's, but root can point VECTRAGUARD_DATA_DIR at
    another's: a session whose `vectraguard` runs as someone else is theirs
    to stop or enter (root included: it would bypass their control). And a
    store another user wrote may name any of our processes as a session's
    owner (`stop` signals it): the store must be ours, and the owner a
    `vectraguard` (_is_vectraguard)."""
    try:
        store_uid = os.stat(store.path).st_uid
    except OSError:
        store_uid = -1
    if store_uid != os.getuid():
        raise errors.PolicyError(f"vectraguard: session {session.id} belongs to another user (its audit store "
                                 f"{store.path} is uid {store_uid}'s): only they can stop it or run commands in it",
                                 hint="run the command as that user")
    try:
        with open(f"/proc/{session.owner_pid}/status") as status:
            uid = next(int(line.split()[1]) for line in status if line.startswith("Uid:"))
    except (OSError, StopIteration, ValueError):
        raise errors.UsageError(f"vectraguard: session {session.id} is not running") from None
    if uid != os.getuid():
        raise errors.PolicyError(f"vectraguard: session {session.id} belongs to another user (uid {uid}, "
                                 f"recorded as {session.user!r}): only they can stop it or run commands in it",
                                 hint="run the command as that user")
    if not _is_vectraguard(session.owner_pid):
        raise errors.PolicyError(f"vectraguard: the process recorded as running session {session.id} "
                                 f"(pid {session.owner_pid}) is not a vectraguard: nothing is done to it",
                                 hint="`vectraguard logs verify` checks the audit store")


def _is_vectraguard(pid: int) -> bool:
    """Whether process `pid` is a `vectraguard` command: this interpreter,
    running the `vectraguard` script (`vectraguard-python` where the native
    front end took its name: contrib/install.sh) or `-m vectraguard`, or this
    installation's native front end, beside the interpreter (a served run's
    owner is its client, either of them: forkserver/)."""
    import sys

    try:
        exe = os.path.realpath(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return False
    if exe == os.path.realpath(os.path.join(os.path.dirname(sys.executable), "vectraguard")):
        return True  # the native front end (contrib/client/), itself a program, not a script
    if exe != os.path.realpath(sys.executable):
        return False
    # The interpreter's own options come first (-P, -X importtime ...); then the
    # script, or `-m vectraguard`. What follows is the run's own (`run -p x -- sh`).
    at = 1
    while at < len(words) and words[at].startswith(b"-") and words[at] not in (b"-m", b"-c", b"-", b"--"):
        at += 2 if words[at] in (b"-X", b"-W", b"-Q") else 1
    rest = words[at:]
    return (bool(rest) and os.path.basename(rest[0]) in (b"vectraguard", b"vectraguard-python")) \
        or rest[:2] == [b"-m", b"vectraguard"]
