"""Keyed mode (audit.key_file) and forwarding to syslog (audit.forward), through the real CLI.

The attacker rewrites the store with sqlite3 and the public chain hashing,
but has no key: keyed mode must catch it without any head kept elsewhere.
Forwarding is received on a Unix datagram socket the test opens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import Caller
from vectraguard.audit.store import chain_hash


@pytest.fixture
def home() -> Iterator[Path]:
    """A data directory, a system directory and a key directory of their own."""
    path = Path(tempfile.mkdtemp(prefix="vg-keyed-"))
    for name in ("data", "etc", "keys"):
        (path / name).mkdir(mode=0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _policy(home: Path, **audit: str) -> None:
    settings = [f"  {key}: {json.dumps(value)}" for key, value in audit.items()]
    lines = ["version: 1", *(["audit:", *settings] if audit else [])]
    (home / "etc" / "policy.yaml").write_text("\n".join(lines) + "\n")


def _key(home: Path, size: int = 32, mode: int = 0o600) -> Path:
    path = home / "keys" / "audit.key"
    path.write_bytes(os.urandom(size))
    path.chmod(mode)
    return path


def _vg(caller: Caller, cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {"VECTRAGUARD_DATA_DIR": str(home / "data"), "VECTRAGUARD_SYSTEM_DIR": str(home / "etc")}
    return caller.run(list(args), cwd=cwd, extra_env=env)


def _decide(caller: Caller, cwd: Path, home: Path, *words: str) -> None:
    for word in words:
        result = _vg(caller, cwd, home, "check", "--", "echo", word)
        assert result.returncode == 0, result.stderr


def _rewrite(home: Path, *statements: str, rehash_from: int = 1) -> None:
    """Edit, then re-hash every link from `rehash_from` on, as an attacker without the key can."""
    db = sqlite3.connect(home / "data" / "audit.db")
    for statement in statements:
        db.execute(statement)
    row = db.execute("SELECT hash FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1", (rehash_from,)).fetchone()
    prev = row[0] if row else "0" * 64
    for seq, session_id, kind, body in db.execute(
            "SELECT seq, session_id, kind, body FROM events WHERE seq >= ? ORDER BY seq", (rehash_from,)).fetchall():
        digest = chain_hash(prev, seq, session_id, kind, body)
        db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    db.commit()
    db.close()


def _verify(caller: Caller, cwd: Path, home: Path) -> subprocess.CompletedProcess[bytes]:
    return _vg(caller, cwd, home, "logs", "verify")


def test_keyed_mode_catches_a_rehashed_chain_without_a_head(root: Caller, workspace: Path, home: Path) -> None:
    _policy(home, key_file=str(_key(home)))
    _decide(root, workspace, home, "one", "two", "three")
    result = _verify(root, workspace, home)
    assert result.returncode == 0, result.stderr
    assert b"ok: keyed mode: every event since keyed mode began carries a MAC" in result.stdout
    _rewrite(home, "UPDATE events SET body = replace(body, 'two', 'TWO') WHERE seq = 2", rehash_from=2)
    result = _verify(root, workspace, home)
    assert result.returncode == 1
    assert b"event 2 (checked of session" in result.stderr and b"its MAC does not match" in result.stderr


@pytest.mark.parametrize(("attack", "rehash_from", "expected"), [
    # every MAC and the keyed head removed, then the chain re-hashed: keyed mode must not just switch off
    (["DELETE FROM event_macs", "DELETE FROM meta WHERE key = 'mac_head'",
      "UPDATE events SET body = replace(body, 'two', 'TWO') WHERE seq = 2"], 1, "no event carries a MAC"),
    # the last session cut off, with its MAC
    (["DELETE FROM events WHERE seq = 3", "DELETE FROM event_macs WHERE seq = 3",
      "DELETE FROM sessions WHERE id NOT IN (SELECT session_id FROM events)"], 1,
     "event 3, the newest keyed event (meta mac_head), is missing: the chain ends at event 2"),
    # a forged prune, with the `pruned` event it needs appended and chained (but no MAC can be made)
    (["DELETE FROM events WHERE seq <= 2", "DELETE FROM event_macs WHERE seq <= 2",
      "DELETE FROM sessions WHERE id NOT IN (SELECT session_id FROM events)",
      "INSERT INTO meta SELECT 'pruned_through', '2'", "INSERT INTO meta SELECT 'pruned_head', prev_hash FROM events "
      "WHERE seq = 3",
      "INSERT INTO events SELECT 4, '-', 'pruned', json_object('at', '2026-01-01T00:00:00.000Z', 'before', "
      "'2026-01-01', 'sessions', 2, 'through_hash', prev_hash, 'through_seq', 2, 'version', 1), hash, '' FROM events "
      "WHERE seq = 3"], 4, "event 4 (pruned of session -): carries no MAC, though event 3 before it does"),
])
def test_keyed_mode_catches_what_a_head_would(root: Caller, workspace: Path, home: Path, attack: list[str],
                                              rehash_from: int, expected: str) -> None:
    _policy(home, key_file=str(_key(home)))
    _decide(root, workspace, home, "one", "two", "three")
    _rewrite(home, *attack, rehash_from=rehash_from)
    result = _verify(root, workspace, home)
    assert result.returncode == 1
    assert expected in result.stderr.decode(), result.stderr


def test_events_from_before_the_key_verify_and_later_ones_need_macs(root: Caller, workspace: Path,
                                                                   home: Path) -> None:
    _decide(root, workspace, home, "unkeyed")
    _policy(home, key_file=str(_key(home)))
    _decide(root, workspace, home, "keyed")
    assert _verify(root, workspace, home).returncode == 0
    # Without the key, the MACs are not checked, and verify says so.
    _policy(home)
    result = _verify(root, workspace, home)
    assert result.returncode == 0 and b"1 events carry a MAC (keyed mode)" in result.stderr


@pytest.mark.parametrize(("size", "mode", "message"), [
    (16, 0o600, "holds 16 bytes; a key needs at least 32"),
    (32, 0o640, "must be a regular file of yours that no one else can read or write"),
    (None, 0o600, "cannot be read (No such file or directory)"),
])
def test_an_unusable_key_records_nothing_and_runs_nothing(root: Caller, workspace: Path, home: Path,
                                                          size: int | None, mode: int, message: str) -> None:
    key = _key(home, size or 32, mode)
    if size is None:
        key.unlink()
    _policy(home, key_file=str(key))
    for args in (["check", "--", "echo", "hello"], ["logs", "verify"]):
        result = _vg(root, workspace, home, *args)
        assert result.returncode == 125, result.stderr
        assert f"vectraguard: audit.key_file {key}: {message}" in result.stderr.decode()
    assert not (home / "data" / "audit.db").exists() or not sqlite3.connect(
        home / "data" / "audit.db").execute("SELECT count(*) FROM events").fetchone()[0]


def test_an_invalid_policy_is_recorded_unless_keyed_mode_began(root: Caller, workspace: Path, home: Path) -> None:
    """The refusal of an invalid policy is recorded (without a MAC) only while no event has one."""
    invalid = "version: 1\naudit:\n  bogus: 1\n"
    (home / "etc" / "policy.yaml").write_text(invalid)
    result = _vg(root, workspace, home, "run", "-p", "test-tight", "--", "true")
    assert result.returncode == 125 and b"could not be recorded" not in result.stderr, result.stderr
    key = _key(home)
    _policy(home, key_file=str(key))
    _decide(root, workspace, home, "keyed")
    (home / "etc" / "policy.yaml").write_text(invalid)
    result = _vg(root, workspace, home, "run", "-p", "test-tight", "--", "true")
    assert result.returncode == 125 and b"warning: this refusal could not be recorded" in result.stderr
    _policy(home, key_file=str(key))
    exported = [json.loads(line) for line in _vg(root, workspace, home, "logs", "export").stdout.splitlines()[:-1]]
    assert [e["kind"] for e in exported] == ["refused", "checked"]
    assert _verify(root, workspace, home).returncode == 0


def test_a_key_beside_the_store_is_refused(root: Caller, workspace: Path, home: Path) -> None:
    key = home / "data" / "audit.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    _policy(home, key_file=str(key))
    result = _vg(root, workspace, home, "check", "--", "true")
    assert result.returncode == 125 and b"lies in the audit store's directory" in result.stderr


_RFC5424 = re.compile(r'<110>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) vectraguard (\d+) (\S+) '
                      r'\[vectraguard@32473 seq="(\d+)" session="([^"]+)" hash="([0-9a-f]{64})"\] \ufeff(.*)', re.DOTALL)


@pytest.fixture
def syslog(home: Path) -> Iterator[socket.socket]:
    """A Unix datagram socket standing in for /dev/log."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(home / "log"))
    os.chmod(home / "log", 0o666)
    sock.settimeout(30)
    yield sock
    sock.close()


def test_each_record_is_forwarded_to_syslog(root: Caller, workspace: Path, home: Path,
                                            syslog: socket.socket) -> None:
    _policy(home, forward="syslog", syslog_socket=str(home / "log"))
    assert _vg(root, workspace, home, "run", "-p", "test-tight", "--", "sh", "-c", "echo out; exit 3").returncode == 3
    _decide(root, workspace, home, "decided")
    exported = [json.loads(line) for line in _vg(root, workspace, home, "logs", "export").stdout.splitlines()[:-1]]
    assert [e["kind"] for e in exported] == ["started", "finished", "removed", "checked"]
    for event in exported:
        match = _RFC5424.fullmatch(syslog.recv(65536).decode())
        assert match is not None
        kind, seq, session, digest, body = match.group(3, 4, 5, 6, 7)
        assert (kind, int(seq), session, digest) == (event["kind"], event["seq"], event["session"], event["hash"])
        # An export line is the record's fields beside the chain fields (audit/views.py).
        record = {k: v for k, v in event.items() if k not in ("seq", "kind", "prev_hash", "hash", "output_raw")}
        assert json.loads(body) == record


def test_a_failed_forward_is_reported_and_loses_nothing(root: Caller, workspace: Path, home: Path) -> None:
    _policy(home, forward="syslog", syslog_socket=str(home / "nobody-listens"))
    result = _vg(root, workspace, home, "check", "--", "echo", "hello")
    assert result.returncode == 0
    assert (f"vectraguard: warning: audit event 1 was not forwarded to syslog via {home / 'nobody-listens'} "
            "(No such file or directory); it is recorded in the local store") in result.stderr.decode()
    assert _verify(root, workspace, home).returncode == 0
    assert b'"events": 1' in _vg(root, workspace, home, "logs", "export").stdout.splitlines()[-1]
