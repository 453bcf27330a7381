"""The same sandbox through rootless Podman, run by an unprivileged user.

On hosts where rootless Podman cannot enforce cpu/memory/pids limits
(cgroups v1 or hybrid, or v2 without delegation) a strict profile must be
refused; the `test-best-effort` profile opts into best-effort limits, and
then the isolation must still hold — checked from inside.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import ROOTLESS_USER, Caller
from vectraguard.runtime import host

BEST_EFFORT = ["run", "-p", "test-best-effort"]


def rootless_limits_enforced() -> bool:
    import pwd

    uid = pwd.getpwnam(ROOTLESS_USER).pw_uid
    return host.cgroup_mode() == "v2" and host._rootless_v2_delegated(uid)


def probe(caller: Caller, workspace: Path, *args: str) -> Any:
    result = caller.run([*BEST_EFFORT, "--", "vgprobe", *args], cwd=workspace)
    assert result.returncode == 0, (result.returncode, result.stderr.decode(errors="replace"))
    return json.loads(result.stdout.decode().splitlines()[-1])


def test_strict_profile_is_refused_where_limits_cannot_be_enforced(rootless: Caller, rootless_workspace: Path) -> None:
    result = rootless.run(["run", "-p", "test-untrusted", "--", "true"], cwd=rootless_workspace)
    if rootless_limits_enforced():
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 125
    message = result.stderr.decode()
    assert "profile 'test-untrusted' requires cpu, memory and pids limits, but rootless Podman cannot" in message
    assert "limits.enforcement: best-effort" in message
    assert rootless.sandboxes() == []


def test_best_effort_runs_and_says_so(rootless: Caller, rootless_workspace: Path) -> None:
    result = rootless.run([*BEST_EFFORT, "--", "cat", "hello.txt"], cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello from the workspace\n"
    if not rootless_limits_enforced():
        assert b"warning: limits are best-effort" in result.stderr


def test_rootless_posture_from_inside(rootless: Caller, rootless_workspace: Path) -> None:
    status = probe(rootless, rootless_workspace, "status")
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == 0, key
    assert (status["NoNewPrivs"], status["Seccomp"], status["uid"], status["gid"]) == (1, 2, 1000, 1000)
    host_ns = {name: os.readlink(f"/proc/self/ns/{name}") for name in ("user", "mnt", "pid", "net", "ipc", "uts")}
    same = sorted(name for name, ns in host_ns.items() if status["namespaces"][name] == ns)
    assert same == []


def test_rootless_dangerous_syscalls_blocked(rootless: Caller, rootless_workspace: Path) -> None:
    result = probe(rootless, rootless_workspace, "syscalls")
    for op in ("unshare_newuser", "clone_newuser", "mount_tmpfs", "keyctl", "bpf", "ptrace_attach_parent",
               "perf_event_open", "userfaultfd", "io_uring_setup", "ioctl_tiocsti_high_bits"):
        assert result[op] == "EPERM", op


def test_rootless_environment_and_network(rootless: Caller, rootless_workspace: Path) -> None:
    result = rootless.run([*BEST_EFFORT, "--", "env"], cwd=rootless_workspace,
                          extra_env={"AWS_SECRET_ACCESS_KEY": "s3cr3t"})
    names = sorted(line.split("=", 1)[0] for line in result.stdout.decode().splitlines())
    assert names == ["HOME", "HOSTNAME", "LANG", "PATH", "TERM", "container"]
    result = rootless.run([*BEST_EFFORT, "--", "ls", "/sys/class/net"], cwd=rootless_workspace)
    assert result.stdout == b"lo\n"


def test_rootless_fork_bomb_is_capped_by_nproc(rootless: Caller, rootless_workspace: Path) -> None:
    result = probe(rootless, rootless_workspace, "fork-bomb", "10")
    assert result["errno"] == "EAGAIN"
    assert result["forked"] < 64  # test-best-effort: pids 64


def test_rootless_exit_status_stdin_and_timeout(rootless: Caller, rootless_workspace: Path) -> None:
    assert rootless.run([*BEST_EFFORT, "--", "sh", "-c", "exit 7"], cwd=rootless_workspace).returncode == 7
    assert rootless.run([*BEST_EFFORT, "--", "nope"], cwd=rootless_workspace).returncode == 127
    piped = rootless.run([*BEST_EFFORT, "--", "cat"], cwd=rootless_workspace, input=b"piped\n")
    assert piped.stdout == b"piped\n"
    slow = rootless.run([*BEST_EFFORT, "--timeout", "2s", "--", "sleep", "60"], cwd=rootless_workspace, timeout=60)
    assert slow.returncode == 124


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def _vectraguard_pid(runuser_pid: int) -> int:
    """runuser forks the command; find vectraguard's own process below it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in _children(runuser_pid):
            if b"vectraguard" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        time.sleep(0.05)
    raise AssertionError("vectraguard process not found")


def test_rootless_ctrl_c_removes_the_sandbox(rootless: Caller, rootless_workspace: Path) -> None:
    proc = rootless.popen([*BEST_EFFORT, "--", "sh", "-c", "echo ready; sleep 300"], cwd=rootless_workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    os.kill(_vectraguard_pid(proc.pid), signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert b"interrupted; sandbox stopped and removed" in err
    assert rootless.sandboxes() == []


def test_rootless_orphan_of_a_killed_run_is_reaped(rootless: Caller, rootless_workspace: Path) -> None:
    proc = rootless.popen([*BEST_EFFORT, "--", "sh", "-c", "echo ready; sleep 300"], cwd=rootless_workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    os.kill(_vectraguard_pid(proc.pid), signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(rootless.sandboxes()) == 1
    assert rootless.run([*BEST_EFFORT, "--", "true"], cwd=rootless_workspace).returncode == 0
    assert rootless.sandboxes() == []


@pytest.fixture(autouse=True)
def _no_leftovers(rootless: Caller) -> None:
    assert rootless.sandboxes() == [], "a previous test left a sandbox behind"
