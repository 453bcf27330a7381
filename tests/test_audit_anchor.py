"""Tampering found against a head kept elsewhere, a forged prune checkpoint, read-only verification.

The attacker here has the audit store's file and knows the chain's hashing
(chain_hash is no secret): every attack re-hashes what it can, so that only
what Vectra Guard checks beyond the chain's own consistency can catch it.
Stores are made by the real CLI (runs in containers, and `check` decisions,
which record without one); verification is the real CLI too.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.vg import Caller
from vectraguard.audit.store import chain_hash

P = ["run", "-p", "test-tight"]


def _vg(caller: Caller, cwd: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return caller.run(list(args), cwd=cwd, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})


def _decisions(caller: Caller, cwd: Path, data_dir: Path, count: int) -> None:
    """`count` sessions of one event each: `check` decisions, recorded without a container."""
    for index in range(count):
        assert _vg(caller, cwd, data_dir, "check", "--", "echo", f"decision-{index}").returncode == 0


def _head(caller: Caller, cwd: Path, data_dir: Path) -> str:
    result = _vg(caller, cwd, data_dir, "logs", "head")
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def _sql(data_dir: Path, *statements: str) -> None:
    db = sqlite3.connect(data_dir / "audit.db")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def _rehash_from(data_dir: Path, first: int) -> None:
    """What an attacker does after editing event `first`: recompute every link from there on."""
    db = sqlite3.connect(data_dir / "audit.db")
    row = db.execute("SELECT hash FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1", (first,)).fetchone()
    prev = row[0] if row else "0" * 64
    rows = db.execute("SELECT seq, session_id, kind, body FROM events WHERE seq >= ? ORDER BY seq", (first,)).fetchall()
    for seq, session_id, kind, body in rows:
        digest = chain_hash(prev, seq, session_id, kind, body)
        db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    db.commit()
    db.close()


def _verify(caller: Caller, cwd: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return _vg(caller, cwd, data_dir, "logs", "verify", *args)


def test_head_is_seq_and_hash_and_export_carries_it(root: Caller, workspace: Path, data_dir: Path) -> None:
    assert _head(root, workspace, data_dir) == "0:" + "0" * 64  # no store yet: the empty chain
    assert not (data_dir / "audit.db").exists()  # reading created nothing
    _decisions(root, workspace, data_dir, 3)
    head = _head(root, workspace, data_dir)
    seq, digest = head.split(":")
    assert seq == "3" and digest == _verify(root, workspace, data_dir).stdout.decode().split()[-1]
    trailer = json.loads(_vg(root, workspace, data_dir, "logs", "export").stdout.splitlines()[-1])
    assert trailer["head"] == head
    result = _verify(root, workspace, data_dir, "--head", head)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1] == f"ok: the store extends the head kept elsewhere, {head}"
    # An older head is extended by the newer store, as a file too (`logs head > FILE`).
    _decisions(root, workspace, data_dir, 1)
    (data_dir / "anchor").write_text(head + "\n")
    assert _verify(root, workspace, data_dir, "--head-file", str(data_dir / "anchor")).returncode == 0


def test_deleting_the_last_sessions_rows_is_found_with_the_head(root: Caller, workspace: Path, data_dir: Path) -> None:
    assert _vg(root, workspace, data_dir, *P, "--", "echo", "one").returncode == 0
    assert _vg(root, workspace, data_dir, *P, "--", "sh", "-c", "echo two; exit 3").returncode == 3
    head = _head(root, workspace, data_dir)
    assert head.startswith("6:")  # each run: started, finished, removed
    db = sqlite3.connect(data_dir / "audit.db")
    [(last,)] = db.execute("SELECT session_id FROM events WHERE seq = 6").fetchall()
    db.close()
    _sql(data_dir, f"DELETE FROM events WHERE session_id = '{last}'", f"DELETE FROM sessions WHERE id = '{last}'",
         f"DELETE FROM outputs WHERE session_id = '{last}'")
    assert _verify(root, workspace, data_dir).returncode == 0  # a shorter chain is a valid chain...
    result = _verify(root, workspace, data_dir, "--head", head)  # ...but not the one that was kept
    assert result.returncode == 1
    assert (f"audit trail broken: event 6 of the head kept elsewhere ({head}) is missing: the chain ends at "
            "event 3 — events after 3 were deleted") in result.stderr.decode(), result.stderr


@pytest.mark.parametrize("cut", [1, 2])
def test_truncation_is_found_with_the_head(root: Caller, workspace: Path, data_dir: Path, cut: int) -> None:
    _decisions(root, workspace, data_dir, 4)
    head = _head(root, workspace, data_dir)
    _sql(data_dir, f"DELETE FROM events WHERE seq > {4 - cut}",
         "DELETE FROM sessions WHERE id NOT IN (SELECT session_id FROM events)")
    result = _verify(root, workspace, data_dir, "--head", head)
    assert result.returncode == 1
    assert f"the chain ends at event {4 - cut} — events after {4 - cut} were deleted" in result.stderr.decode()


def test_a_chain_rehashed_after_an_edit_is_found_with_the_head(root: Caller, workspace: Path, data_dir: Path) -> None:
    _decisions(root, workspace, data_dir, 3)
    head = _head(root, workspace, data_dir)
    _sql(data_dir, "UPDATE events SET body = replace(body, 'decision-1', 'harmless') WHERE seq = 2",
         "UPDATE sessions SET command = replace(command, 'decision-1', 'harmless')")
    _rehash_from(data_dir, 2)
    assert _verify(root, workspace, data_dir).returncode == 0  # consistent in itself
    result = _verify(root, workspace, data_dir, "--head", head)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "audit trail broken: event 3 (checked of session" in err
    assert f"the head kept elsewhere says {head} — the chain was rewritten at or before event 3" in err
    # Re-hashing from a later point on leaves the anchored event alone: the chain itself breaks there.
    _sql(data_dir, "UPDATE events SET body = replace(body, 'decision-2', 'harmless') WHERE seq = 3")
    assert "event 3 (checked of session" in _verify(root, workspace, data_dir, "--head", head).stderr.decode()


def test_a_forged_prune_checkpoint_is_refused(root: Caller, workspace: Path, data_dir: Path) -> None:
    _decisions(root, workspace, data_dir, 6)
    head = _head(root, workspace, data_dir)
    [(fourth,)] = sqlite3.connect(data_dir / "audit.db").execute("SELECT hash FROM events WHERE seq = 4").fetchall()
    _sql(data_dir, "DELETE FROM events WHERE seq <= 4",
         "DELETE FROM sessions WHERE id NOT IN (SELECT session_id FROM events)",
         "INSERT OR REPLACE INTO meta VALUES ('pruned_through', '4')",
         f"INSERT OR REPLACE INTO meta VALUES ('pruned_head', '{fourth}')")
    expected = ("audit trail broken: events 1 to 4: gone, and no `pruned` event on the chain records pruning them "
                "(meta says pruned_through=4) — they were deleted and the prune checkpoint forged")
    for args in ([], ["--head", head]):
        result = _verify(root, workspace, data_dir, *args)
        assert result.returncode == 1
        assert expected in result.stderr.decode(), result.stderr


def test_a_genuine_prune_still_extends_older_heads(root: Caller, workspace: Path, data_dir: Path) -> None:
    _decisions(root, workspace, data_dir, 3)
    early = _head(root, workspace, data_dir)
    time.sleep(1.1)  # the cut falls after every session so far, in the past (a future one may be refused)
    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = _vg(root, workspace, data_dir, "logs", "prune", "--before", cut, "--yes")
    if result.returncode == 125 and b"--yes" in result.stderr:  # before the prune confirmation exists
        result = _vg(root, workspace, data_dir, "logs", "prune", "--before", cut)
    assert result.returncode == 0, result.stderr
    later = _head(root, workspace, data_dir)
    assert later.startswith("4:")  # the prune event
    assert f"chain head after the prune: {later} — keep it elsewhere" in result.stdout.decode()
    assert _verify(root, workspace, data_dir, "--head", later).returncode == 0
    # Without a key, nothing proves a head at or before the checkpoint (the checkpoint and its
    # `pruned` event are as easy to forge as the deletion they stand for): fail closed.
    for head in (early, "1:" + "a" * 64, "3:" + "b" * 64):
        result = _verify(root, workspace, data_dir, "--head", head)
        assert result.returncode == 1, result.stderr
        assert (f"audit trail broken: the head kept elsewhere ({head}) lies in the pruned part of the chain (events "
                "up to 3 are gone): without a key (audit.key_file) the store cannot prove it extends that head — "
                "after a prune, keep the new head `logs prune` prints") in result.stderr.decode()


def test_a_prune_checkpoint_beyond_the_head_proves_no_older_head(root: Caller, workspace: Path,
                                                                 data_dir: Path) -> None:
    """Everything wiped, a checkpoint past the old head and one chained `pruned` event: a valid
    chain in itself, which must not pass for the head kept elsewhere."""
    _decisions(root, workspace, data_dir, 10)
    head = _head(root, workspace, data_dir)
    forged = "f" * 64
    body = json.dumps({"at": "2026-01-01T00:00:00.000Z", "before": "2026-01-01T00:00:00.000Z", "sessions": 10,
                       "through_hash": forged, "through_seq": 500, "version": 1}, sort_keys=True,
                      separators=(",", ":"))
    _sql(data_dir, "DELETE FROM events", "DELETE FROM sessions", "DELETE FROM outputs",
         "INSERT OR REPLACE INTO meta VALUES ('pruned_through', '500')",
         f"INSERT OR REPLACE INTO meta VALUES ('pruned_head', '{forged}')",
         f"INSERT INTO events VALUES (501, '-', 'pruned', '{body}', '{forged}', "
         f"'{chain_hash(forged, 501, '-', 'pruned', body)}')")
    assert _verify(root, workspace, data_dir).returncode == 0  # consistent in itself
    result = _verify(root, workspace, data_dir, "--head", head)
    assert result.returncode == 1, result.stderr
    assert f"the head kept elsewhere ({head}) lies in the pruned part of the chain" in result.stderr.decode()


@pytest.mark.parametrize(("args", "message"), [
    (["--head", "12"], "vectraguard: --head: '12' is not a chain head; give it as `logs head` prints it: SEQ:HASH"),
    (["--head=-1:" + "0" * 64], "is not a chain head"),
    (["--head", "1:" + "0" * 63], "is not a chain head"),
    (["--head", "1:" + "g" * 64], "is not a chain head"),
    (["--head-file", "/nonexistent/head"], "vectraguard: --head-file /nonexistent/head: cannot be read"),
    (["--head", "1:" + "0" * 64, "--head-file", "x"], "not allowed with argument"),
])
def test_bad_heads_are_usage_errors(root: Caller, workspace: Path, data_dir: Path, args: list[str],
                                    message: str) -> None:
    result = _verify(root, workspace, data_dir, *args)
    assert result.returncode == 125
    assert message in result.stderr.decode() and b"Traceback" not in result.stderr


def test_no_store_extends_only_the_empty_head(root: Caller, workspace: Path, data_dir: Path) -> None:
    result = _verify(root, workspace, data_dir, "--head", "5:" + "c" * 64)
    assert result.returncode == 1 and b"there is no audit store here at all" in result.stderr
    assert not (data_dir / "audit.db").exists()


def test_a_read_only_copy_verifies(root: Caller, workspace: Path, data_dir: Path) -> None:
    """As an unprivileged user (root writes through modes): a directory 0555, the database 0444."""
    _decisions(root, workspace, data_dir, 3)
    head = _head(root, workspace, data_dir)
    copy = Path(tempfile.mkdtemp(prefix="vg-anchor-ro-"))
    try:
        shutil.copy(data_dir / "audit.db", copy / "audit.db")
        os.chmod(copy / "audit.db", 0o444)
        os.chmod(copy, 0o555)
        nobody = Caller("nobody", root.config_home)
        result = _verify(nobody, workspace, copy, "--head", head)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in copy.iterdir()) == ["audit.db"]
        assert _vg(nobody, workspace, copy, "logs", "head").stdout.decode().strip() == head
        # Read-only is no blind spot: a tampered copy is still caught.
        os.chmod(copy, 0o755)
        os.chmod(copy / "audit.db", 0o644)
        _sql(copy, "UPDATE events SET body = replace(body, 'decision-1', 'harmless') WHERE seq = 2")
        os.chmod(copy / "audit.db", 0o444)
        os.chmod(copy, 0o555)
        result = _verify(nobody, workspace, copy, "--head", head)
        assert result.returncode == 1 and b"event 2 (checked of session" in result.stderr
    finally:
        os.chmod(copy, 0o755)
        shutil.rmtree(copy, ignore_errors=True)


def test_verify_and_head_write_nothing_to_an_older_store(root: Caller, workspace: Path, data_dir: Path) -> None:
    """A store from before keyed mode and the events index: reading it adds neither (the file is unchanged)."""
    _decisions(root, workspace, data_dir, 2)
    _sql(data_dir, "DROP TABLE event_macs", "DROP INDEX events_session")
    db = sqlite3.connect(data_dir / "audit.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = (data_dir / "audit.db").read_bytes()
    head = _head(root, workspace, data_dir)
    assert _verify(root, workspace, data_dir, "--head", head).returncode == 0
    assert (data_dir / "audit.db").read_bytes() == before
    assert not (data_dir / "audit.db-wal").exists() or (data_dir / "audit.db-wal").stat().st_size == 0


def test_a_write_ahead_log_that_cannot_be_read_is_refused(root: Caller, workspace: Path, data_dir: Path) -> None:
    """Committed events still in `-wal`, unreadable without write access: refuse rather than verify less."""
    _decisions(root, workspace, data_dir, 2)
    copy = Path(tempfile.mkdtemp(prefix="vg-anchor-wal-"))
    db = sqlite3.connect(data_dir / "audit.db")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("INSERT INTO meta VALUES ('x', 'y')")
    db.commit()
    try:
        for name in ("audit.db", "audit.db-wal"):
            shutil.copy(data_dir / name, copy / name)
            os.chmod(copy / name, 0o444)
        os.chmod(copy, 0o555)
        result = _verify(Caller("nobody", root.config_home), workspace, copy)
        assert result.returncode == 125
        assert b"cannot be read without write access: its write-ahead log" in result.stderr
    finally:
        db.close()
        os.chmod(copy, 0o755)
        shutil.rmtree(copy, ignore_errors=True)


def _fill(directory: Path) -> None:
    subprocess.run(["dd", "if=/dev/zero", f"of={directory}/filler", "bs=4k"], capture_output=True, check=False)
    assert os.statvfs(directory).f_bavail == 0


def test_verify_works_on_a_full_disk(root: Caller, workspace: Path, data_dir: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(data_dir)], check=True)
    try:
        _decisions(root, workspace, data_dir, 3)
        head = _head(root, workspace, data_dir)
        _fill(data_dir)
        result = _verify(root, workspace, data_dir, "--head", head)
        assert result.returncode == 0, result.stderr
        assert _head(root, workspace, data_dir) == head
        (data_dir / "filler").unlink()  # room to tamper, then full again
        _sql(data_dir, "UPDATE events SET body = replace(body, 'decision-1', 'harmless') WHERE seq = 2")
        _fill(data_dir)
        assert b"event 2 (checked of session" in _verify(root, workspace, data_dir, "--head", head).stderr
    finally:
        subprocess.run(["umount", str(data_dir)], check=False)
