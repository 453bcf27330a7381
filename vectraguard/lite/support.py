"""Whether this host can run isolation `lite`, and what the level cannot give.

Cheap checks on every run (a few stat calls, no subprocess): bubblewrap
and Vectra Guard's init for it. Landlock is asked of the kernel
(landlock_abi) only when a run asks for lite (lite/plan.py) and by
`vectraguard doctor`, which also probes whether the sandbox's user may
make a user namespace at all (doctor/isolation_checks.py).
"""

from __future__ import annotations

import os
import stat
import sys

BWRAP = "/usr/bin/bwrap"
INIT_NAME = "vectraguard-lite-init"  # contrib/lite/vectraguard-lite-init.c, built by contrib/install.sh
SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture (Linux 5.13+)
LANDLOCK_CREATE_RULESET_VERSION = 1
# Rootful, bubblewrap runs as this system user (contrib/install.sh makes it):
# the sandbox's uid inside maps to it, an id that owns nothing on the host.
SANDBOX_USER = "vectraguard-sandbox"


def init_path() -> str:
    return os.path.join(sys.prefix, "libexec", INIT_NAME)


def why_not(init: str | None = None) -> str:
    """"" when `lite` can be used here; else why not, and what to do."""
    if not _trusted(BWRAP):
        return f"bubblewrap is not installed at {BWRAP} (apt-get install bubblewrap, or rerun contrib/install.sh)"
    init = init or init_path()
    if not _trusted(init):
        return f"Vectra Guard's sandbox init {init} is missing or others may change it (rerun contrib/install.sh)"
    return ""


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (landlock(7)); 0 when it has none
    (not built in, or not among the active security modules)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                           ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


NO_LANDLOCK = ("the kernel has no Landlock: use a kernel >= 5.13 built with CONFIG_SECURITY_LANDLOCK and "
               "`landlock` among its active security modules (the `lsm=` boot parameter)")


def _trusted(path: str) -> bool:
    """A regular executable file only root or this user can change."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (stat.S_ISREG(info.st_mode) and info.st_uid in (0, os.geteuid())
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and bool(info.st_mode & stat.S_IXOTH))
