"""The exit status a run returns early (conmon's exit file) or late (Podman's
wait) is the command's own, and the container goes afterwards.

A run returns as soon as the command has exited and removes its container
in a detached process (runtime/exit_file.py, runtime/removal.py). These
tests run real sandboxes through both sources of the status and check,
after the removals have ended (a lock, not a sleep), that none is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.vg import Caller
from vectraguard import cli
from vectraguard.runtime import exit_file, removal, service
from vectraguard.runtime.attach import write_to_fds

P = ["run", "-p", "test-untrusted"]
# (command, expected status): exits, a signal the command sends itself, a shell's "not found".
CASES = [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "exit 255"], 255),
    (["sh", "-c", "kill -KILL $$"], 137),
    (["sh", "-c", "kill -TERM $$"], 143),
    (["sh", "-c", "echo out; echo err >&2; exit 42"], 42),
    (["sh", "-c", "exec >&- 2>&-; sleep 0.3; exit 5"], 5),  # the streams end before the command
]


def test_two_hundred_runs_return_their_own_status_and_leave_no_sandbox(root: Caller, workspace: Path) -> None:
    before = set(root.sandboxes())
    wrong: list[tuple[list[str], int, int, bytes]] = []

    def one(i: int) -> None:
        command, status = CASES[i % len(CASES)]
        argv, env = root.argv(root.vg([*P, "--", *command]))
        # Not Caller.run: it waits for removals after each run, and here they must overlap.
        done = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, timeout=120, check=False,
                              start_new_session=True)
        if done.returncode != status:
            wrong.append((command, status, done.returncode, done.stderr[-300:]))

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(200)))
    assert wrong == []
    root.wait_for_removals()
    reaped = subprocess.run(root.argv(root.vg(["sandbox", "reap", "--wait"]))[0], cwd=workspace,
                            env=root.argv([])[1], capture_output=True, text=True, check=True, timeout=120)
    assert reaped.stdout == ""  # every run removed its own: nothing was left for the reaper
    assert set(root.sandboxes()) == before


def test_a_run_is_recorded_removed_after_it_returned(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    result = root.run([*P, "--", "sh", "-c", "exit 9"], cwd=workspace, extra_env=env)
    assert result.returncode == 9
    record = root.last_session(workspace, env)
    kinds = [event["kind"] for event in record["events"]]
    assert kinds == ["started", "finished", "removed"]
    removed = record["events"][-1]
    assert removed["by"] == "vectraguard" and "error" not in removed
    assert removed["container_id"] not in root.sandboxes()


def test_the_reaper_records_what_it_removes(root: Caller, workspace: Path, data_dir: Path) -> None:
    """A killed run leaves its sandbox; `sandbox reap` removes it and says so in that session's record."""
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    [orphan] = _owned_by(root, root.killed_run(P, cwd=workspace, extra_env=private))
    argv, env = root.argv(root.vg(["sandbox", "reap", "--wait"]), private)
    reaped = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert reaped.returncode == 0, reaped.stderr
    # (Another run's remover may have reaped it first: then it is recorded all the same.)
    assert f"removed sandbox {orphan[:12]}" in reaped.stdout or reaped.stdout == ""
    assert orphan not in root.sandboxes()
    events = root.last_session(workspace, private)["events"]
    assert [e["kind"] for e in events][-1] == "removed"
    assert events[-1]["by"] == "reaper" and orphan.startswith(events[-1]["container_id"][:12])


def test_a_sandbox_reaped_from_another_store_is_not_recorded_there(root: Caller, workspace: Path,
                                                                   tmp_path: Path) -> None:
    """The reaper of a run recorded in store B removes what a killed run of
    store A left; B gets no `removed` event for a session it never had (it
    would read as a session whose beginning was deleted), and verifies."""
    store_a, store_b = tmp_path / "a", tmp_path / "b"
    [orphan] = _owned_by(root, root.killed_run(P, cwd=workspace, extra_env={"VECTRAGUARD_DATA_DIR": str(store_a)}))
    other = {"VECTRAGUARD_DATA_DIR": str(store_b)}
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=other).returncode == 0
    argv, env = root.argv(root.vg(["sandbox", "reap", "--wait"]), other)
    assert subprocess.run(argv, cwd=workspace, env=env, capture_output=True, timeout=120, check=False).returncode == 0
    assert orphan not in root.sandboxes()
    verified = root.run(["logs", "verify"], cwd=workspace, extra_env=other)
    assert verified.returncode == 0, verified.stderr
    assert [e["kind"] for e in root.last_session(workspace, other)["events"]] == ["started", "finished", "removed"]


def _owned_by(caller: Caller, pid: int) -> list[str]:
    """The sandboxes whose owner label names process `pid` (other tests may run sandboxes meanwhile)."""
    argv, env = caller.argv(["podman", "ps", "-a", "--no-trunc", "--filter", "label=io.vectraguard.owner",
                             "--format", '{{.ID}} {{index .Labels "io.vectraguard.owner"}}'])
    listed = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split()[0] for line in listed.splitlines() if line.split()[1].startswith(f"{pid}:")]


# -- the fallback: Podman's wait, when no exit file can be used -----------------------------

@pytest.fixture
def no_exit_file(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only Podman's wait can answer (as when conmon's directory cannot be trusted)."""
    from vectraguard.runtime import session

    monkeypatch.setattr(session.ExitFile, "of", classmethod(lambda cls, inspect: None))
    yield


@pytest.mark.parametrize(("command", "status"), CASES)
def test_podmans_wait_gives_the_same_status(root: Caller, workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                            no_exit_file: None, command: list[str], status: int) -> None:
    from vectraguard.commands import run
    from vectraguard.runtime.session import run_session

    for key, value in root.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(workspace)
    args = cli.build_parser(only="run").parse_args(P)
    args.command = command  # as cli.main does with what follows --
    prepared = run.prepare(args, str(workspace), "test-exit-status", "0:0")
    client = service.connect(prepared.facts.oci_runtime)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        result = run_session(client, prepared.compiled.spec, timeout=60, kill_grace=1, stdin_fd=None,
                             sink=write_to_fds({1: null, 2: null}), cgroup_mode=prepared.facts.cgroup_mode)
    finally:
        os.close(null)
    assert (result.exit_status, result.reason) == (status, "exited")
    assert result.container_id not in root.sandboxes()  # without leave_container, removed before returning


# -- conmon's exit file, read only where it can be trusted ---------------------------------

@pytest.fixture
def conmon_like(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A live process whose command line names an exit directory, as conmon's does."""
    directory = tmp_path / "exits"
    directory.mkdir(mode=0o700)
    proc = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)",
                             "--exit-dir", str(directory)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # exec'd: its command line is its own
    yield proc, directory
    proc.kill()
    proc.wait()


def _inspect(pid: int, cid: str = "c" * 64) -> dict[str, object]:
    return {"Id": cid, "State": {"ConmonPid": pid}}


def test_the_exit_file_is_found_through_conmons_command_line(conmon_like: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, directory = conmon_like
    found = exit_file.ExitFile.of(_inspect(proc.pid))
    assert found is not None and found.path == str(directory / ("c" * 64))
    (directory / ("c" * 64)).write_text("137")
    assert found.read() == 137


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_directory_others_can_write_is_not_trusted(conmon_like: tuple[subprocess.Popen[bytes], Path],
                                                      mode: int) -> None:
    proc, directory = conmon_like
    directory.chmod(mode)
    assert exit_file.ExitFile.of(_inspect(proc.pid)) is None


def test_a_directory_of_another_user_is_not_trusted(conmon_like: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, directory = conmon_like
    os.chown(directory, 65534, 65534)
    assert exit_file.ExitFile.of(_inspect(proc.pid)) is None


@pytest.mark.parametrize("inspect", [{}, {"Id": "x", "State": {}}, {"Id": "x", "State": {"ConmonPid": 0}},
                                     {"Id": "../x", "State": {"ConmonPid": os.getpid()}}])
def test_no_conmon_no_exit_file(inspect: dict[str, object]) -> None:
    assert exit_file.ExitFile.of(inspect) is None


@pytest.mark.parametrize(("content", "status"), [("0", 0), ("3\n", 3), ("255", 255), ("", None), ("-1", None),
                                                 ("1000", None), ("abc", None), ("3 4", None)])
def test_only_a_status_is_read_from_the_file(tmp_path: Path, content: str, status: int | None) -> None:
    path = tmp_path / "cid"
    path.write_text(content)
    assert exit_file.ExitFile(str(path)).read(within=0.01) == status


def test_a_file_that_never_comes_leaves_it_to_podman(tmp_path: Path) -> None:
    assert exit_file.ExitFile(str(tmp_path / "absent")).read(within=0.01) is None


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("0")
    (tmp_path / "cid").symlink_to(tmp_path / "elsewhere")
    assert exit_file.ExitFile(str(tmp_path / "cid")).read(within=0.01) is None


def test_a_file_written_while_waiting_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cid"
    written = threading.Event()

    def write() -> None:
        written.wait()
        path.write_text("7")

    writer = threading.Thread(target=write)
    writer.start()
    written.set()
    try:
        assert exit_file.ExitFile(str(path)).read(within=30) == 7
    finally:
        writer.join()


# -- waiting for removals ----------------------------------------------------------------------

def test_waiting_returns_when_the_remover_lets_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wait_for_pending blocks on the remover's lock, not on time: a locked entry is waited for."""
    import fcntl

    monkeypatch.setattr(removal, "pending_dir", lambda: tmp_path)
    fd = os.open(tmp_path / "abc", os.O_CREAT | os.O_WRONLY, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    finished = threading.Event()

    def wait() -> None:
        removal.wait_for_pending()
        finished.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert not finished.wait(0.3)  # still held: still waiting
    assert removal.pending_locked("abc")
    (tmp_path / "abc").unlink()  # what a remover does when it is done
    os.close(fd)
    waiter.join(timeout=30)
    assert finished.is_set()
    assert not removal.pending_locked("abc")


def test_an_abandoned_entry_is_reported_and_cleared(tmp_path: Path) -> None:
    (tmp_path / "def").write_text("")
    assert removal.wait_for_pending(tmp_path) == ["def"]
    assert not (tmp_path / "def").exists()
