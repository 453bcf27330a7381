"""`vectraguard run` end to end on real Podman: I/O, exit statuses, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.vg import Caller
from vectraguard.runtime import host
from vectraguard.runtime.service import private_socket

P = ["run", "-p", "test-untrusted"]


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["true"], 0),
        (["sh", "-c", "exit 3"], 3),
        (["sh", "-c", "exit 255"], 255),
        (["no-such-command"], 127),
        (["/etc/hosts"], 126),  # exists, not executable
        (["sh", "-c", "kill -TERM $$"], 143),
        (["sh", "-c", "kill -KILL $$"], 137),
    ],
)
def test_exit_status_is_the_commands_own(root: Caller, workspace: Path, command: list[str], status: int) -> None:
    result = root.run([*P, "--", *command], cwd=workspace)
    assert result.returncode == status, result.stderr


def test_stdout_and_stderr_stay_apart_and_raw(root: Caller, workspace: Path) -> None:
    script = r"printf 'out\n'; printf 'err\n' >&2; printf '\033[31m\r\0\377'"
    result = root.run([*P, "--", "sh", "-c", script], cwd=workspace)
    assert result.returncode == 0
    assert result.stdout == b"out\n\x1b[31m\r\x00\xff"
    assert result.stderr == b"err\n"


def test_stdin_is_piped_to_the_command(root: Caller, workspace: Path) -> None:
    data = b"".join(b"line %d\n" % i for i in range(20000))  # > pipe and socket buffers
    result = root.run([*P, "--", "cat"], cwd=workspace, input=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_stdin_eof_reaches_the_command(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--", "wc", "-l"], cwd=workspace, input=b"a\nb\n")
    assert result.stdout.strip() == b"2"


def test_everything_after_double_dash_is_the_command(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--", "echo", "--profile", "x", "-p", "--", "--memory"], cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"--profile x -p -- --memory\n"


def test_workspace_is_the_read_only_working_directory(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--", "sh", "-c", "pwd; cat hello.txt; touch new 2>&1; echo rc=$?"], cwd=workspace)
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "/workspace"
    assert lines[1] == "hello from the workspace"
    assert "Read-only file system" in lines[2]
    assert lines[3] == "rc=1"
    assert not (workspace / "new").exists()


def test_sandbox_run_is_the_same_as_run(root: Caller, workspace: Path) -> None:
    result = root.run(["sandbox", "run", "-p", "test-untrusted", "--", "sh", "-c", "echo same; exit 4"], cwd=workspace)
    assert (result.returncode, result.stdout) == (4, b"same\n")


def test_timeout_stops_the_command_with_124(root: Caller, workspace: Path) -> None:
    # The command ignores TERM, so it also takes the KILL after the grace period.
    result = root.run([*P, "--timeout", "2s", "--", "sh", "-c", "trap '' TERM; echo started; sleep 60"],
                      cwd=workspace, timeout=60)
    assert result.returncode == 124
    assert result.stdout == b"started\n"
    assert b"timed out after 2s" in result.stderr


def test_timeout_term_lets_the_command_clean_up(root: Caller, workspace: Path) -> None:
    script = "trap 'echo got TERM; exit 9' TERM; sleep 60 & wait"
    result = root.run([*P, "--timeout", "2s", "--", "sh", "-c", script], cwd=workspace, timeout=60)
    assert result.returncode == 124
    assert result.stdout == b"got TERM\n"


def _wait_for_sandbox(caller: Caller, before: set[str], deadline_s: float = 60) -> set[str]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        new = set(caller.sandboxes()) - before
        if new:
            return new
        time.sleep(0.2)
    raise AssertionError("the sandbox never appeared")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                             # signals whose default action would end vectraguard unrecorded
                                             (signal.SIGUSR1, 138), (signal.SIGUSR2, 140), (signal.SIGALRM, 142)])
def test_signal_to_vectraguard_stops_and_removes_the_sandbox(root: Caller, workspace: Path,
                                                             sig: signal.Signals, status: int) -> None:
    """TTY-03: Ctrl-C / SIGTERM / hang-up → container stopped and removed."""
    before = set(root.sandboxes())
    proc = root.popen([*P, "--", "sh", "-c", "echo ready; sleep 300"], cwd=workspace)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert b"interrupted; sandbox stopped and removed" in err
    assert set(root.sandboxes()) - before == set()


def test_sandbox_of_a_killed_vectraguard_is_reaped_by_the_next_run(root: Caller, workspace: Path) -> None:
    """TTY-04: SIGKILL gives no chance to clean up; the next run removes the orphan."""
    before = set(root.sandboxes())
    proc = root.popen([*P, "--", "sh", "-c", "echo ready; sleep 300"], cwd=workspace)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    orphans = _wait_for_sandbox(root, before)
    proc.kill()
    proc.wait(timeout=30)
    assert set(root.sandboxes()) & orphans == orphans  # still there: nobody cleaned up
    result = root.run([*P, "--", "true"], cwd=workspace)
    assert result.returncode == 0
    assert set(root.sandboxes()) & orphans == set()


def test_output_to_a_closed_pipe_does_not_hang(root: Caller, workspace: Path) -> None:
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "yes | head -c 5000000; echo done >&2"]))
    shell = f"{subprocess.list2cmdline(argv)} | head -c 10"
    result = subprocess.run(["sh", "-c", shell], cwd=workspace, env=env, capture_output=True, timeout=120)
    assert result.stdout == b"y\ny\ny\ny\ny\n"


def test_containers_are_removed_after_normal_runs(root: Caller, workspace: Path) -> None:
    before = set(root.sandboxes())
    for command in (["true"], ["false"], ["no-such-command"]):
        root.run([*P, "--", *command], cwd=workspace)
    assert set(root.sandboxes()) == before
    assert os.path.isdir(workspace)


def _private_services(socket: str) -> list[int]:
    """PIDs of `podman system service` processes serving `socket`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"service" in argv and f"unix://{socket}".encode() in argv:
            pids.append(int(entry.name))
    return pids


def test_runs_outlive_the_directory_that_started_the_podman_service(root: Caller, workspace: Path,
                                                                     tmp_path: Path) -> None:
    """The private service outlives the run that started it; its directory may not."""
    socket = str(private_socket(host.detect().oci_runtime))  # root's private service, for this host's runtime
    if os.path.exists("/run/podman/podman.sock"):
        pytest.skip("the system's Podman service answers root's runs; no private service to test")
    for pid in _private_services(socket):  # so that the next run starts a new one, from `gone`
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _private_services(socket) and time.monotonic() < deadline:
        time.sleep(0.1)
    gone = tmp_path / "gone"
    gone.mkdir()
    assert root.run([*P, "--", "true"], cwd=gone).returncode == 0
    gone.rmdir()
    result = root.run([*P, "--", "sh", "-c", "exit 3"], cwd=workspace)
    assert result.returncode == 3, result.stderr
    [pid] = _private_services(socket)
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
