"""Whether a client may have its command run by this fork server's process.

The process that runs a request is forked from the server, so it carries
the server's credentials and confinement, not the client's. It may run a
client's command only when that makes no difference: same user and groups,
same capabilities, same no_new_privs, no seccomp filter at all (what a
filter allows cannot be read back), same namespaces, same LSM label, and
ptrace attach access to the serving process (may_look_into_us: what shows a
Landlock domain) — a client confined in any of these ways (an agent's
bubblewrap, Codex's seccomp and Landlock) must not escape its confinement
through the server. A client that limits its address space or data size
is not served either: the serving process is the whole server's size. Its resource limits, umask, scheduling
(nice value, CPU affinity, policy, I/O priority, OOM score adjustment) and
cgroups are then taken on (what cannot be taken on is a refusal). All of it is read from
/proc/PID (proc(5)) of the pid the kernel gave with the connection
(SO_PEERCRED), held by a pidfd (SO_PEERPIDFD, Linux 6.5; pidfd_open before
that) and checked to still be alive after the reads, so a pid reused in
between is not mistaken for the client.

Each check returns a reason (str) to refuse, or None.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import resource
import select
import socket
import sys
from dataclasses import dataclass

from vectraguard.runtime.owner import process_identity

SO_PEERPIDFD = 77  # <asm-generic/socket.h>, Linux 6.5
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
# /proc/PID/status fields that must be equal to ours.
SAME_STATUS = ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Seccomp_filters", "CapInh", "CapPrm", "CapEff",
               "CapBnd", "CapAmb")
# /proc/PID/limits rows (fs/proc/base.c lnames) and their RLIMIT_* numbers (<asm-generic/resource.h>;
# the resource module lacks RLIMIT_LOCKS).
LIMITS = {
    "Max cpu time": 0, "Max file size": 1, "Max data size": 2, "Max stack size": 3, "Max core file size": 4,
    "Max resident set": 5, "Max processes": 6, "Max open files": 7, "Max locked memory": 8,
    "Max address space": 9, "Max file locks": 10, "Max pending signals": 11, "Max msgqueue size": 12,
    "Max nice priority": 13, "Max realtime priority": 14, "Max realtime timeout": 15,
}


@dataclass
class Peer:
    """What the run takes on from its client: pid and identity (runtime/owner.py), umask, limits
    (resource -> (soft, hard)), cgroup lines."""

    pid: int
    identity: str
    umask: int
    limits: dict[int, tuple[int, int]]
    cgroups: list[str]
    scheduling: Scheduling


@dataclass
class Scheduling:
    """How the kernel schedules a process: nice value, CPU affinity, policy and
    its priority (sched(7)), I/O priority (ioprio_get(2): class << 13 | data),
    OOM score adjustment (proc(5))."""

    nice: int
    affinity: set[int]
    policy: int
    priority: int
    ioprio: int
    oom_score_adj: int

    @classmethod
    def of(cls, pid: int) -> Scheduling:
        """OSError when `pid` cannot be read; ValueError on an architecture whose ioprio numbers are not known."""
        with open(f"/proc/{pid}/oom_score_adj", encoding="ascii") as handle:
            oom = int(handle.read())
        return cls(os.getpriority(os.PRIO_PROCESS, pid), os.sched_getaffinity(pid), os.sched_getscheduler(pid),
                   os.sched_getparam(pid).sched_priority, _ioprio_get(pid), oom)

    def apply(self) -> None:
        """Make this process's scheduling `self`; OSError where the kernel refuses (e.g. a lower nice value)."""
        here = Scheduling.of(os.getpid())
        if (here.policy, here.priority) != (self.policy, self.priority):
            os.sched_setscheduler(0, self.policy, os.sched_param(self.priority))
        if here.nice != self.nice:
            os.setpriority(os.PRIO_PROCESS, 0, self.nice)
        if here.affinity != self.affinity:
            os.sched_setaffinity(0, self.affinity)
        if here.ioprio != self.ioprio:
            _ioprio_set(self.ioprio)
        if here.oom_score_adj != self.oom_score_adj:
            with open("/proc/self/oom_score_adj", "w", encoding="ascii") as handle:
                handle.write(str(self.oom_score_adj))


# ioprio_get/ioprio_set numbers (<asm/unistd.h>); IOPRIO_WHO_PROCESS = 1 (<linux/ioprio.h>).
_IOPRIO_SYSCALLS = {"x86_64": (252, 251), "aarch64": (31, 30)}
_IOPRIO_WHO_PROCESS = 1


def _ioprio_syscalls() -> tuple[int, int]:
    machine = os.uname().machine
    if machine not in _IOPRIO_SYSCALLS:
        raise ValueError(f"ioprio system call numbers unknown on {machine}")
    return _IOPRIO_SYSCALLS[machine]


def _ioprio_get(pid: int) -> int:
    libc = _libc()
    value = int(libc.syscall(_ioprio_syscalls()[0], _IOPRIO_WHO_PROCESS, pid))
    if value < 0:
        errno_value = ctypes.get_errno()
        raise OSError(errno_value, os.strerror(errno_value), "ioprio_get")
    return value


def _ioprio_set(value: int) -> None:
    libc = _libc()
    if libc.syscall(_ioprio_syscalls()[1], _IOPRIO_WHO_PROCESS, 0, value) < 0:
        errno_value = ctypes.get_errno()
        raise OSError(errno_value, os.strerror(errno_value), "ioprio_set")


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded once (the fork server does it: forkserver/server.py)."""
    return ctypes.CDLL(None, use_errno=True)


@functools.cache
def ours() -> tuple[dict[str, str], dict[str, str]]:
    """This process's SAME_STATUS fields and namespaces (name -> link), read
    once: the fork server reads them before serving, and each process it
    forks has the same (only the process itself could change any of them:
    setuid, capset, prctl, seccomp, setns, unshare — none of which the
    server does). Its LSM label is read for every request instead: a
    profile reloaded from complain to enforce mode changes it from outside."""
    status = _status("self")
    namespaces: dict[str, str] = {}
    for name in NAMESPACES:
        try:
            namespaces[name] = os.readlink(f"/proc/self/ns/{name}")
        except FileNotFoundError:
            continue  # this kernel has no such namespace
    return {key: status[key] for key in SAME_STATUS if key in status}, namespaces


def _status(pid: int | str) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as handle:
        return {key: value.strip() for key, _, value in (line.partition(":") for line in handle)}


def _limits(pid: int) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    with open(f"/proc/{pid}/limits", encoding="ascii") as handle:
        for line in handle.readlines()[1:]:
            name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
            if name in LIMITS:
                found[LIMITS[name]] = (_limit(soft), _limit(hard))
    return found


def _limit(text: str) -> int:
    return resource.RLIM_INFINITY if text == "unlimited" else int(text)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL):
            return b""  # no LSM answers it (EINVAL): equal to ours, which is absent too
        raise


def _pidfd(conn: socket.socket, pid: int) -> int:
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
        if raw >= 0:
            return raw
    except OSError:
        pass
    return os.pidfd_open(pid)


PR_SET_PTRACER = 0x59616D61  # <linux/prctl.h>: Yama's exception for a named process


def let_attach(pid: int) -> None:
    """Let process `pid` pass Yama's ptrace_scope 1 towards this one (it allows
    a process's descendants only); nothing else changes (prctl(2)). 0 undoes it."""
    libc = _libc()
    libc.prctl(PR_SET_PTRACER, pid, 0, 0, 0)  # EINVAL without Yama: nothing to let through


def may_look_into_us(proof: int) -> bool:
    """Whether `proof` is this process's own /proc/PID/mem, opened by the
    client: opening it takes ptrace attach access to this process
    (PTRACE_MODE_ATTACH_FSCREDS, proc(5)), which Landlock denies a process
    in a domain towards any process outside it, root included (landlock(7);
    measured: read access, /proc/PID/environ, is let through for root), as
    other confinement (LSMs, Yama's ptrace_scope 2 and 3) may. Nothing else
    shows a Landlock domain (it sets no_new_privs only when unprivileged)."""
    try:
        mine = f"/proc/{os.getpid()}/mem"
        if os.readlink(f"/proc/self/fd/{proof}") != mine:
            return False
        return os.path.samestat(os.fstat(proof), os.stat(mine))
    except OSError:
        return False


def examine(conn: socket.socket) -> Peer | str:
    """The client at the other end of `conn`, or why it may not be served here."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, uid, gid = (int.from_bytes(creds[i:i + 4], sys.byteorder)
                     for i in (0, 4, 8))
    if uid != os.geteuid() or gid != os.getegid():
        return f"the client runs as uid {uid} gid {gid}, the server as {os.geteuid()} {os.getegid()}"
    try:
        pidfd = _pidfd(conn, pid)
    except OSError as exc:
        return f"the client's process cannot be held: {exc.strerror}"
    try:
        theirs = _status(pid)
        own_status, own_namespaces = ours()
        for key in SAME_STATUS:
            if theirs.get(key) != own_status.get(key):
                return f"the client's {key} differs from the server's"
        if theirs.get("Seccomp") != "0":  # what a filter allows cannot be read back: none is the only match
            return "the client runs under a seccomp filter"
        for name in NAMESPACES:
            try:
                if os.readlink(f"/proc/{pid}/ns/{name}") != own_namespaces.get(name):
                    return f"the client is in another {name} namespace"
            except FileNotFoundError:
                if name in own_namespaces:
                    return f"the client's {name} namespace cannot be read"
                continue  # this kernel has no such namespace
        if _read(f"/proc/{pid}/attr/current") != _read("/proc/self/attr/current"):
            return "the client's LSM label differs from the server's"
        identity = process_identity(pid)
        umask = int(theirs["Umask"], 8)
        limits = _limits(pid)
        for number, name in ((9, "address space"), (2, "data size")):  # RLIMIT_AS, RLIMIT_DATA
            if limits.get(number, (resource.RLIM_INFINITY,))[0] != resource.RLIM_INFINITY:
                # This process is the whole server's size: it could fail where the client would not.
                return f"the client limits its {name}"
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            cgroups = handle.read().splitlines()
        scheduling = Scheduling.of(pid)
        if select.select([pidfd], [], [], 0)[0]:  # readable: the process has ended (pidfd_open(2))
            return "the client's process ended"
        if identity is None:
            raise ValueError("no start time")
    except (OSError, KeyError, ValueError) as exc:
        return f"the client's process could not be examined: {exc}"
    finally:
        os.close(pidfd)
    return Peer(pid, identity, umask, limits, cgroups, scheduling)


def take_on(peer: Peer) -> str | None:
    """Give this process the client's limits, umask and cgroups; a reason when one cannot be."""
    for number, wanted in peer.limits.items():
        if resource.getrlimit(number) != wanted:
            try:
                resource.setrlimit(number, wanted)
            except (OSError, ValueError) as exc:
                return f"resource limit {number} of the client cannot be set here: {exc}"
    os.umask(peer.umask)
    try:
        peer.scheduling.apply()
    except (OSError, ValueError) as exc:
        return f"the client's scheduling cannot be taken on here: {exc}"
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        ours = set(handle.read().splitlines())
    for line in peer.cgroups:
        if line in ours:
            continue
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":
            base = "/sys/fs/cgroup"
        else:
            name = controllers.removeprefix("name=") if controllers.startswith("name=") else controllers
            base = f"/sys/fs/cgroup/{name}"
        try:
            with open(f"{base}{path}/cgroup.procs", "w", encoding="ascii") as handle:
                handle.write("0")
        except OSError as exc:
            return f"the client's cgroup {path} cannot be joined: {exc.strerror}"
    return None
