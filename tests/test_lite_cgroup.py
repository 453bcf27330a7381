"""The `lite` sandbox's cgroup (vectraguard/lite/cgroup.py): real cgroups, real processes.

Run as root (only root makes cgroups here); every group lives under a
parent of the test's own, removed afterwards. Written for both layouts:
v1/hybrid (one directory per controller) and v2 (one directory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vectraguard.errors import LimitNotEnforceable
from vectraguard.lite.cgroup import CONTROLLERS, SandboxCgroup, reap_stale
from vectraguard.runtime.host import CGROUP_ROOT, cgroup_mode
from vectraguard.runtime.owner import current_owner

MODE = cgroup_mode()
MiB = 1024 * 1024
REPO = str(Path(__file__).resolve().parent.parent)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root makes cgroups (isolation lite, rootful)")

# Started blocked (it reads one byte first), like the sandbox's first process.
ALLOCATE = textwrap.dedent("""
    import sys
    sys.stdin.read(1)
    held = []
    for step in range(30):
        held.append(b"x" * (10 * 1024 * 1024))  # 300 MB in all, every page written
    print("survived", flush=True)
""")
FORK_UNTIL_REFUSED = textwrap.dedent("""
    import errno, os, signal, sys
    sys.stdin.read(1)
    forked = 0
    while forked < 50:  # bounded, should the group not hold it
        try:
            pid = os.fork()
        except OSError as exc:
            print(forked, errno.errorcode[exc.errno], flush=True)
            break
        if pid == 0:
            signal.pause()
            os._exit(0)
        forked += 1
    else:
        print(forked, "none", flush=True)
    sys.stdin.read(1)
""")
# A tree that keeps forking: subshells that start sleepers, and orphans them.
FORKING_TREE = "head -c 1 >/dev/null; i=0; while [ $i -lt 3000 ]; do i=$((i+1)); (sleep 1000 & sleep 1000 &); sleep 0.01; done"


HANG_GUARD_S = 60  # a wait that a broken module would make endless fails instead (not a timing check)
_spawned: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_strays() -> Iterator[None]:
    """Every process a test started is gone after it, whatever the module under test did."""
    yield
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.wait(HANG_GUARD_S)


@pytest.fixture
def parent() -> Iterator[str]:
    """A parent of the test's own; whatever is left under it is killed and removed (without the module)."""
    name = f"vectraguard-test-{uuid.uuid4().hex[:8]}"
    yield name
    tops = [CGROUP_ROOT / name] if MODE == "v2" else [CGROUP_ROOT / c / name for c in CONTROLLERS]
    for top in (t for t in tops if t.is_dir()):
        for group in (g for g in top.iterdir() if g.is_dir()):
            for _ in range(100):
                pids = (group / "cgroup.procs").read_text().split()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)
            group.rmdir()
        top.rmdir()


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    _spawned.append(process)
    return process


def _blocked(argv: list[str]) -> subprocess.Popen[bytes]:
    """Started, and waiting for one byte on its stdin (_release) before it does anything."""
    return _spawn(argv)


def _release(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.write(b"g")
    process.stdin.flush()


def _read(group: SandboxCgroup, controller: str, file: str) -> str:
    return (group.directories[controller] / file).read_text().strip()


def test_a_process_over_its_memory_is_oom_killed_and_the_group_says_so(parent: str) -> None:
    group = SandboxCgroup.create("oom", memory=64 * MiB, pids=None, cpus=None, mode=MODE, parent=parent)
    with group:
        process = _blocked([sys.executable, "-c", ALLOCATE])
        group.add(process.pid)
        assert group.pids() == {process.pid}
        assert not group.oom_killed()
        _release(process)
        out, _ = process.communicate(timeout=HANG_GUARD_S)
        assert process.returncode == -signal.SIGKILL, out
        assert b"survived" not in out
        assert group.oom_killed()
        assert group.oom_kills() == 1


def test_memory_and_swap_are_capped_alike_or_the_group_says_swap_is_not(parent: str) -> None:
    group = SandboxCgroup.create("memsw", memory=64 * MiB, pids=None, cpus=None, mode=MODE, parent=parent)
    with group:
        swap_file = "memory.swap.max" if MODE == "v2" else "memory.memsw.limit_in_bytes"
        limit_file = "memory.max" if MODE == "v2" else "memory.limit_in_bytes"
        assert _read(group, "memory", limit_file) == str(64 * MiB)
        if (group.directories["memory"] / swap_file).exists():
            assert _read(group, "memory", swap_file) == ("0" if MODE == "v2" else str(64 * MiB))
            assert group.notes == ()
        else:
            assert len(group.notes) == 1 and group.notes[0].startswith("swap is not capped"), group.notes


def test_without_swap_accounting_memory_is_capped_and_a_note_says_swap_is_not(tmp_path: Path) -> None:
    # A directory tree stands in for a v1 kernel without swapaccount: no memsw files.
    for controller in ("memory", "pids"):
        (tmp_path / controller).mkdir()
    group = SandboxCgroup.create("nomemsw", memory=64 * MiB, pids=None, cpus=None, mode="v1", root=tmp_path)
    assert _read(group, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert group.notes == ("swap is not capped: this kernel has no swap accounting (memory.memsw.limit_in_bytes "
                           "is missing; boot with swapaccount=1); memory alone is capped",)


def test_with_pids_5_the_fifth_process_cannot_be_forked(parent: str) -> None:
    group = SandboxCgroup.create("pids", memory=None, pids=5, cpus=None, mode=MODE, parent=parent)
    with group:
        assert _read(group, "pids", "pids.max") == "5"
        process = _blocked([sys.executable, "-c", FORK_UNTIL_REFUSED])
        group.add(process.pid)
        assert group.pids() == {process.pid}
        _release(process)
        assert process.stdout is not None
        line = process.stdout.readline().decode().split()
        assert line == ["4", "EAGAIN"]  # the forker and 4 children: 5 processes
        assert len(group.pids()) == 5
        assert group.kill_all()
        process.wait(HANG_GUARD_S)


def test_cpus_become_a_quota_per_period(parent: str) -> None:
    group = SandboxCgroup.create("cpu", memory=None, pids=None, cpus=0.2, mode=MODE, parent=parent)
    with group:
        if MODE == "v2":
            assert _read(group, "cpu", "cpu.max") == "20000 100000"
        else:
            assert _read(group, "cpu", "cpu.cfs_quota_us") == "20000"
            assert _read(group, "cpu", "cpu.cfs_period_us") == "100000"


def test_kill_all_ends_a_tree_that_keeps_forking(parent: str) -> None:
    group = SandboxCgroup.create("tree", memory=None, pids=64, cpus=None, mode=MODE, parent=parent)
    process = _blocked(["/bin/sh", "-c", FORKING_TREE])
    group.add(process.pid)
    assert group.pids() == {process.pid}
    _release(process)
    seen: set[int] = set()
    for _ in range(1000):  # until the tree has grown a little (no assertion on how fast)
        seen |= group.pids()
        if len(seen) >= 8:
            break
        time.sleep(0.01)
    assert len(seen) >= 8, seen
    assert group.kill_all()
    assert group.pids() == set()
    assert process.wait(HANG_GUARD_S) == -signal.SIGKILL
    assert group.remove()


def test_remove_leaves_no_directory_and_is_safe_twice(parent: str) -> None:
    group = SandboxCgroup.create("gone", memory=64 * MiB, pids=10, cpus=0.5, mode=MODE, parent=parent)
    directories = set(group.directories.values())
    assert all(d.is_dir() for d in directories)
    assert len(directories) == (1 if MODE == "v2" else 3)
    assert group.kill_all() and group.remove()
    assert not any(d.exists() for d in directories)
    assert group.kill_all() and group.remove()


def test_leaving_the_block_kills_what_is_left_and_removes_the_group(parent: str) -> None:
    with SandboxCgroup.create("block", memory=None, pids=10, cpus=None, mode=MODE, parent=parent) as group:
        process = _spawn(["sleep", "1000"])
        group.add(process.pid)
    assert process.wait(HANG_GUARD_S) == -signal.SIGKILL
    assert not any(d.exists() for d in group.directories.values())


def test_reap_stale_removes_the_group_of_a_dead_owner_and_keeps_a_live_one(parent: str) -> None:
    dead = _group_of_a_dead_owner("deadowner", parent)
    live = SandboxCgroup.create("liveowner", memory=None, pids=10, cpus=None, mode=MODE, parent=parent)
    with live:
        removed = reap_stale(mode=MODE, parent=parent)
        assert sorted(removed) == sorted(dead)
        assert not any(d.exists() for d in dead)
        assert all(d.is_dir() for d in live.directories.values())


def test_reap_stale_kills_what_a_dead_owner_left_only_when_asked(parent: str) -> None:
    dead = _group_of_a_dead_owner("leftover", parent)
    sleeper = _spawn(["sleep", "1000"])
    SandboxCgroup(MODE, {"pids": dead[0]}).add(sleeper.pid)  # the first directory holds it
    assert reap_stale(mode=MODE, parent=parent) == [d for d in dead[1:]]
    assert dead[0].is_dir() and sleeper.poll() is None
    assert reap_stale(mode=MODE, parent=parent, kill=True) == [dead[0]]
    assert sleeper.wait(HANG_GUARD_S) == -signal.SIGKILL


def _group_of_a_dead_owner(name: str, parent: str) -> list[Path]:
    """The directories of a group made by another process, which then exited without removing it."""
    code = (f"from vectraguard.lite.cgroup import SandboxCgroup\n"
            f"g = SandboxCgroup.create({name!r}, memory=None, pids=10, cpus=None, mode={MODE!r}, parent={parent!r})\n"
            f"print('\\n'.join(sorted(set(map(str, g.directories.values())))))\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": REPO},
                         check=True, capture_output=True, text=True).stdout
    directories = [Path(line) for line in out.split()]
    assert directories and all(d.is_dir() and d.name.startswith(f"{name}@") for d in directories)
    return directories


@pytest.mark.skipif(MODE == "v2", reason="v1: a child's cfs quota may not exceed its parent's")
def test_a_limit_the_kernel_refuses_is_a_clear_error_and_nothing_is_left(parent: str) -> None:
    top = CGROUP_ROOT / "cpu" / parent
    top.mkdir()
    (top / "cpu.cfs_quota_us").write_text("10000")  # the parent: 0.1 CPU
    with pytest.raises(LimitNotEnforceable) as refused:
        SandboxCgroup.create("refused", memory=64 * MiB, pids=10, cpus=0.5, mode=MODE, parent=parent)
    assert refused.value.message.startswith(f"cannot set the sandbox's cpu limit: {top}/refused@")
    assert refused.value.message.endswith("/cpu.cfs_quota_us = 50000: Invalid argument")
    for controller in CONTROLLERS:
        assert list((CGROUP_ROOT / controller / parent).glob("refused@*")) == []


def test_a_read_only_cgroup_root_is_a_clear_error(tmp_path: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmp_path)], check=True)
    try:
        for controller in CONTROLLERS:
            (tmp_path / controller).mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(tmp_path)], check=True)
        with pytest.raises(LimitNotEnforceable) as refused:
            SandboxCgroup.create("ro", memory=64 * MiB, pids=None, cpus=None, mode="v1", root=tmp_path)
    finally:
        subprocess.run(["umount", str(tmp_path)], check=True)
    group = tmp_path / "memory" / "vectraguard" / f"ro@{current_owner()}"
    assert refused.value.message == f"cannot make the sandbox's cgroup {group}: Read-only file system"


@pytest.mark.skipif(MODE != "hybrid", reason="hybrid: the controllers are bound to the v1 hierarchies")
def test_v2_without_its_controllers_is_refused(parent: str) -> None:
    unified = CGROUP_ROOT / "unified"
    try:
        with pytest.raises(LimitNotEnforceable) as refused:
            SandboxCgroup.create("nov2", memory=64 * MiB, pids=None, cpus=None, mode="v2", root=unified, parent=parent)
    finally:
        (unified / parent).rmdir()
    assert refused.value.message.startswith(f"cannot enable the memory, pids cgroup controllers for {unified / parent}: ")


@pytest.mark.parametrize(("limits", "message"), [
    ({"memory": 0, "pids": None, "cpus": None}, "memory limit 0 bytes: it must be positive"),
    ({"memory": None, "pids": 0, "cpus": None}, "pids limit 0: it must be positive"),
    ({"memory": None, "pids": None, "cpus": 0.005}, "cpus 0.005: below the kernel's smallest quota, 0.01 CPUs"),
])
def test_limits_the_kernel_cannot_take_are_refused_before_anything_is_made(
        tmp_path: Path, limits: dict[str, float | None], message: str) -> None:
    with pytest.raises(LimitNotEnforceable) as refused:
        SandboxCgroup.create("bad", mode="v1", root=tmp_path, **limits)  # type: ignore[arg-type]
    assert refused.value.message == message
    assert list(tmp_path.iterdir()) == []


def test_usage_reports_memory_charged(parent: str) -> None:
    with SandboxCgroup.create("usage", memory=None, pids=None, cpus=0.5, mode=MODE, parent=parent) as group:
        process = _blocked([sys.executable, "-c", ALLOCATE.replace("range(30)", "range(3)") + "sys.stdin.read(1)"])
        group.add(process.pid)
        _release(process)
        assert process.stdout is not None and process.stdout.readline() == b"survived\n"
        usage = group.usage()  # while it holds 30 MB
        assert usage.memory is not None and usage.memory >= 30 * MiB
        _release(process)
        process.wait(HANG_GUARD_S)
