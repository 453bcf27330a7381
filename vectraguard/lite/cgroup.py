"""A `lite` sandbox's own cgroup, made by Vectra Guard itself (rootful, no container engine).

At isolation `lite` nothing like Podman makes the sandbox's cgroup, so this
module does, with the limits a container would get (sandbox/spec.py):
memory with memory+swap equal (swapping cannot dodge the cap), a pids
count, a cpu quota per CPU_PERIOD_US. Each sandbox's group is a leaf
under a parent of Vectra Guard's own, `PARENT_NAME`, at the top of the
hierarchy (like Podman's `libpod_parent`):

- v2 (`mode` "v2"): `<root>/vectraguard/<group>`; the parent has no
  processes of its own (cgroup v2's "no internal processes" rule) and
  hands the controllers down through its `cgroup.subtree_control`.
- v1 and hybrid (`mode` "v1" | "hybrid", host.cgroup_mode()): one
  directory per controller, `<root>/<controller>/vectraguard/<group>`,
  for memory and pids always (they track the sandbox's processes, its
  OOM kills and memory use even without a limit) and cpu when a quota is
  asked. On a hybrid host the v2 hierarchy (`unified/`) has no
  controllers, so it is not used.

A group is named `<name>@<owner>`: `name` is the session id
(audit/record.py new_session_id, hex) and `owner` is `PID:STARTTIME` of
the Vectra Guard that made it (runtime/owner.py), so `reap_stale` can tell
the groups of a killed Vectra Guard from those of a live one, without
being fooled by a reused pid.

Fail closed: a limit that cannot be written, a controller that is not
there, a process that cannot be moved in raise `LimitNotEnforceable`, and
the run is refused. What the kernel cannot give but does not weaken a
cap the profile set is said in `SandboxCgroup.notes` (a kernel without
swap accounting: memory is capped, swap is not).

File names and formats: the kernel's Documentation/admin-guide/cgroup-v1/
(memory.rst, pids.rst; cpu: scheduler/sched-bwc.rst) and
Documentation/admin-guide/cgroup-v2.rst.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from vectraguard.errors import LimitNotEnforceable
from vectraguard.records import record
from vectraguard.runtime.host import CGROUP_ROOT
from vectraguard.runtime.owner import current_owner, owner_alive
from vectraguard.sandbox.spec import CPU_PERIOD_US

PARENT_NAME = "vectraguard"
CONTROLLERS = ("memory", "pids", "cpu")
MIN_CPU_QUOTA_US = 1000  # the kernel refuses a smaller cfs quota (EINVAL)
KILL_ROUNDS = 500  # kill_all: rounds of SIGKILL to every listed process ...
ROUND_PAUSE_S = 0.01  # ... this far apart: at most ~5 s for a tree that forks
RMDIR_TRIES = 100  # remove: a group still busy (its last processes exiting) is retried ...
RMDIR_PAUSE_S = 0.02  # ... this far apart: at most ~2 s
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_GROUP = re.compile(r"([A-Za-z0-9_-]{1,64})@([0-9]+:[0-9]+)")
NO_SWAP_ACCOUNTING = ("swap is not capped: this kernel has no swap accounting ({file} is missing; "
                      "boot with swapaccount=1); memory alone is capped")


@record
class CgroupUsage:
    """What a sandbox uses now, for `ps`-like listings."""

    memory: int | None  # bytes charged to the group now (page cache included); None: not known
    cpu_ns: int | None  # CPU time used so far, nanoseconds; None: not known (v1 without cpuacct beside cpu)


class SandboxCgroup:
    """One sandbox's cgroup: its directories (one on v2, one per controller on v1).

    Usage (the `lite` runner): `create`, start the sandbox's first process
    blocked, `add(pid)` it, let it go; after the run `kill_all()` then
    `remove()`; `oom_killed()` to tell an OOM kill from another SIGKILL.
    As a context manager, leaving the block kills and removes.
    """

    def __init__(self, mode: str, directories: dict[str, Path], notes: tuple[str, ...] = ()) -> None:
        self.mode = mode  # "v2" | "hybrid" | "v1"
        self.directories = directories  # controller -> its directory; on v2 all share one
        self.notes = notes  # what the kernel does not give and the profile did not insist on

    @classmethod
    def create(cls, name: str, *, memory: int | None, pids: int | None, cpus: float | None, mode: str,
               root: Path = CGROUP_ROOT, parent: str = PARENT_NAME) -> SandboxCgroup:
        """Make the group `<name>@<owner>` under `root/.../parent` with these limits.

        `memory`: bytes, memory and memory+swap alike; `pids`: processes and
        threads at once; `cpus`: CPUs' worth of time, a quota per
        CPU_PERIOD_US (0.2: 20 ms every 100 ms); None: no limit of that kind.
        `mode`: host.cgroup_mode(). `name`: letters, digits, `_` and `-`.
        Raises LimitNotEnforceable (nothing left behind) when a group or a
        limit cannot be made; ValueError for a malformed name or mode.
        """
        if not _NAME.fullmatch(name):
            raise ValueError(f"cgroup name {name!r}: letters, digits, _ and - only (at most 64)")
        if mode not in ("v2", "hybrid", "v1"):
            raise ValueError(f"cgroup mode {mode!r}: v2, hybrid or v1")
        writes = _limit_writes(mode, memory, pids, cpus)
        group = f"{name}@{current_owner()}"
        needed = [c for c in CONTROLLERS if c in {"memory", "pids"} | {c for c, _f, _v in writes}]
        if mode == "v2":
            _enable_v2(root, parent, needed)
            directories = {c: root / parent / group for c in needed}
        else:
            directories = {c: root / c / parent / group for c in needed}
        made = cls(mode, directories)
        try:
            for directory in made._unique():
                _mkdir(directory)
            notes = tuple(made._write(controller, file, value) for controller, file, value in writes)
        except BaseException:
            made.remove()
            raise
        made.notes = tuple(note for note in notes if note)
        return made

    def _unique(self) -> list[Path]:
        return list(dict.fromkeys(self.directories.values()))

    def _write(self, controller: str, file: str, value: str) -> str:
        """Write one limit; "" or a note when an optional swap file is missing."""
        path = self.directories[controller] / file
        if file in ("memory.memsw.limit_in_bytes", "memory.swap.max") and not path.exists():
            return NO_SWAP_ACCOUNTING.format(file=file)
        try:
            path.write_text(value)
        except OSError as exc:
            raise LimitNotEnforceable(f"cannot set the sandbox's {controller} limit: {path} = {value}: "
                                      f"{exc.strerror or exc}") from exc
        return ""

    def add(self, pid: int) -> None:
        """Move process `pid` into the group (every controller's directory).

        Do it while the process is blocked, before it executes anything: the
        processes it starts are then born inside. Raises LimitNotEnforceable
        when it cannot be moved (the caller must then not let it run).
        """
        for directory in self._unique():
            try:
                (directory / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                raise LimitNotEnforceable(f"cannot move process {pid} into the sandbox's cgroup {directory}: "
                                          f"{exc.strerror or exc}") from exc

    def pids(self) -> set[int]:
        """The processes in the group now (in every controller's directory)."""
        found: set[int] = set()
        for directory in self._unique():
            found |= _procs(directory)
        return found

    def oom_kills(self) -> int:
        """How many processes of the group the kernel's OOM killer killed.

        v2: memory.events `oom_kill`. v1: memory.oom_control `oom_kill`
        (kernel 4.13 and later); an older kernel has no such count, and
        then 1 when the group hit its memory limit (memory.failcnt), which
        may have been reclaimed without a kill.
        """
        directory = self.directories.get("memory")
        if directory is None:
            return 0
        if self.mode == "v2":
            return _keyed(directory / "memory.events").get("oom_kill", 0)
        control = _keyed(directory / "memory.oom_control")
        if "oom_kill" in control:
            return control["oom_kill"]
        return 1 if _number(directory / "memory.failcnt") else 0

    def oom_killed(self) -> bool:
        """Whether the OOM killer killed something in the group (see oom_kills)."""
        return self.oom_kills() > 0

    def kill_all(self) -> bool:
        """SIGKILL every process left in the group; True when none is left.

        v2 with cgroup.kill (Linux 5.14): the kernel kills the whole group
        at once. Otherwise SIGKILL to every listed process, again until the
        group is empty (a process may fork between a listing and its kill),
        at most KILL_ROUNDS times. Safe to call again, and after remove().
        """
        directory = self.directories.get("pids")
        if directory is not None and self.mode == "v2" and (directory / "cgroup.kill").exists():
            with suppress(FileNotFoundError):
                (directory / "cgroup.kill").write_text("1")
        for _round in range(KILL_ROUNDS):
            left = self.pids()
            if not left:
                return True
            for pid in left:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(ROUND_PAUSE_S)
        return not self.pids()

    def remove(self) -> bool:
        """Remove the group's directories; True when none is left.

        A group whose last processes are still exiting is busy for a
        moment: retried for about RMDIR_TRIES * RMDIR_PAUSE_S. One with live
        processes stays (kill_all first); reap_stale finds it later. Safe
        to call again.
        """
        return all([_rmdir(directory) for directory in self._unique()])

    def usage(self) -> CgroupUsage:
        """Memory charged and CPU time used by the group now."""
        memory = self.directories.get("memory")
        cpu = self.directories.get("cpu")
        if self.mode == "v2":
            memory_bytes = _number(memory / "memory.current") if memory else None
            usec = _keyed(self._unique()[0] / "cpu.stat").get("usage_usec")
            return CgroupUsage(memory_bytes, None if usec is None else usec * 1000)
        return CgroupUsage(_number(memory / "memory.usage_in_bytes") if memory else None,
                           _number(cpu / "cpuacct.usage") if cpu else None)

    def __enter__(self) -> SandboxCgroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.kill_all()
        self.remove()


def reap_stale(*, mode: str, root: Path = CGROUP_ROOT, parent: str = PARENT_NAME, kill: bool = False) -> list[Path]:
    """Remove the groups under `parent` whose owning Vectra Guard is gone; the directories removed.

    Only groups named `<name>@<owner>` are looked at; a group whose owner
    process (pid and start time) still runs is kept. A stale group with
    processes left is kept too, unless `kill`: then they are killed first
    (as the container reaper removes a killed run's container).
    """
    if mode == "v2":
        parents = [root / parent]
    else:
        parents = [root / controller / parent for controller in CONTROLLERS]
    removed = []
    for directory in parents:
        for group in _children(directory):
            match = _GROUP.fullmatch(group.name)
            if match is None or owner_alive(match.group(2)):
                continue
            if kill:
                SandboxCgroup(mode, {"pids": group}).kill_all()
            if not _procs(group) and _rmdir(group):
                removed.append(group)
    return removed


def _limit_writes(mode: str, memory: int | None, pids: int | None, cpus: float | None) -> list[tuple[str, str, str]]:
    """(controller, file, value) to write, in order; checks the values."""
    writes = []
    if memory is not None:
        if memory <= 0:
            raise LimitNotEnforceable(f"memory limit {memory} bytes: it must be positive")
        if mode == "v2":
            writes += [("memory", "memory.max", str(memory)), ("memory", "memory.swap.max", "0")]
        else:  # the memory limit first: memsw may never be below it
            writes += [("memory", "memory.limit_in_bytes", str(memory)),
                       ("memory", "memory.memsw.limit_in_bytes", str(memory))]
    if pids is not None:
        if pids <= 0:
            raise LimitNotEnforceable(f"pids limit {pids}: it must be positive")
        writes.append(("pids", "pids.max", str(pids)))
    if cpus is not None:
        quota = int(cpus * CPU_PERIOD_US)
        if quota < MIN_CPU_QUOTA_US:
            raise LimitNotEnforceable(f"cpus {cpus}: below the kernel's smallest quota, "
                                      f"{MIN_CPU_QUOTA_US / CPU_PERIOD_US} CPUs")
        if mode == "v2":
            writes.append(("cpu", "cpu.max", f"{quota} {CPU_PERIOD_US}"))
        else:
            writes += [("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu", "cpu.cfs_quota_us", str(quota))]
    return writes


def _enable_v2(root: Path, parent: str, controllers: list[str]) -> None:
    """The parent exists and hands `controllers` down to its children (root's first)."""
    wanted = " ".join(f"+{c}" for c in controllers)
    try:
        (root / parent).mkdir(exist_ok=True)
        for directory in (root, root / parent):
            enabled = set((directory / "cgroup.subtree_control").read_text().split())
            if not set(controllers) <= enabled:
                (directory / "cgroup.subtree_control").write_text(wanted)
    except OSError as exc:
        raise LimitNotEnforceable(f"cannot enable the {', '.join(controllers)} cgroup controllers for "
                                  f"{root / parent}: {exc.strerror or exc}") from exc


def _mkdir(directory: Path) -> None:
    try:
        directory.parent.mkdir(exist_ok=True)
        directory.mkdir()
    except OSError as exc:
        raise LimitNotEnforceable(f"cannot make the sandbox's cgroup {directory}: {exc.strerror or exc}") from exc


def _rmdir(directory: Path) -> bool:
    for _try in range(RMDIR_TRIES):
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return False
        time.sleep(RMDIR_PAUSE_S)
    return False


def _procs(directory: Path) -> set[int]:
    try:
        return {int(line) for line in (directory / "cgroup.procs").read_text().split()}
    except FileNotFoundError:
        return set()


def _children(directory: Path) -> Iterator[Path]:
    with suppress(FileNotFoundError):
        yield from (entry for entry in directory.iterdir() if entry.is_dir())


def _keyed(path: Path) -> dict[str, int]:
    """A flat keyed file (`key value` lines, as memory.events); {} when missing."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split() for line in lines)
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].isdigit()}


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
