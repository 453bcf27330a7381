"""What `logs verify`, `show`, `export`, `replay` and `prune` do with a store edited by hand.

The attacker has the store's file (and knows chain_hash): sessions split by a
prune, output rows the record does not name, index columns edited, recordings
swapped, escape sequences in stored values, rows of the wrong type. Stores are
built by the real CLI (`check` decisions) or through the store's own API
(sessions of runs, interleaved as concurrent runs leave them), tampered with
sqlite3, and read by the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import Caller
from tests.test_audit_anchor import _decisions, _rehash_from, _sql
from vectraguard.audit.settings import AuditSettings
from vectraguard.audit.store import AuditStore, chain_hash, open_store


def _vg(caller: Caller, cwd: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return caller.run(list(args), cwd=cwd, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})


def _store(data_dir: Path) -> AuditStore:
    store = open_store(data_dir / "audit.db")
    store.settings = AuditSettings()  # nothing keyed or forwarded, whatever this host's policy says
    return store


def _started(store: AuditStore, session: str, at: str, argv: tuple[str, ...] = ("make", "test")) -> None:
    """A run's `started` event and index row, as run_audit.py writes them."""
    body = {"version": 1, "session": session, "status": "started", "at": at, "agent": None, "user": "root",
            "profile": "test", "argv": list(argv), "owner": "1:1"}
    store.append(session, "started", body, {"id": session, "started_at": at, "agent": None, "user": "root",
                                            "profile": "test", "command": shlex.join(argv), "status": "started",
                                            "owner": "1:1"})


def _summary(head: bytes, tail: bytes) -> dict[str, Any]:
    return {"bytes": len(head + tail), "sha256": hashlib.sha256(head + tail).hexdigest(), "truncated": False,
            "head_sha256": hashlib.sha256(head).hexdigest(), "tail_sha256": hashlib.sha256(tail).hexdigest()}


def _finished(store: AuditStore, session: str, at: str, outputs: dict[str, tuple[bytes, bytes]] | None = None,
              recording: dict[str, Any] | None = None) -> None:
    outputs = outputs or {}
    body = {"version": 1, "session": session, "status": "ok", "exit_status": 0, "at": at, "duration_ms": 5,
            "output": {name: _summary(*blobs) for name, blobs in outputs.items()}, "recording": recording}
    store.append(session, "finished", body, {"status": "ok", "exit_status": 0, "ended_at": at, "duration_ms": 5},
                 outputs)


def _session_ids(data_dir: Path) -> list[str]:
    db = sqlite3.connect(data_dir / "audit.db")
    try:
        return [row[0] for row in db.execute("SELECT session_id FROM events WHERE kind != 'pruned' ORDER BY seq")]
    finally:
        db.close()


A, B, C = "018f00000000aaaaaaaaaa", "018f00000001bbbbbbbbbb", "018f00000002cccccccccc"
Z = "018effffffffffffffffff"


# -- prunes never split a session ------------------------------------------------------------


def test_a_prune_never_splits_a_session(root: Caller, workspace: Path, data_dir: Path) -> None:
    store = _store(data_dir)
    _started(store, Z, "2025-12-31T00:00:00.000Z")
    _finished(store, Z, "2025-12-31T00:00:01.000Z")
    _started(store, A, "2026-01-01T00:00:00.000Z")
    _started(store, B, "2026-09-01T00:00:00.000Z")  # after the cut
    _finished(store, A, "2026-09-01T00:00:01.000Z")  # A's events straddle B's start
    store.close()
    result = _vg(root, workspace, data_dir, "logs", "prune", "--before", "2026-06-01", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1].startswith("pruned 1 sessions (events up to 2)")
    assert _session_ids(data_dir) == [A, B, A]  # A is kept whole, and everything after its first event
    assert _vg(root, workspace, data_dir, "logs", "verify").returncode == 0
    # Once a cut falls after both, A and B go whole.
    store = _store(data_dir)
    _finished(store, B, "2026-09-01T00:00:02.000Z")
    _started(store, C, "2026-09-02T00:00:00.000Z")
    store.close()
    result = _vg(root, workspace, data_dir, "logs", "prune", "--before", "2026-09-01T12:00:00Z", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1].startswith("pruned 2 sessions (events up to 7)")
    assert _session_ids(data_dir) == [C]
    assert _vg(root, workspace, data_dir, "logs", "verify").returncode == 0


def test_a_forged_prune_that_splits_a_session_fails(root: Caller, workspace: Path, data_dir: Path) -> None:
    store = _store(data_dir)
    _started(store, A, "2026-01-01T00:00:00.000Z", ("rm", "-rf", "/"))
    _started(store, B, "2026-01-01T00:00:01.000Z")
    _finished(store, A, "2026-01-01T00:00:02.000Z")
    _finished(store, B, "2026-01-01T00:00:03.000Z")
    store.close()
    db = sqlite3.connect(data_dir / "audit.db")
    [(first,)] = db.execute("SELECT hash FROM events WHERE seq = 1").fetchall()
    [(last,)] = db.execute("SELECT hash FROM events WHERE seq = 4").fetchall()
    db.close()
    body = json.dumps({"at": "2026-01-02T00:00:00.000Z", "before": "2026-01-01T00:00:00.500Z", "sessions": 0,
                       "through_hash": first, "through_seq": 1, "version": 1}, sort_keys=True, separators=(",", ":"))
    _sql(data_dir, "DELETE FROM events WHERE seq = 1",
         "INSERT OR REPLACE INTO meta VALUES ('pruned_through', '1')",
         f"INSERT OR REPLACE INTO meta VALUES ('pruned_head', '{first}')",
         f"INSERT INTO events VALUES (5, '-', 'pruned', '{body}', '{last}', '{chain_hash(last, 5, '-', 'pruned', body)}')")
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert (f"audit trail broken: event 3 (finished of session {A}): the session's events begin here, not with its "
            "opening event (started, refused or checked) — its beginning was deleted") in result.stderr.decode()


# -- outputs the record does not name ---------------------------------------------------------


@pytest.mark.parametrize("stream", ["STDERR", "stdout ", "stdout\x1b[2K"])
def test_output_rows_the_record_does_not_name_fail_and_are_not_shown(root: Caller, workspace: Path, data_dir: Path,
                                                                     stream: str) -> None:
    store = _store(data_dir)
    _started(store, A, "2026-01-01T00:00:00.000Z")
    _finished(store, A, "2026-01-01T00:00:01.000Z", {"stdout": (b"real\n", b""), "stderr": (b"", b"")})
    _started(store, B, "2026-01-01T00:00:02.000Z")  # still running: no finished record at all
    store.close()
    db = sqlite3.connect(data_dir / "audit.db")
    db.execute("INSERT INTO outputs VALUES (?, ?, ?, ?)", (A, stream, b"all good\n", b""))
    db.execute("INSERT INTO outputs VALUES (?, ?, ?, ?)", (B, "stdout", b"forged\n", b""))
    db.commit()
    db.close()
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    err = result.stderr.decode()
    shown = repr(stream).replace("\x1b", "\\x1b")
    assert f"session {A}: stored output {shown} is not a stream its finished record names — it was added" in err
    assert f"session {B}: stored output 'stdout' is not a stream its finished record names" in err
    assert "\x1b" not in err
    show = _vg(root, workspace, data_dir, "logs", "show", A)
    assert show.returncode == 0, show.stderr
    assert b"all good" not in show.stdout and b"real" in show.stdout
    assert json.loads(_vg(root, workspace, data_dir, "logs", "show", A, "--json").stdout)["output"].keys() == {
        "stdout", "stderr"}
    export = _vg(root, workspace, data_dir, "logs", "export").stdout.decode()
    assert "all good" not in export and "forged" not in export  # (base64 of neither either)
    for text in (b"all good\n", b"forged\n"):
        import base64

        assert base64.b64encode(text).decode() not in export


# -- every index column ------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "value"), [
    ("command", "'ls'"), ("started_at", "'2020-01-01T00:00:00.000Z'"), ("ended_at", "NULL"), ("agent", "'claude'"),
    ("user", "'nobody'"), ("profile", "'trusted'"), ("duration_ms", "7"), ("owner", "'4242:1'"),
    ("exit_status", "3"),
])
def test_every_index_column_is_checked(root: Caller, workspace: Path, data_dir: Path, column: str,
                                       value: str) -> None:
    _decisions(root, workspace, data_dir, 2)
    assert _vg(root, workspace, data_dir, "logs", "verify").returncode == 0
    _sql(data_dir, f"UPDATE sessions SET {column} = {value} WHERE command = 'echo decision-0'")
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert f"the index says {column} " in result.stderr.decode()
    assert "— the index was edited" in result.stderr.decode()


def test_an_edited_run_index_is_found(root: Caller, workspace: Path, data_dir: Path) -> None:
    store = _store(data_dir)
    _started(store, A, "2026-01-01T00:00:00.000Z", ("rm", "-rf", "/"))
    _finished(store, A, "2026-01-01T00:00:01.000Z")
    store.close()
    assert _vg(root, workspace, data_dir, "logs", "verify").returncode == 0
    _sql(data_dir, "UPDATE sessions SET command = 'ls'")
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert (f"session {A}: the index says command 'ls', the events say 'rm -rf /' — the index was edited"
            in result.stderr.decode())


# -- recordings --------------------------------------------------------------------------------


def _recorded(data_dir: Path) -> Path:
    cast = data_dir / "recordings" / f"{A}.cast"
    cast.parent.mkdir(mode=0o700)
    cast.write_text('{"version": 2, "width": 80, "height": 24}\n[0.01, "o", "$ true\\r\\n"]\n')
    store = _store(data_dir)
    _started(store, A, "2026-01-01T00:00:00.000Z", ("sh",))
    _finished(store, A, "2026-01-01T00:00:01.000Z", recording={
        "path": str(cast), "format": "asciicast-v2", "output_bytes": 8, "capped": False,
        "sha256": hashlib.sha256(cast.read_bytes()).hexdigest()})
    store.close()
    return cast


def test_a_changed_or_missing_recording_fails_and_is_not_replayed(root: Caller, workspace: Path,
                                                                  data_dir: Path) -> None:
    cast = _recorded(data_dir)
    assert _vg(root, workspace, data_dir, "logs", "verify").returncode == 0
    played = _vg(root, workspace, data_dir, "logs", "replay", A, "--speed", "100")
    assert played.returncode == 0 and b"$ true" in played.stdout, played.stderr
    cast.write_text('{"version": 2, "width": 80, "height": 24}\n[0.01, "o", "nothing happened\\r\\n"]\n')
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert (f"session {A}: the recording '{cast}' does not match the SHA-256 its finished record holds — it was "
            "changed after the session") in result.stderr.decode()
    played = _vg(root, workspace, data_dir, "logs", "replay", A)
    assert played.returncode == 1 and b"nothing happened" not in played.stdout
    assert played.stderr.decode().startswith(f"vectraguard: the recording {cast} does not match the SHA-256 its "
                                             "record holds — it was changed after the session; not played")
    cast.unlink()
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert f"the recording '{cast}' its finished record names is missing" in result.stderr.decode()


# -- escaping ----------------------------------------------------------------------------------

FAKE_OK = "ok\x1b[2K\r\x1b[1Aok: 9 events, chain head 0"


def test_verify_escapes_the_stored_values_it_quotes(root: Caller, workspace: Path, data_dir: Path) -> None:
    _decisions(root, workspace, data_dir, 1)
    db = sqlite3.connect(data_dir / "audit.db")
    db.execute("UPDATE sessions SET status = ?", (FAKE_OK,))
    db.execute("INSERT INTO sessions(id, started_at, status) VALUES (?, '2026-01-01', 'ok')", ("x" + FAKE_OK,))
    db.commit()
    db.close()
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "\x1b" not in err and "\r" not in err
    assert "the index says status 'ok\\x1b[2K\\r\\x1b[1Aok: 9 events" in err
    assert "session xok\\x1b[2K\\r\\x1b[1Aok: 9 events, chain head 0: in the index but has no events" in err


def test_show_escapes_the_keys_of_a_record(root: Caller, workspace: Path, data_dir: Path) -> None:
    _decisions(root, workspace, data_dir, 1)
    db = sqlite3.connect(data_dir / "audit.db")
    [(session, body)] = db.execute("SELECT session_id, body FROM events").fetchall()
    record = json.loads(body)
    record[FAKE_OK] = "x"
    db.execute("UPDATE events SET body = ?", (json.dumps(record, sort_keys=True, separators=(",", ":")),))
    db.commit()
    db.close()
    _rehash_from(data_dir, 1)
    shown = _vg(root, workspace, data_dir, "logs", "show", session)
    assert shown.returncode == 0, shown.stderr
    assert b"\x1b" not in shown.stdout and b"\r" not in shown.stdout
    assert b"  ok\\x1b[2K\\r\\x1b[1Aok: 9 events, chain head 0: x" in shown.stdout


# -- rows of the wrong type --------------------------------------------------------------------


def test_output_stored_as_text_fails_verify_and_show_says_so(root: Caller, workspace: Path, data_dir: Path) -> None:
    store = _store(data_dir)
    _started(store, A, "2026-01-01T00:00:00.000Z")
    _finished(store, A, "2026-01-01T00:00:01.000Z", {"stdout": (b"real\n", b"")})
    store.close()
    _sql(data_dir, "UPDATE outputs SET head = CAST(head AS TEXT)")
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert (f"session {A}: stored 'stdout' is not bytes (its head is text, its tail blob) — it was edited"
            in result.stderr.decode())
    for args in (["show", A], ["show", A, "--json"], ["export"]):
        result = _vg(root, workspace, data_dir, "logs", *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.decode() == (
            f"vectraguard: the stored 'stdout' output of session {A} is not bytes — the audit store was edited; "
            "`vectraguard logs verify` names what was changed\n")


@pytest.mark.parametrize("body", ["[1,2]", "\"text\"", "7"])
def test_a_body_that_is_no_object_fails_verify_and_show_says_so(root: Caller, workspace: Path, data_dir: Path,
                                                                body: str) -> None:
    _decisions(root, workspace, data_dir, 2)
    db = sqlite3.connect(data_dir / "audit.db")
    [(session,)] = db.execute("SELECT session_id FROM events WHERE seq = 2").fetchall()
    db.execute("UPDATE events SET body = ? WHERE seq = 2", (body,))
    db.commit()
    db.close()
    _rehash_from(data_dir, 2)
    result = _vg(root, workspace, data_dir, "logs", "verify")
    assert result.returncode == 1
    assert f"event 2 (checked of session {session}): its body is not a JSON object — it was edited" in (
        result.stderr.decode())
    for args in (["show", session], ["show", session, "--json"], ["export"]):
        result = _vg(root, workspace, data_dir, "logs", *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.decode() == (
            f"vectraguard: event 2 (of session {session}): its body is not a JSON object — the audit store was "
            "edited; `vectraguard logs verify` names what was changed\n")


def test_show_of_a_record_of_a_shape_no_writer_gives_is_one_clear_error(root: Caller, workspace: Path,
                                                                        data_dir: Path) -> None:
    _decisions(root, workspace, data_dir, 1)
    db = sqlite3.connect(data_dir / "audit.db")
    [(session, body)] = db.execute("SELECT session_id, body FROM events").fetchall()
    record = {**json.loads(body), "findings": "not a list of findings"}
    db.execute("UPDATE events SET body = ?", (json.dumps(record, sort_keys=True, separators=(",", ":")),))
    db.commit()
    db.close()
    _rehash_from(data_dir, 1)
    shown = _vg(root, workspace, data_dir, "logs", "show", session)
    assert shown.returncode == 1
    assert shown.stderr.decode() == (
        f"vectraguard: a checked record of session {session} does not have the shape its writer gives it — the "
        "audit store was edited; `vectraguard logs verify` names what was changed\n")
