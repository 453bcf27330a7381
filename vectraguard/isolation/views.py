"""Where the host can see a sandbox's mounts before its command starts.

sandbox/held.py proves the sandbox got the mount sources it checked by
looking at /proc/PID/root and /proc/PID/mountinfo of a process that has the
sandbox's mounts. Under runc that is the container's init (Podman's
State.Pid), and the mount table's `ro`, `nosuid` and `nodev` are the kernel's,
so they are checked too. Under gVisor the init is inside gVisor's kernel:
State.Pid is runsc's Sentry, chrooted to an empty directory; the bind mounts
are made by runsc's Gofer (running as the container's root: the first id of
its user namespace), in a mount namespace of its own, where the
workspace sits at its target with its real device and inode but without
`ro` (gVisor's kernel enforces the spec's options on what it serves; the
isolation tests prove it from inside).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from vectraguard.errors import PolicyError
from vectraguard.isolation import gvisor
from vectraguard.runtime.interface import ALL_OPTIONS


class MountView(NamedTuple):
    pid: int  # whose /proc/PID/root and mountinfo hold the sandbox's mounts
    checked_options: frozenset[str]  # the mount table's options that protect the sandbox (interface.SandboxView)


def mount_view(isolation: str, inspect: dict[str, Any]) -> MountView:
    """For a container initialised at `isolation` (inspect: libpod's document);
    PolicyError when the process cannot be found (the run is refused)."""
    state = inspect.get("State") or {}
    if isolation != "gvisor":
        return MountView(int(state["Pid"]), ALL_OPTIONS)
    return MountView(gofer_pid(int(state.get("ConmonPid") or 0), container_root(inspect)), frozenset())


def container_root(inspect: dict[str, Any]) -> int | None:
    """The host uid the container's uid 0 maps to, rootful (Podman's
    userns=auto range: HostConfig.IDMappings.UidMap "0:HOST:SIZE"); 0 without
    a mapping. None rootless: the map is relative to the user's own user
    namespace (the caller, then its subordinate ids), and only the caller can
    start a process under its conmon anyway."""
    if os.geteuid() != 0:
        return None
    for entry in ((inspect.get("HostConfig") or {}).get("IDMappings") or {}).get("UidMap") or ():
        inside, host, _ = (str(entry).split(":") + ["", ""])[:3]
        if inside == "0" and host.isdigit():
            return int(host)
    return 0


def gofer_pid(conmon: int, root_uid: int | None = 0) -> int:
    """runsc's Gofer of the container whose conmon is `conmon`: a child of it,
    running /usr/bin/runsc as the container's root (`root_uid` on the host:
    root, or the first id of its user namespace) with argv[0] `runsc-gofer`
    (runsc names its processes so). Only root can start a process as that id
    under conmon, and the sandbox's own processes live inside gVisor, not on
    the host."""
    found = [pid for pid in _children(conmon) if _is_gofer(pid, root_uid)] if conmon > 0 else []
    if len(found) != 1:
        raise PolicyError("vectraguard: cannot check the sandbox's mounts before it starts: runsc's file proxy "
                          f"(runsc-gofer) is not the one child of conmon {conmon} it should be ({len(found)} found)",
                          hint="the run was refused; `vectraguard doctor` checks isolation gvisor")
    return found[0]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:  # CONFIG_PROC_CHILDREN
            return [int(child) for child in listing.read().split()]
    except OSError:
        pass
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat_file:
                    fields = stat_file.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(pid):
                children.append(int(entry))
    return children


def _is_gofer(pid: int, root_uid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv0 = cmdline.read().split(b"\0", 1)[0]
        info = os.stat(f"/proc/{pid}")
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return argv0 == b"runsc-gofer" and root_uid in (None, info.st_uid) and exe == gvisor.RUNSC
