"""On Docker Engine the entry program is the sandbox's PID 1 (contrib/entry/vectraguard-entry.c `--await
SECONDS`, runtime/docker/spec.py `Init: false`): nothing inside can stop or kill it, so its backstop holds
after a `vectraguard` is killed; and it does an init's work (reaping, passing Docker's signals on, the
command's exit status at once, a terminal's foreground). Real sandboxes on the real daemon, checked from
inside (what the command sees) and from the host (Docker's state, the kernel's view of the process).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import docker
from tests.support.terminal import Terminal
from tests.support.vg import Caller
from tests.test_sessions_docker import private_daemon  # noqa: F401 - a fixture, used below

# --yes: `kill ... 1` is a destructive finding of the gate (kill-everything), asked otherwise.
P = ["run", "--yes", "-p", "test-untrusted", "--engine", "docker"]
# Every way the command could try to stop or kill its parent, the init; the shell's `kill` reports success
# (the kernel drops such a signal to a namespace's init silently).
STOP_PID_1 = "kill -STOP $PPID; kill -STOP 1; kill -KILL 1; kill -9 $PPID"


@pytest.fixture(autouse=True)
def _images(docker_test_image: str) -> None:
    """The test image copied into Docker (skips when no daemon answers)."""


@pytest.fixture
def data_env() -> Iterator[dict[str, str]]:
    """A private audit store: `ps` sees exactly the sessions the test made."""
    data = Path(tempfile.mkdtemp(prefix="vg-entry-init-data-"))
    try:
        yield {"VECTRAGUARD_DATA_DIR": str(data)}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _start(root: Caller, workspace: Path, env: dict[str, str], options: list[str],
           command: str) -> subprocess.Popen[bytes]:
    """`vectraguard run ... -- sh -c COMMAND` running, once it printed "ready"."""
    argv, full_env = root.argv(root.vg([*P, *options, "--", "sh", "-c", command]), env)
    proc = subprocess.Popen(argv, cwd=workspace, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
    return proc


def _container(root: Caller, workspace: Path, env: dict[str, str], command: str) -> dict[str, Any]:
    """Docker's inspection of the container of the running session whose command is `sh -c COMMAND`."""
    rows = json.loads(root.run(["ps", "--json"], cwd=workspace, extra_env=env).stdout)
    [row] = [r for r in rows if r["command"] == ["sh", "-c", command]]
    return docker.call("GET", f"/containers/{row['container_id']}/json")  # type: ignore[no-any-return]


def _host_state(pid: int) -> str:
    """The kernel's State line of a host process, e.g. "S (sleeping)" or "T (stopped)"."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no State in /proc/{pid}/status")


def test_nothing_inside_can_stop_or_kill_pid_1_and_the_commands_status_comes_at_once(root: Caller,
                                                                                     workspace: Path) -> None:
    """The command's parent is PID 1, the entry program; it stays running through every attempt, its memory
    cannot be opened (a control: the command's own can), and the command's `exit 6` is the run's 6 without
    waiting for the timeout (a stopped parent would have left it to the timeout: 124)."""
    command = (f"{STOP_PID_1}; echo ppid=$PPID; grep ^State: /proc/1/status; tr '\\0' ' ' </proc/1/cmdline; echo; "
               "(exec 3</proc/1/mem) 2>/dev/null || echo pid-1-memory-closed; "
               "(exec 3</proc/self/mem) && echo own-memory-open; exit 6")
    done = root.run([*P, "--timeout", "60s", "--", "sh", "-c", command], cwd=workspace, timeout=120)
    assert done.returncode == 6, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "ppid=1"
    assert lines[1].startswith("State:") and "stopped" not in lines[1], lines[1]
    assert lines[2].startswith("/run/vectraguard-entry --await ")
    assert lines[3:] == ["pid-1-memory-closed", "own-memory-open"]


def test_a_signal_sent_to_pid_1_inside_is_passed_on_to_the_command(root: Caller, workspace: Path) -> None:
    command = "trap 'echo got-usr1; exit 5' USR1; kill -USR1 1; sleep 60 & wait"
    done = root.run([*P, "--timeout", "60s", "--", "sh", "-c", command], cwd=workspace, timeout=120)
    assert (done.returncode, done.stdout) == (5, b"got-usr1\n"), done.stderr


def test_orphans_are_reaped_by_pid_1(root: Caller, workspace: Path) -> None:
    """A background process whose parent has exited is reparented to PID 1, which must collect it when it
    ends: the command watches (inside, with its own deadline) until no such process is left, zombie or not."""
    command = ("(sleep 1 &); i=0; while ps -o stat,args | grep -q -e '[s]leep 1$' -e '^Z'; do i=$((i+1)); "
               "[ $i -lt 300 ] || { echo left:; ps -o stat,pid,ppid,args; exit 1; }; sleep 0.1; done; echo reaped")
    done = root.run([*P, "--timeout", "60s", "--", "sh", "-c", command], cwd=workspace, timeout=120)
    assert (done.returncode, done.stdout) == (0, b"reaped\n"), done.stdout + done.stderr


def test_orphans_of_an_exec_are_reaped_by_pid_1(root: Caller, workspace: Path, data_env: dict[str, str]) -> None:
    """`vectraguard exec` processes come from outside the namespace (Docker's exec): their orphans go to PID 1."""
    proc = _start(root, workspace, data_env, ["--timeout", "5m"], "echo ready; sleep 300")
    try:
        [row] = json.loads(root.run(["ps", "--json"], cwd=workspace, extra_env=data_env).stdout)
        orphaned = root.run(["exec", row["id"], "--", "sh", "-c", "(sleep 1 &)"], cwd=workspace, extra_env=data_env)
        assert orphaned.returncode == 0, orphaned.stderr

        def collected() -> bool:
            listed = root.run(["exec", row["id"], "--", "ps", "-o", "stat,args"], cwd=workspace, extra_env=data_env)
            assert listed.returncode == 0, listed.stderr
            return not any(line.startswith(b"Z") or line.endswith(b"sleep 1")
                           for line in listed.stdout.splitlines())

        _until(collected, "the exec's orphan to end and be reaped")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM


def test_docker_stop_ends_the_run_with_the_commands_143(root: Caller, workspace: Path,
                                                        data_env: dict[str, str]) -> None:
    """Docker's stop sends SIGTERM to PID 1, which passes it on (an init with no handler for it would not get
    it: Docker would kill at its timeout, 137)."""
    command = "echo ready; sleep 300"
    proc = _start(root, workspace, data_env, ["--timeout", "5m"], command)
    try:
        container = _container(root, workspace, data_env, command)
        assert container["HostConfig"]["Init"] is False
        docker.call("POST", f"/containers/{container['Id']}/stop?t=120", timeout=180)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err


def test_the_backstop_holds_when_the_command_tried_to_stop_pid_1(root: Caller, workspace: Path,
                                                                 data_env: dict[str, str],
                                                                 private_daemon: dict[str, str]) -> None:  # noqa: F811
    """SIGKILL leaves nobody to stop the sandbox; the command tried to stop its parent (or stopped itself),
    and still the entry program ends the container at the spec's backstop_timeout (ceil(10 + 1) + 30 s)."""
    env = {**data_env, **private_daemon}
    commands = [f"{STOP_PID_1}; echo ready; sleep 1000", "echo ready; kill -STOP $$; sleep 1000"]
    options = ["--timeout", "10s", "--set", "limits.kill_grace=1s"]
    containers = []
    try:
        for command in commands:  # each killed before its own timeout could stop it
            proc = _start(root, workspace, env, options, command)
            containers.append(_container(root, workspace, env, command))
            proc.kill()
            proc.communicate(timeout=30)
        for container in containers:
            assert container["HostConfig"]["Init"] is False and container["Config"]["Cmd"] == ["--await", "41"]
            state = docker.call("GET", f"/containers/{container['Id']}/json")["State"]
            assert state["Running"], state  # nobody stopped it
            assert not _host_state(int(state["Pid"])).startswith("T"), "the entry program was stopped"

        def ended() -> bool:
            return not any(docker.call("GET", f"/containers/{c['Id']}/json")["State"]["Running"] for c in containers)

        _until(ended, "the backstop to end both sandboxes", within=120)
        for container in containers:
            assert docker.call("GET", f"/containers/{container['Id']}/json")["State"]["ExitCode"] == 128 + signal.SIGKILL
            assert "is over and Vectra Guard did not stop it: killed" in docker.container_output(container["Id"])
    finally:
        for container in containers:
            docker.remove_container(container["Id"])


def test_the_backstop_holds_when_the_command_suspended_the_terminal(root: Caller, workspace: Path,
                                                                    data_env: dict[str, str],
                                                                    private_daemon: dict[str, str]) -> None:  # noqa: F811
    """PID 1's stderr is the sandbox's terminal; a command that suspends output on it (tcflow TCOOFF) must
    not be able to hold PID 1 in a write when the backstop comes (an outside attack did: the sandbox of a
    killed vectraguard then ran until something reaped it)."""
    env = {**data_env, **private_daemon}
    term = Terminal(root, workspace, ["sandbox", "shell", "-p", "test-untrusted", "--engine", "docker", "--timeout",
                                      "10s", "--set", "limits.kill_grace=1s", "--", "-c", "vgprobe tty-off"],
                    extra_env=env)
    term.expect(b"tty-off")
    rows = json.loads(root.run(["ps", "--json"], cwd=workspace, extra_env=env).stdout)
    [row] = [r for r in rows if r["command"][-2:] == ["-c", "vgprobe tty-off"]]
    container = docker.call("GET", f"/containers/{row['container_id']}/json")
    try:
        os.kill(term.pid, signal.SIGKILL)  # nobody left to stop the sandbox but its PID 1
        term.wait()
        assert container["Config"]["Cmd"] == ["--await", "41"]

        def ended() -> bool:
            return not docker.call("GET", f"/containers/{container['Id']}/json")["State"]["Running"]

        _until(ended, "the backstop to end the sandbox", within=120)
        assert docker.call("GET", f"/containers/{container['Id']}/json")["State"]["ExitCode"] == 128 + signal.SIGKILL
    finally:
        docker.remove_container(container["Id"])


def test_a_docker_shell_has_its_terminal_ctrl_c_and_resize(root: Caller, workspace: Path) -> None:
    """The command is the terminal's foreground process group (PID 1 is not in it): Ctrl-C reaches the
    program the shell runs, a resize reaches the shell, and the shell's exit status is the session's."""
    term = Terminal(root, workspace, ["sandbox", "shell", "-p", "test-untrusted", "--engine", "docker"])
    term.expect(b"$ ")
    term.send(b"stty size\r")
    term.expect(b"24 80")
    term.resize(33, 101)
    deadline = time.monotonic() + 30
    while True:  # the sandbox's terminal follows on Docker's resize: ask until it has
        term.send(b"stty size | sed 's/^/size-/'\r")
        if b"size-33 101" in term.expect(b"$ "):
            break
        assert time.monotonic() < deadline
    term.send(b"echo sleeping-$((1+1)); sleep 100; echo slept\r")
    term.expect(b"sleeping-2")
    term.send(b"\x03")  # Ctrl-C: to the sleeping program inside, not to vectraguard nor PID 1
    term.expect(b"$ ")
    term.send(b"echo still-$((40+2)) $(tr '\\0' ' ' </proc/1/cmdline)\r")
    term.expect(b"still-42 /run/vectraguard-entry --await")
    term.send(b"exit 3\r")
    assert term.wait() == 3
