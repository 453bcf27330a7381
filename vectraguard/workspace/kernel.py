"""The few system calls the overlay layer needs that Python 3.11 lacks:
mount(2), umount2(2), and the new mount API for an id-mapped bind mount
(open_tree(2), mount_setattr(2), move_mount(2); Linux ≥ 5.12).

Syscall numbers 428 (open_tree), 429 (move_mount) and 442 (mount_setattr)
are the same on every architecture (they were allocated after the tables
were unified, see the kernel's scripts/syscall.tbl).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE = 1
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x100000
MS_NOSUID, MS_NODEV = 0x2, 0x4
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), data.encode()),
           f"mount {fstype} on {target}")


def unmount(target: str) -> None:
    """Detach `target`; a path that is not mounted is not an error."""
    if _libc.umount2(target.encode(), MNT_DETACH) < 0 and ctypes.get_errno() not in (22, 2):  # EINVAL, ENOENT
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def idmapped_bind(source: str, target: str, uid_map: str, gid_map: str) -> None:
    """Bind `source` at `target` with its owners shifted: `uid_map`/`gid_map`
    in /proc/PID/uid_map form ("ON_DISK HOST COUNT" lines), so a file owned on
    disk by ON_DISK appears owned by HOST. Needs CAP_SYS_ADMIN (rootful)."""
    userns = _user_namespace(uid_map, gid_map)
    try:
        tree = _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, source.encode(), OPEN_TREE_CLONE | os.O_CLOEXEC),
                      f"open_tree {source}")
        try:
            attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns)
            _check(_libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                                 ctypes.sizeof(attr)), "mount_setattr (id-mapped mount)")
            _check(_libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
                   f"move_mount to {target}")
        finally:
            os.close(tree)
    finally:
        os.close(userns)


def _user_namespace(uid_map: str, gid_map: str) -> int:
    """A file descriptor of a new user namespace with these maps. A child in
    a user namespace of its own waits while we write its maps (as root), then
    exits; the descriptor keeps the namespace alive."""
    child = subprocess.Popen(["unshare", "--user", "--", "sh", "-c", "read _"], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        own = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{child.pid}/ns/user") == own:
            if time.monotonic() > deadline or child.poll() is not None:
                raise OSError(0, "could not create a user namespace for the id-mapped mount")
            time.sleep(0.002)
        with open(f"/proc/{child.pid}/uid_map", "w") as out:
            out.write(uid_map)
        with open(f"/proc/{child.pid}/gid_map", "w") as out:
            out.write(gid_map)
        return os.open(f"/proc/{child.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait()
