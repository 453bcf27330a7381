"""Whether this host can run isolation `lite`, and what the level cannot give.

Cheap checks on every run (a few stat calls and one small read, no
subprocess): bubblewrap, Vectra Guard's init for it, Landlock in the
kernel. What needs a probe (can this user make a user namespace at all?)
is `vectraguard doctor`'s (doctor/isolation_checks.py).
"""

from __future__ import annotations

import os
import stat
import sys

BWRAP = "/usr/bin/bwrap"
INIT_NAME = "vectraguard-lite-init"  # contrib/lite/vectraguard-lite-init.c, built by contrib/install.sh
LSM_LIST = "/sys/kernel/security/lsm"
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
    try:
        with open(LSM_LIST) as listing:
            active = listing.read().strip().split(",")
    except OSError:
        active = []
    if "landlock" not in active:
        return ("the kernel has no Landlock (not in the active security modules): add `lsm=landlock,...` to the "
                "kernel's command line, or use a kernel >= 5.13 built with CONFIG_SECURITY_LANDLOCK")
    return ""


def _trusted(path: str) -> bool:
    """A regular executable file only root or this user can change."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (stat.S_ISREG(info.st_mode) and info.st_uid in (0, os.geteuid())
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and bool(info.st_mode & stat.S_IXOTH))
