"""The finished record survives what happens to the caller's output and to the
store (issue 14, item 3): a stdout or stderr that fails (ENOSPC, EPIPE) stops
delivery, not capture, and the run ends recorded with the command's exit
status; the store keeps a reserve; a store that fills during the run marks the
session incomplete, never refused."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.vg import Caller, outcome

P = ["run", "-p", "test-tight", "--timeout", "60s"]
# 300 kB on each stream: past the 64 KiB head and tail the record keeps of each.
FLOOD = "head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero | tr '\\0' e >&2"


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A tiny file system of our own, always unmounted."""
    path = Path(tempfile.mkdtemp(prefix="delivery-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)
        path.rmdir()


def _logs(caller: Caller, args: list[str], cwd: Path, data_dir: Path) -> Any:
    result = caller.run(["logs", *args], cwd=cwd, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "--json" in args else result


def _only_session(caller: Caller, cwd: Path, data_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    [row] = _logs(caller, ["list", "--json"], cwd, data_dir)
    return row, _logs(caller, ["show", row["id"], "--json"], cwd, data_dir)["events"]


def test_stdout_on_a_full_disk_is_captured_and_the_run_recorded_with_its_exit_status(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    """`vectraguard run ... > /small-tmpfs/out`: was an internal error, the session left `started`."""
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", f"{FLOOD}; echo last-words >&2; exit 7"]),
                          {"VECTRAGUARD_DATA_DIR": str(data_dir)})
    with tmpfs("64k") as small, open(small / "out", "wb") as out:
        result = subprocess.run(argv, env=env, cwd=workspace, stdout=out, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert result.returncode == 7, result.stderr[-2000:]
    assert result.stderr.endswith(b"last-words\n" + _note_start("stdout")) or _note_start("stdout") in result.stderr
    assert b"internal error" not in result.stderr
    row, events = _only_session(root, workspace, data_dir)
    assert (row["status"], row["exit_status"]) == ("failed", 7)
    finished = outcome(events)
    assert (finished["kind"], finished["exit_status"]) == ("finished", 7)
    stdout = finished["output"]["stdout"]
    assert stdout["bytes"] == 300000  # captured whole, though not delivered
    assert stdout["delivery_failed"]["error"] == "ENOSPC: No space left on device"
    assert 0 < stdout["delivery_failed"]["delivered_bytes"] <= 64 * 1024
    assert "delivery_failed" not in finished["output"]["stderr"]
    assert _logs(root, ["verify"], workspace, data_dir).returncode == 0


def _note_start(stream: str) -> bytes:
    return f"vectraguard: the sandbox's {stream} could not be written here after ".encode()


def test_closed_pipes_on_stdout_and_stderr_end_the_run_normally(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    """EPIPE on both: nothing can be told, the record says it, the exit status is the command's."""
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", f"{FLOOD}; exit 3"]), {"VECTRAGUARD_DATA_DIR": str(data_dir)})
    read_out, write_out = os.pipe()
    read_err, write_err = os.pipe()
    os.close(read_out)
    os.close(read_err)
    try:
        done = subprocess.run(argv, env=env, cwd=workspace, stdout=write_out, stderr=write_err,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
    finally:
        os.close(write_out)
        os.close(write_err)
    assert done.returncode == 3
    row, events = _only_session(root, workspace, data_dir)
    assert (row["status"], row["exit_status"]) == ("failed", 3)
    for stream in ("stdout", "stderr"):
        summary = outcome(events)["output"][stream]
        assert summary["bytes"] == 300000
        assert summary["delivery_failed"] == {"error": "EPIPE: Broken pipe", "delivered_bytes": 0}
    assert _logs(root, ["verify"], workspace, data_dir).returncode == 0



def test_a_run_started_with_stdout_closed_ends_with_the_commands_status_and_no_traceback(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    """`vectraguard run ... >&-`: descriptor 1 not open at all (Python's sys.stdout is None), the
    run is not served by the fork server (forkserver/client.py) and was a traceback at its exit."""
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "echo gone; exit 3"]), {"VECTRAGUARD_DATA_DIR": str(data_dir)})
    done = subprocess.run(argv, env=env, cwd=workspace, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          preexec_fn=lambda: os.close(1), timeout=120, check=False)
    assert done.returncode == 3, done.stderr[-2000:]
    assert b"Traceback" not in done.stderr
    row, events = _only_session(root, workspace, data_dir)
    assert (row["status"], row["exit_status"]) == ("failed", 3)
    assert outcome(events)["output"]["stdout"]["bytes"] == len("gone\n")

def test_stderr_on_a_full_device_is_noted_and_stdout_still_delivered(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "echo out; echo err >&2; exit 0"]),
                          {"VECTRAGUARD_DATA_DIR": str(data_dir)})
    with open("/dev/full", "wb") as full:
        done = subprocess.run(argv, env=env, cwd=workspace, stdout=subprocess.PIPE, stderr=full,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, b"out\n")
    row, events = _only_session(root, workspace, data_dir)
    assert (row["status"], row["exit_status"]) == ("ok", 0)
    assert outcome(events)["output"]["stderr"]["delivery_failed"]["error"] == "ENOSPC: No space left on device"
    shown = _logs(root, ["show", row["id"]], workspace, data_dir).stdout
    assert b"stderr: not delivered to the caller after 0 bytes: ENOSPC: No space left on device" in shown


def _fill(directory: Path, leave: int) -> None:
    """Fill `directory`'s file system, leaving `leave` bytes (0: all of it)."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    with open(directory / "filler", "wb") as filler, contextlib.suppress(OSError):
        chunk = b"\0" * (1 << 20)
        remaining = free - leave if leave else free + (1 << 20)
        while remaining > 0:
            remaining -= filler.write(chunk[:remaining])
            filler.flush()


WAIT_FOR_GO = f"echo ready; while [ ! -e go ]; do sleep 0.05; done; {FLOOD}; exit 4"


def _run_while_the_store_fills(root: Caller, workspace: Path, store: Path, leave: int,
                               drop_reserve: bool = False) -> subprocess.CompletedProcess[bytes]:
    """A run that waits, while the test fills the store's file system from the host, then floods and exits 4.
    `drop_reserve`: the store's reserve file (audit/reserve.py) is deleted first, as if it never was."""
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", WAIT_FOR_GO]), {"VECTRAGUARD_DATA_DIR": str(store)})
    proc = subprocess.Popen(argv, env=env, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        if drop_reserve:
            (store / "audit.reserve").unlink()
        _fill(store, leave)
        (workspace / "go").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_a_store_that_fills_during_the_run_records_it_whole_from_its_reserve(root: Caller, workspace: Path) -> None:
    """The disk is full when the run ends: the reserve file goes, and the whole record fits."""
    with tmpfs("16m") as store:
        done = _run_while_the_store_fills(root, workspace, store, leave=0)
        assert done.returncode == 4, done.stderr[-2000:]
        assert b"filled up during the run (database or disk is full); its reserve was used to record it" in done.stderr
        (store / "filler").unlink()
        row, events = _only_session(root, workspace, store)
        assert (row["status"], row["exit_status"]) == ("failed", 4)
        assert [e["kind"] for e in events if e["kind"] != "removed"] == ["started", "finished"]  # `removed` if it fits
        assert outcome(events)["output"]["stdout"]["bytes"] > 0
        assert _logs(root, ["verify"], workspace, store).returncode == 0


def test_a_store_that_fills_without_its_reserve_records_it_incomplete_not_refused(
        root: Caller, workspace: Path) -> None:
    with tmpfs("16m") as store:
        done = _run_while_the_store_fills(root, workspace, store, leave=64 * 1024, drop_reserve=True)
        assert done.returncode == 4, done.stderr[-2000:]
        assert b"could not take this run's record (database or disk is full)" in done.stderr
        assert b"is recorded incomplete, with exit status 4" in done.stderr
        assert b"cannot rollback" not in done.stderr and b"internal error" not in done.stderr
        (store / "filler").unlink()
        row, events = _only_session(root, workspace, store)  # one session: no `refused` record besides
        assert (row["status"], row["exit_status"]) == ("incomplete", 4)
        assert [e["kind"] for e in events if e["kind"] != "removed"] == ["started", "incomplete"]
        assert outcome(events)["reason"] == ("the finished record could not be written (database or disk is full); "
                                        "the run ended failed with exit status 4")
        assert _logs(root, ["verify"], workspace, store).returncode == 0


def test_a_store_with_no_room_even_for_incomplete_is_closed_by_the_next_run(root: Caller, workspace: Path) -> None:
    with tmpfs("16m") as store:
        done = _run_while_the_store_fills(root, workspace, store, leave=0, drop_reserve=True)
        assert done.returncode == 4, done.stderr[-2000:]
        assert b"stays 'started' until the next run marks it incomplete" in done.stderr
        (store / "filler").unlink()
        (workspace / "go").unlink()
        assert root.run([*P, "--", "true"], cwd=workspace, extra_env={"VECTRAGUARD_DATA_DIR": str(store)}).returncode == 0
        rows = _logs(root, ["list", "--json"], workspace, store)
        assert sorted(r["status"] for r in rows) == ["incomplete", "ok"]
        assert _logs(root, ["verify"], workspace, store).returncode == 0


def test_a_store_below_the_reserve_refuses_runs_before_they_start(root: Caller, workspace: Path) -> None:
    with tmpfs("6m") as store:  # below the 8 MiB reserve (audit/reserve.py)
        before = set(root.sandboxes())
        done = root.run([*P, "--", "echo", "must not run"], cwd=workspace, extra_env={"VECTRAGUARD_DATA_DIR": str(store)})
        assert done.returncode == 125
        assert b"must not run" not in done.stdout
        assert b"has too little room for a run's record (" in done.stderr and b"a run that started must be able to record" in done.stderr
        assert not set(root.sandboxes()) - before  # (other runs on this Podman may end meanwhile)
        [row] = _logs(root, ["list", "--json"], workspace, store)  # the refusal itself is small: it is recorded
        assert (row["status"], row["exit_status"]) == ("refused", 125)


def test_a_run_that_fails_after_started_is_recorded_once_as_failed(root: Caller, workspace: Path, data_dir: Path) -> None:
    """Podman refuses to create the sandbox: one `failed` session (there was a `refused` one besides)."""
    done = root.run([*P, "--image", "localhost/vectraguard-no-such-image:1", "--", "true"], cwd=workspace,
                    extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert done.returncode == 125
    row, events = _only_session(root, workspace, data_dir)
    assert (row["status"], [e["kind"] for e in events]) == ("failed", ["started", "finished"])


def test_an_overlay_run_needs_room_for_its_layer_beside_the_store(root: Caller, workspace: Path) -> None:
    """The layer is copied next to the store before the record is written: a sandbox
    must not be able to fill the store's disk with changes and go unrecorded."""
    overlay = [*P, "--workspace", "overlay", "--yes"]
    with tmpfs("24m") as store:
        env = {"VECTRAGUARD_DATA_DIR": str(store)}
        done = root.run([*overlay, "--set", "limits.workspace_writes=64Mi", "--", "true"], cwd=workspace, extra_env=env)
        assert done.returncode == 125
        assert b", 64.0 MiB of it for the overlay layer (limits.workspace_writes)" in done.stderr
        assert b"or lower limits.workspace_writes" in done.stderr
        done = root.run([*overlay, "--set", "limits.workspace_writes=4Mi", "--", "sh", "-c", "echo new > f"],
                        cwd=workspace, extra_env=env)
        assert done.returncode == 0, done.stderr
        assert sorted(r["status"] for r in _logs(root, ["list", "--json"], workspace, store)) == ["ok", "refused"]
