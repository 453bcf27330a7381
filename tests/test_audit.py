"""The audit trail through the real CLI and real containers (AUD-01, 02, 05, 06; TTY-02)."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import Caller, outcome

P = ["run", "-p", "test-tight"]


def sessions(caller: Caller, cwd: Path, env: dict[str, str], *filters: str) -> list[dict[str, Any]]:
    result = caller.run(["logs", "list", "--json", *filters], cwd=cwd, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def verify(caller: Caller, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return caller.run(["logs", "verify"], cwd=cwd, extra_env=env)


@pytest.mark.parametrize(("args", "status", "exit_status"), [
    (["--", "true"], "ok", 0),
    (["--", "sh", "-c", "exit 3"], "failed", 3),
    (["--", "no-such-command"], "failed", 127),
    (["--", "sh", "-c", "kill -KILL $$"], "killed", 137),
    # (test-tight's 5 s timeout: under a loaded CI host the memory limit's reclaim slowed the bomb past it once)
    (["--timeout", "60s", "--", "vgprobe", "mem-bomb", "512"], "oom", 137),
    (["--timeout", "1s", "--", "sleep", "30"], "timeout", 124),
    (["--memory", "12x", "--", "true"], "refused", 125),  # refused while parsing the options
    (["--set", "limits.cpu=2", "--", "true"], "refused", 125),
])
def test_every_outcome_is_recorded(root: Caller, workspace: Path, data_dir: Path, args: list[str],
                                   status: str | None, exit_status: int) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    result = root.run([*P, "--agent", "tester", *args], cwd=workspace, extra_env=env, timeout=120)
    assert result.returncode == exit_status
    [row] = sessions(root, workspace, env)
    assert (row["status"], row["exit_status"], row["agent"]) == (status, exit_status, "tester")
    assert row["profile"] == ("test-tight" if status != "refused" or "--set" in args else None)
    assert verify(root, workspace, env).returncode == 0


@pytest.mark.parametrize(("args", "reason"), [
    (["run", "-p", "no-such-profile", "--", "true"], "unknown profile 'no-such-profile'"),
    (["run", "-p", "test-untrusted", "--mount", "/:/host", "--", "true"], "refusing to mount /"),
    (["run", "-p", "test-untrusted", "--network", "full", "--", "true"], "refused: profile test-untrusted denies `true`"),
])
def test_refusals_are_recorded_with_their_reason(root: Caller, workspace: Path, data_dir: Path, args: list[str],
                                                 reason: str) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    assert root.run(args, cwd=workspace, extra_env=env).returncode == 125
    [row] = sessions(root, workspace, env, "--status", "refused")
    shown = json.loads(root.run(["logs", "show", row["id"], "--json"], cwd=workspace, extra_env=env).stdout)
    assert reason in shown["events"][0]["reason"]


def test_started_is_committed_before_the_sandbox_runs_and_a_killed_run_becomes_incomplete(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    argv, run_env = root.argv(root.vg([*P, "--", "sh", "-c", "echo ready; sleep 300"]), env)
    proc = subprocess.Popen(argv, cwd=workspace, env=run_env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    [row] = sessions(root, workspace, env)
    assert row["status"] == "started"
    proc.kill()
    proc.wait()
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 0
    statuses = sorted(r["status"] for r in sessions(root, workspace, env))
    assert statuses == ["incomplete", "ok"]
    assert verify(root, workspace, env).returncode == 0


def test_output_is_kept_raw_and_forgeries_stay_output(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    script = r"printf 'a\033[2J\r\0\377\nvectraguard: exit 0\n'; printf 'e\n' >&2; exit 4"
    result = root.run([*P, "--", "sh", "-c", script], cwd=workspace, extra_env=env)
    assert result.returncode == 4
    expected = b"a\x1b[2J\r\x00\xff\nvectraguard: exit 0\n"
    assert result.stdout == expected
    db = sqlite3.connect(data_dir / "audit.db")
    [(head,)] = db.execute("SELECT head FROM outputs WHERE stream = 'stdout'").fetchall()
    assert bytes(head) == expected
    [row] = sessions(root, workspace, env)
    assert (row["status"], row["exit_status"]) == ("failed", 4)


def test_the_listing_cannot_drive_the_terminal(root: Caller, workspace: Path, data_dir: Path) -> None:
    """A command line with escape sequences is kept as given, but `logs list` and `logs show` print it
    with its control characters made visible (the recorded output too: test_terminal_display.py)."""
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    sneaky = "true # \x1b]0;owned\x07\x1b[2J"
    assert root.run([*P, "--", "sh", "-c", sneaky], cwd=workspace, extra_env=env).returncode == 0
    [row] = sessions(root, workspace, env)
    assert sneaky in row["command"]  # --json keeps it exact
    listed = root.run(["logs", "list"], cwd=workspace, extra_env=env).stdout
    shown = root.run(["logs", "show", row["id"]], cwd=workspace, extra_env=env).stdout
    for text in (listed, shown):
        assert b"\x1b" not in text and b"\x07" not in text
        assert b"\\x1b]0;owned\\x07\\x1b[2J" in text


def test_large_output_is_bounded_and_summarised(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    result = root.run([*P, "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo end"], cwd=workspace,
                      extra_env=env, timeout=120)
    assert result.returncode == 0 and len(result.stdout) == 3000004
    [row] = sessions(root, workspace, env)
    shown = json.loads(root.run(["logs", "show", row["id"], "--json"], cwd=workspace, extra_env=env).stdout)
    summary = outcome(shown["events"])["output"]["stdout"]
    assert summary["bytes"] == 3000004 and summary["truncated"] is True
    import hashlib
    assert summary["sha256"] == hashlib.sha256(result.stdout).hexdigest()
    assert shown["output"]["stdout"]["tail"].endswith("xxend\n")


def _tamper(data_dir: Path, sql: str) -> None:
    db = sqlite3.connect(data_dir / "audit.db")
    db.execute(sql)
    db.commit()
    db.close()


@pytest.mark.parametrize(("sql", "expected"), [
    ("UPDATE events SET body = replace(body, '\"exit_status\":3', '\"exit_status\":0') WHERE seq = 2",
     "event 2 (finished of session"),
    ("DELETE FROM events WHERE seq = 3", "expected event 3 here"),
    ("UPDATE events SET seq = 100 WHERE seq = 1", "expected event 1 here"),
    ("UPDATE sessions SET status = 'ok', exit_status = 0 WHERE status = 'failed'", "the index was edited"),
    ("UPDATE outputs SET head = X'00' WHERE stream = 'stdout'", "stored stdout does not match its record"),
])
def test_tampering_is_found_and_named(root: Caller, workspace: Path, data_dir: Path, sql: str, expected: str) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    root.run([*P, "--", "sh", "-c", "echo one; exit 3"], cwd=workspace, extra_env=env)
    root.run([*P, "--", "echo", "two"], cwd=workspace, extra_env=env)
    assert verify(root, workspace, env).returncode == 0
    _tamper(data_dir, sql)
    result = verify(root, workspace, env)
    assert result.returncode == 1
    assert expected in result.stderr.decode(), result.stderr


def test_a_full_audit_disk_refuses_new_runs(root: Caller, workspace: Path, data_dir: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data_dir)], check=True)  # above the reserve
    try:
        env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
        assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 0
        subprocess.run(["dd", "if=/dev/zero", f"of={data_dir}/filler", "bs=64k"], capture_output=True, check=False)
        before = set(root.sandboxes())
        result = root.run([*P, "--", "echo", "must not run"], cwd=workspace, extra_env=env)
        assert result.returncode == 125
        assert b"must not run" not in result.stdout
        assert b"cannot be written" in result.stderr and b"nothing runs unrecorded" in result.stderr
        assert set(root.sandboxes()) == before
    finally:
        subprocess.run(["umount", str(data_dir)], check=False)


def test_twenty_concurrent_runs_give_twenty_records_and_one_valid_chain(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: root.run([*P, "--", "sh", "-c", f"exit {i}"], cwd=workspace,
                                                   extra_env=env, timeout=300), range(20)))
    assert sorted(r.returncode for r in results) == list(range(20))
    rows = sessions(root, workspace, env, "--limit", "100")
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20
    assert sorted(r["exit_status"] for r in rows) == list(range(20))
    assert verify(root, workspace, env).returncode == 0


def test_sigkill_during_an_output_flood_leaves_an_intact_store(root: Caller, workspace: Path, data_dir: Path) -> None:
    """AUD-04: the store stays consistent; the session is marked incomplete by the next run."""
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    argv, run_env = root.argv(root.vg([*P, "--timeout", "60s", "--", "sh", "-c", "yes flood"]), env)
    proc = subprocess.Popen(argv, cwd=workspace, env=run_env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    received = 0
    while received < 50_000_000:  # well into the flood
        chunk = proc.stdout.read1(1 << 20)
        if not chunk:
            break
        received += len(chunk)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert received >= 50_000_000, f"the run ended after {received} bytes, exit {proc.returncode}"
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 0
    assert sorted(r["status"] for r in sessions(root, workspace, env)) == ["incomplete", "ok"]
    assert verify(root, workspace, env).returncode == 0
    db = sqlite3.connect(data_dir / "audit.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_export_gives_json_lines_and_the_chain_head(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    root.run([*P, "--", "sh", "-c", "printf 'raw\\377'"], cwd=workspace, extra_env=env)
    root.run(["run", "-p", "nope", "--", "true"], cwd=workspace, extra_env=env)
    lines = [json.loads(line) for line in root.run(["logs", "export"], cwd=workspace, extra_env=env).stdout.splitlines()]
    assert [line.get("kind") for line in lines[:-1]] == ["started", "finished", "removed", "refused"]
    import base64
    assert base64.b64decode(lines[1]["output_raw"]["stdout"]["head_b64"]) == b"raw\xff"
    head = verify(root, workspace, env).stdout.decode().split()[-1]
    assert lines[-1] == {"seq": 4, "session": None, "kind": "chain-head", "prev_hash": None, "hash": head,
                         "head": f"4:{head}", "events": 4, "pruned_through": 0}
    assert lines[2]["prev_hash"] == lines[1]["hash"]


def test_prune_keeps_the_chain_verifiable(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    for word in ("old-1", "old-2"):
        root.run([*P, "--", "echo", word], cwd=workspace, extra_env=env)
    time.sleep(0.01)
    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    time.sleep(1.5)
    root.run([*P, "--", "echo", "new"], cwd=workspace, extra_env=env)
    # Recordings (shells and agents have them) go with their sessions; the new one's stays.
    recordings = data_dir / "recordings"
    recordings.mkdir()
    for row in sessions(root, workspace, env):
        (recordings / f"{row['id']}.cast").write_text("{}\n")
    result = root.run(["logs", "prune", "--before", cut, "--yes"], cwd=workspace, extra_env=env)
    assert result.stdout.decode().splitlines()[-1].startswith("pruned 2 sessions (events up to 6), 2 recordings and 0 "
                                                              "workspace layers")
    rows = sessions(root, workspace, env)
    assert [r["command"] for r in rows] == ["echo new"]
    assert [p.name for p in recordings.iterdir()] == [f"{rows[0]['id']}.cast"]
    assert verify(root, workspace, env).returncode == 0
    root.run([*P, "--", "echo", "after"], cwd=workspace, extra_env=env)
    assert verify(root, workspace, env).returncode == 0
    _tamper(data_dir, "UPDATE events SET body = replace(body, 'ok', 'failed') WHERE seq = 8")  # started, finished, removed
    assert "event 8 (finished of session" in verify(root, workspace, env).stderr.decode()


def test_an_interrupted_run_is_recorded_as_interrupted(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    argv, run_env = root.argv(root.vg([*P, "--", "sh", "-c", "echo ready; sleep 300"]), env)
    proc = subprocess.Popen(argv, cwd=workspace, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(2)
    proc.communicate(timeout=60)
    [row] = sessions(root, workspace, env)
    assert (row["status"], row["exit_status"]) == ("interrupted", 130)


def test_a_policy_refusal_is_recorded(root: Caller, workspace: Path, data_dir: Path) -> None:
    system = Path(tempfile.mkdtemp(prefix="vg-etc-"))
    try:
        (system / "policy.yaml").write_text("version: 1\nlimits:\n  max:\n    memory: 16Mi\n")
        env = {"VECTRAGUARD_DATA_DIR": str(data_dir), "VECTRAGUARD_SYSTEM_DIR": str(system)}
        assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 125
        [row] = sessions(root, workspace, env, "--status", "refused")
        shown = json.loads(root.run(["logs", "show", row["id"], "--json"], cwd=workspace, extra_env=env).stdout)
        assert "refused by policy rule limits.max.memory" in shown["events"][0]["reason"]
    finally:
        shutil.rmtree(system)


def test_the_store_is_private(root: Caller, workspace: Path, data_dir: Path) -> None:
    store_dir = data_dir / "nested"
    env = {"VECTRAGUARD_DATA_DIR": str(store_dir)}
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 0
    assert store_dir.stat().st_mode & 0o777 == 0o700
    for path in store_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path


@pytest.mark.parametrize("damage", ["garbage", "unwritable"])
def test_a_damaged_or_unwritable_store_refuses_runs(root: Caller, workspace: Path, data_dir: Path,
                                                    damage: str) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    if damage == "garbage":
        (data_dir / "audit.db").write_bytes(b"this is not a database" * 100)
    else:
        assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 0
        subprocess.run(["chattr", "+i", str(data_dir / "audit.db")], check=False)
        if subprocess.run(["lsattr", str(data_dir / "audit.db")], capture_output=True, text=True).stdout[4] != "i":
            pytest.skip("this filesystem does not support the immutable attribute")
    try:
        result = root.run([*P, "--", "echo", "must not run"], cwd=workspace, extra_env=env)
        assert result.returncode == 125
        assert b"must not run" not in result.stdout
        assert b"nothing runs unrecorded" in result.stderr
    finally:
        subprocess.run(["chattr", "-i", str(data_dir / "audit.db")], check=False, capture_output=True)


def _stored_text(data_dir: Path) -> str:
    """Every event body and listed command in the store, as one text to search."""
    db = sqlite3.connect(data_dir / "audit.db")
    return ("".join(body for (body,) in db.execute("SELECT body FROM events"))
            + "".join(cmd for (cmd,) in db.execute("SELECT command FROM sessions")))


def test_secret_values_never_reach_the_record_except_in_output(root: Caller, workspace: Path, data_dir: Path) -> None:
    """SEC-03: names only for the environment; an allowlisted value in argv is redacted. The command's own
    output is evidence and is kept as printed (documented in the README)."""
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir), "GITHUB_TOKEN": "ghp_supersecret123"}
    result = root.run([*P, "--env", "GITHUB_TOKEN", "--", "sh", "-c", "echo token=ghp_supersecret123 >/dev/null"],
                      cwd=workspace, extra_env=env)
    assert result.returncode == 0
    stored = _stored_text(data_dir)
    assert "ghp_supersecret123" not in stored
    assert '"GITHUB_TOKEN"' in stored and "[redacted]" in stored


def test_a_refused_run_keeps_no_secret_either(root: Caller, workspace: Path, data_dir: Path) -> None:
    """Refused by the risk gate (the reason and the finding quote the command) and refused while the
    options were parsed: the values --env gives are redacted there too."""
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir), "GITHUB_TOKEN": "ghp_supersecret123"}
    gated = root.run([*P, "--env", "GITHUB_TOKEN", "--env", "API_KEY=sk-other-secret-456", "--", "sh", "-c",
                      "rm -rf ~/ghp_supersecret123 ~/sk-other-secret-456"], cwd=workspace, extra_env=env)
    assert gated.returncode == 125 and b"needs approval" in gated.stderr
    parsed = root.run([*P, "--env=API_KEY=sk-other-secret-456", "--cpus", "lots", "--", "echo", "sk-other-secret-456"],
                      cwd=workspace, extra_env=env)
    assert parsed.returncode == 125
    stored = _stored_text(data_dir)
    assert stored.count('"status":"refused"') == 2, stored
    assert "ghp_supersecret123" not in stored and "sk-other-secret-456" not in stored
    assert "rm -rf '~/[redacted]' '~/[redacted]'" in stored


def _open_when_told(path: str, barrier: Any) -> str:
    from vectraguard.audit.store import open_store
    from vectraguard.errors import VGError

    barrier.wait()
    try:
        open_store(Path(path)).close()
    except VGError as exc:
        return exc.message
    return "ok"


def test_runs_opening_a_fresh_store_at_once_all_get_it(tmp_path: Path) -> None:
    """Setting up a new store is not under SQLite's busy timeout: 6 processes opening one at
    the same moment failed with "database is locked" about once in 30 tries (audit/store.py)."""
    with multiprocessing.Manager() as manager, concurrent.futures.ProcessPoolExecutor(6) as pool:
        for trial in range(40):
            path = tmp_path / f"store-{trial}" / "audit.db"
            barrier = manager.Barrier(6)
            results = list(pool.map(_open_when_told, [str(path)] * 6, [barrier] * 6))
            assert results == ["ok"] * 6, (trial, results)
