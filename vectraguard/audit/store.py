"""The audit store: SQLite in WAL mode, one hash-chained event per write.

Each session is written as events — `started` (committed before the
container exists), then `finished`; or `refused`; or `incomplete`, added by
a later run when the process that started a session died; or, for a
decision of `vectraguard check` (an agent's hook asking before it runs a
command on the host), one `checked` event, with its own session id. Every event's
hash covers the previous event's hash, its own sequence number and body, so
editing, deleting or reordering any event breaks the chain from there on;
`logs verify` names the first broken link. The `sessions` table is an index
for fast listing, checked against the events by `verify` too.

Fail closed: if the store cannot be opened or written, nothing runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from vectraguard import paths
from vectraguard.audit import exact, forward, keyed
from vectraguard.audit import settings as settings_module
from vectraguard.audit.settings import AuditSettings
from vectraguard.digests import sha256_hex
from vectraguard.errors import VGError
from vectraguard.records import record
from vectraguard.terminal.escape import printable

SCHEMA_VERSION = 1
GENESIS = "0" * 64
# The events that set a session's status (and its index row); others, such as
# workspace-applied and workspace-discarded, only add to its record.
STATUS_KINDS = ("started", "finished", "refused", "incomplete", "checked")
# The events that open a session's index row.
OPENING_KINDS = ("started", "refused", "checked")
DB_NAME = "audit.db"

DDL = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    agent TEXT,
    user TEXT,
    profile TEXT,
    command TEXT,
    status TEXT NOT NULL,
    exit_status INTEGER,
    duration_ms INTEGER,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS events_session ON events(session_id, seq);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at);
CREATE INDEX IF NOT EXISTS sessions_agent ON sessions(agent, started_at);
CREATE INDEX IF NOT EXISTS sessions_profile ON sessions(profile, started_at);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions(status, started_at);
CREATE TABLE IF NOT EXISTS event_macs (
    seq INTEGER PRIMARY KEY,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    session_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    head BLOB NOT NULL,
    tail BLOB NOT NULL,
    PRIMARY KEY (session_id, stream)
);
"""


UNAVAILABLE_HINT = "free space or fix permissions there, or point VECTRAGUARD_DATA_DIR at a writable directory"


class AuditUnavailable(VGError):
    """The audit store cannot be written: nothing may run unrecorded. `path` is
    the store, `cause` what SQLite or the file system said."""

    def __init__(self, message: str, *, hint: str, path: Path, cause: str) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.cause = cause


class TamperedRecord(VGError):
    """A record that cannot be what a writer wrote (a body that is no JSON object, an
    output that is not bytes): shown as one line, exit 1 as `logs verify`'s broken trail."""

    exit_status = 1

    def __init__(self, message: str) -> None:
        super().__init__(printable(message), hint="`vectraguard logs verify` names what was changed")


class UnknownSession(VGError):
    """An event that does not open a session, for a session this store has no
    events of: a sandbox of a run recorded in another store (another
    VECTRAGUARD_DATA_DIR, reaped here), or of a pruned session. Written, it
    would read as the rest of a session whose beginning was deleted."""

    def __init__(self, session_id: str, kind: str) -> None:
        super().__init__(f"vectraguard: no session {session_id} in this audit store: its {kind} event is not "
                         "recorded here")


def record_of(seq: int, session_id: str, body: str) -> dict[str, Any]:
    """An event's body as the record it must be (a JSON object), else TamperedRecord."""
    try:
        record = json.loads(body)
    except (TypeError, ValueError):
        record = None
    if not isinstance(record, dict):
        raise TamperedRecord(f"vectraguard: event {seq} (of session {session_id}): its body is not a JSON object "
                             "— the audit store was edited")
    return record


def canonical(body: dict[str, Any]) -> str:
    """The event body as stored and hashed: sorted keys, no spaces, UTF-8; a
    string that is not UTF-8 (a file name, an argument) as {"b64": ...}, so
    that no input fails the write — and with it the record of what ran (exact.py)."""
    text = json.dumps(exact.to_record(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return exact.escape_surrogates(text)


def index_text(value: Any) -> Any:
    """A value for the session index (a summary for listing and filtering; the
    events are the exact record): a string that is not UTF-8 with each such
    byte as \\xNN, which SQLite can store."""
    if isinstance(value, str) and not exact.is_exact(value):
        return exact.as_bytes(value).decode("utf-8", "backslashreplace")
    return value


def chain_hash(prev: str, seq: int, session_id: str, kind: str, body: str) -> str:
    return sha256_hex(f"{prev}\n{seq}\n{session_id}\n{kind}\n{body}".encode())


def store_path() -> Path:
    return paths.data_dir() / DB_NAME


@record
class PrunePlan:
    """What a prune drops: events up to `through` (0: nothing), the sessions
    that go whole, and the first and last `started_at` among them (store form)."""

    through: int
    sessions: list[str]
    oldest: str | None
    newest: str | None


class AuditStore:
    """The audit database: hash-chained events and the session index.
    `settings`: keyed mode and forwarding (settings.py); None = the system
    policy's, read at the first write."""

    def __init__(self, db: sqlite3.Connection, path: Path, settings: AuditSettings | None = None) -> None:
        self.db = db
        self.path = path
        self.settings = settings
        self._key: bytes | None = None
        self._written: list[tuple[int, str, str, str, str]] = []

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One durable write transaction; any SQLite failure refuses (fail closed).
        Its events go to syslog once committed (forward.py: fail open, reported)."""
        if self.settings is None:  # before BEGIN: a key that cannot be read writes nothing
            self.settings = self._load_settings()
            self._key = settings_module.read_key(self.settings.key_file) if self.settings.key_file else None
        self._written.clear()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                # A full disk (SQLITE_FULL) or I/O error has already rolled the
                # transaction back: a second ROLLBACK would hide the cause
                # behind "cannot rollback - no transaction is active".
                if self.db.in_transaction:
                    with suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None
        if self.settings.forward == "syslog":
            for seq, session_id, kind, text, digest in self._written:
                failure = forward.send(self.settings.syslog_socket, seq, session_id, kind, text, digest)
                if failure is not None:
                    forward.report(self.settings.syslog_socket, seq, failure)

    def _load_settings(self) -> AuditSettings:
        """The policy's audit settings. An invalid policy refuses every run by itself
        (config/policy.py); its refusal is still recorded — without a MAC, which
        is only right while no event has one: once keyed mode has begun, an
        unkeyed event would read as a rewrite, so nothing is written (fail closed)."""
        try:
            return settings_module.load()
        except VGError:
            try:
                keyed_before = self.db.execute("SELECT 1 FROM event_macs LIMIT 1").fetchone() is not None
            except sqlite3.Error:
                keyed_before = True
            if keyed_before:
                raise
            return AuditSettings()

    def _insert_event(self, session_id: str, kind: str, body: dict[str, Any]) -> None:
        """Chained to the last event; call inside a transaction, which serialises writers."""
        text = canonical(body)
        row = self.db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        prev_seq, prev = (row[0], row[1]) if row else self.pruned_checkpoint()
        seq = prev_seq + 1
        digest = chain_hash(prev, seq, session_id, kind, text)
        self.db.execute("INSERT INTO events(seq, session_id, kind, body, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                        (seq, session_id, kind, text, prev, digest))
        if self._key is not None:
            self.db.execute("INSERT INTO event_macs VALUES (?, ?)", (seq, keyed.event_mac(self._key, seq, digest)))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            (keyed.MAC_HEAD, f"{seq}:{digest}:{keyed.head_mac(self._key, seq, digest)}"))
        self._written.append((seq, session_id, kind, text, digest))

    def append(self, session_id: str, kind: str, body: dict[str, Any], index: dict[str, Any],
               outputs: dict[str, tuple[bytes, bytes]] | None = None, *, known_session: bool = False) -> None:
        """One event, its session index row and output blobs, in one durable
        transaction. `known_session`: UnknownSession (nothing written) if the
        session has no events here (the reaper's notes of removals, which may
        be of another store's runs)."""
        index = {column: index_text(value) for column, value in index.items()}
        with self._transaction():
            if known_session and kind not in OPENING_KINDS and self.db.execute(
                    "SELECT 1 FROM events WHERE session_id = ? LIMIT 1", (session_id,)).fetchone() is None:
                raise UnknownSession(session_id, kind)
            self._insert_event(session_id, kind, body)
            if kind in OPENING_KINDS:
                self.db.execute(f"INSERT INTO sessions({', '.join(index)}) VALUES ({', '.join('?' * len(index))})",
                                tuple(index.values()))
            elif index:  # events about a session after it ended (its workspace applied) leave the index alone
                sets = ", ".join(f"{column} = ?" for column in index)
                self.db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*index.values(), session_id))
            for stream, (head, tail) in (outputs or {}).items():
                self.db.execute("INSERT OR REPLACE INTO outputs VALUES (?,?,?,?)", (session_id, stream, head, tail))

    def pruned_checkpoint(self) -> tuple[int, str]:
        """(last pruned sequence number, its hash): where verification starts."""
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('pruned_through', 'pruned_head')"))
        return int(rows.get("pruned_through", 0)), rows.get("pruned_head", GENESIS)

    def prune_plan(self, before: str, limit: int | None = None) -> PrunePlan:
        """What `prune(before, ...)` would drop now, at most through event
        `limit`. `before` is a time in the store's form (times.store_form):
        sessions started earlier go, unless a later one (or one still
        running) holds an earlier event — only a prefix of the chain can go."""
        last = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        keep = self.db.execute(
            "SELECT MIN(e.seq) FROM events e JOIN sessions s ON s.id = e.session_id "
            "WHERE s.started_at >= ? OR s.status = 'started'", (before,)).fetchone()[0]
        through = self._whole_sessions_through(
            min((keep - 1) if keep is not None else last, last if limit is None else limit))
        if through <= self.pruned_checkpoint()[0]:
            return PrunePlan(0, [], None, None)
        gone = [r[0] for r in self.db.execute(
            "SELECT DISTINCT session_id FROM events WHERE seq <= ? AND session_id NOT IN "
            "(SELECT session_id FROM events WHERE seq > ?)", (through, through))]
        oldest, newest = self.db.execute(
            "SELECT MIN(started_at), MAX(started_at) FROM sessions WHERE id IN (SELECT DISTINCT session_id "
            "FROM events WHERE seq <= ? AND session_id NOT IN (SELECT session_id FROM events WHERE seq > ?))",
            (through, through)).fetchone()
        return PrunePlan(through, [g for g in gone if g != "-"], oldest, newest)

    def _whole_sessions_through(self, wanted: int) -> int:
        """The largest prefix of the chain, up to event `wanted`, that splits no
        session: a session with events on both sides of the cut keeps them all,
        and with them everything after its first event. One pass over the
        sessions' (first, last) event, ordered by first, merging the spans."""
        spans = self.db.execute("SELECT MIN(seq), MAX(seq) FROM events WHERE kind != 'pruned' "
                                "GROUP BY session_id ORDER BY 1")
        start = end = None  # the merged span being walked: events start..end belong together
        for first, last in spans:
            if first > wanted:
                break
            if end is None or first > end:
                start, end = first, last
            else:
                end = max(end, last)
        if start is not None and end is not None and start <= wanted < end:
            return int(start) - 1
        return wanted

    def prune(self, before: str, at: str, limit: int | None = None) -> tuple[int, list[str]]:
        """Drop the oldest sessions (started before `before`; at most through
        event `limit`, so that nothing goes beyond what a confirmed plan
        showed), keeping the chain verifiable: only a prefix of the events
        goes, its last hash is kept as a checkpoint, and the prune itself is
        an event on the chain. Returns the last sequence number dropped and
        the sessions that went."""
        with self._transaction():
            plan = self.prune_plan(before, limit)
            through, gone = plan.through, plan.sessions
            if not through:
                return 0, []
            head = self.db.execute("SELECT hash FROM events WHERE seq = ?", (through,)).fetchone()[0]
            self.db.execute("DELETE FROM events WHERE seq <= ?", (through,))
            self.db.execute("DELETE FROM event_macs WHERE seq <= ?", (through,))
            self.db.executemany("DELETE FROM sessions WHERE id = ?", [(g,) for g in gone])
            self.db.executemany("DELETE FROM outputs WHERE session_id = ?", [(g,) for g in gone])
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [("pruned_through", str(through)), ("pruned_head", head)])
            self._insert_event("-", "pruned", {"version": SCHEMA_VERSION, "before": before, "through_seq": through,
                                               "through_hash": head, "sessions": len(gone), "at": at})
        return through, gone

    def mark_incomplete(self, alive: Callable[[str], bool], at: str) -> list[str]:
        """Sessions left `started` by a process that is gone."""
        try:
            rows = self.db.execute("SELECT id, owner FROM sessions WHERE status = 'started'").fetchall()
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None
        marked = []
        for session_id, owner in rows:
            if owner and not alive(owner):
                body = {"version": SCHEMA_VERSION, "session": session_id, "at": at, "status": "incomplete",
                        "reason": "Vectra Guard stopped before recording the end (killed, or the host went down)"}
                self.append(session_id, "incomplete", body, {"status": "incomplete", "ended_at": at})
                marked.append(session_id)
        return marked

    # -- reading ---------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the last event — the prune checkpoint's when
        none is left, (0, GENESIS) for an empty store: what `logs head` prints."""
        row = self.db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else self.pruned_checkpoint()

    def events(self) -> Iterator[tuple[int, str, str, str, str, str]]:
        yield from self.db.execute("SELECT seq, session_id, kind, body, prev_hash, hash FROM events ORDER BY seq")

    def session_chain(self, session_id: str) -> list[tuple[int, str, str, str, str, str]]:
        """A session's events as `events()` gives them: (seq, session, kind, body text, prev_hash, hash)."""
        return self.db.execute("SELECT seq, session_id, kind, body, prev_hash, hash FROM events "
                               "WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()

    def session_events(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self.db.execute("SELECT seq, kind, body FROM events WHERE session_id = ? ORDER BY seq", (session_id,))
        return [(kind, record_of(seq, session_id, body)) for seq, kind, body in rows]

    def outputs(self, session_id: str, named: Iterable[str] | None = None) -> dict[str, tuple[bytes, bytes]]:
        """The stored output of the streams `named` (those a finished record describes: a row for
        another stream was not written by a run, and is not shown as recorded); None: every row."""
        rows = self.db.execute("SELECT stream, head, tail FROM outputs WHERE session_id = ?", (session_id,))
        wanted = None if named is None else set(named)
        blobs = {}
        for stream, head, tail in rows:
            if wanted is not None and stream not in wanted:
                continue
            if not isinstance(head, bytes) or not isinstance(tail, bytes):
                raise TamperedRecord(f"vectraguard: the stored {stream!r} output of session {session_id} is not "
                                     "bytes — the audit store was edited")
            blobs[stream] = (head, tail)
        return blobs

    def find(self, given: str, limit: int = 2) -> list[str]:
        """The ids of sessions that start or end with `given` (ids.py), sorted, at most `limit`."""
        if not given or not exact.is_exact(given):
            return []  # ids are hex: bytes that are not UTF-8 name no session (and SQLite cannot bind them)
        rows = self.db.execute("SELECT id FROM sessions WHERE (id >= ? AND id < ?) OR substr(id, -?) = ? "
                               "ORDER BY id LIMIT ?", (given, given + "\U0010ffff", len(given), given, limit))
        return [r[0] for r in rows]

    def recent_ids(self, limit: int) -> list[str]:
        """The ids of the `limit` sessions started last, newest first (shell completion)."""
        return [row[0] for row in self.recent(limit)]

    def recent(self, limit: int, recorded: bool = False) -> list[tuple[str, str, str, str]]:
        """(id, started_at, profile, command) of the `limit` sessions started last, newest first; with
        `recorded`, only those whose finished record names a terminal recording (`logs replay` plays
        them). For shell completion: the index as it is, not verified."""
        if not recorded:
            rows = self.db.execute("SELECT id, started_at, profile, command FROM sessions "
                                   "ORDER BY started_at DESC LIMIT ?", (limit,))
        else:
            rows = self.db.execute(
                "SELECT s.id, s.started_at, s.profile, s.command FROM sessions s WHERE EXISTS (SELECT 1 FROM events e "
                "WHERE e.session_id = s.id AND e.kind = 'finished' AND json_extract(e.body, '$.recording') IS NOT NULL) "
                "ORDER BY s.started_at DESC LIMIT ?", (limit,))
        return [(r[0], r[1] or "", r[2] or "", r[3] or "") for r in rows]

    def close(self) -> None:
        self.db.close()


def _unavailable(path: Path, exc: BaseException) -> AuditUnavailable:
    return AuditUnavailable(f"vectraguard: the audit store {path} cannot be written ({exc}); nothing runs unrecorded",
                            hint=UNAVAILABLE_HINT, path=path, cause=str(exc))


def open_store(path: Path | None = None) -> AuditStore:
    path = path or store_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old_umask = os.umask(0o077)  # the database and its WAL files: 0600
        try:
            # Setting up a new store (journal mode, tables) is not covered by SQLite's busy
            # timeout: two runs opening a fresh store at once failed with "database is
            # locked" (1 in 180 here). One at a time, under a lock file beside it.
            # Connected first: the lock file must not take a standard descriptor a caller
            # left closed (`<&-`) and hand it on to whatever opens next.
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            lock = os.open(path.parent / f".{path.name}.open-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA busy_timeout=30000")
                db.executescript(DDL)
            except BaseException:
                db.close()
                raise
            finally:
                os.close(lock)  # the lock goes with it
        finally:
            os.umask(old_umask)
        return AuditStore(db, path)
    except (sqlite3.Error, OSError) as exc:
        raise _unavailable(path, exc) from None


READ_HINT = "check that the file is readable by you, or verify a copy of it (with its -wal file) elsewhere"


def open_reader(path: Path | None = None) -> AuditStore | None:
    """The store opened for reading only (`logs verify`, `logs head`), or None
    when there is none yet. Writes nothing: no directory, no tables, no
    journal-mode change — so it works on a full disk and on a read-only
    copy. SQLite's read-only mode still needs the WAL's shared-memory index
    (it creates `-shm`/`-wal` where it can); where it cannot (a directory we
    may not write, a full disk) the file is read as immutable, which is exact
    only when no write-ahead log holds committed events: a non-empty `-wal`
    then refuses rather than verify a shorter chain (fail closed)."""
    path = path or store_path()
    if not path.exists():
        return None
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return AuditStore(db, path)
        except sqlite3.OperationalError:
            db.close()
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise AuditUnavailable(
                f"vectraguard: the audit store {path} cannot be read without write access: its write-ahead log "
                f"{wal} holds events that SQLite reads only through a shared-memory index it cannot create here",
                hint=READ_HINT, path=path, cause="read-only WAL")
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return AuditStore(db, path)
    except (sqlite3.Error, OSError) as exc:
        raise AuditUnavailable(f"vectraguard: the audit store {path} cannot be read ({exc})", hint=READ_HINT,
                               path=path, cause=str(exc)) from None
