"""Looking a path up inside a started container's root from the host, as the container would.

`/proc/PID/root` is the container's root directory (with its mount namespace's
mounts); a path below it resolved the ordinary way would follow an absolute
symlink of the container's to the *host's* root. openat2(2) with
RESOLVE_IN_ROOT (Linux 5.6) resolves every component, links included, as if
that directory were `/`, which is what the container's own chdir(2) sees.
The struct is include/uapi/linux/openat2.h's `open_how` (three u64: flags,
mode, resolve); the system call number 437 is the same on every architecture
(the unified syscall table since Linux 5.1).
"""

from __future__ import annotations

import ctypes
import errno
import os

SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def is_directory(pid: int, path: str) -> bool | None:
    """Whether `path` (absolute, as the container sees it) names a directory in the root of process
    `pid`'s container: True or False; None when this kernel cannot say (no openat2: ENOSYS, before
    Linux 5.6). OSError when the process's root cannot be opened (it has gone)."""
    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(SYS_OPENAT2, root, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            os.close(fd)
            return True
        code = ctypes.get_errno()
        if code == errno.ENOSYS:
            return None
        if code in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return False
        raise OSError(code, os.strerror(code), path)
    finally:
        os.close(root)
