"""What this host can do, detected cheaply on every run (no subprocesses).

`vectraguard doctor` reports the same facts at length and probes further;
the run path only needs what changes the container spec.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from vectraguard.records import record
from vectraguard.sandbox.entry import installed_entry

CGROUP_ROOT = Path("/sys/fs/cgroup")


@record
class HostFacts:
    """What this host and caller can do, as the compiler needs to know it."""

    rootless: bool
    uid: int
    cgroup_mode: str  # "v2" | "hybrid" | "v1"
    nofile_hard: int  # -1: unlimited
    nproc_hard: int  # -1: unlimited
    oci_runtime: str | None  # None: Podman's configured default; set on the service (service.py), checked by oci.py
    init_path: str | None  # a static tini; None: Podman's default init (catatonit)
    limits_enforced: bool  # can Podman enforce cpu/memory/pids for this caller?
    why_not_enforced: str
    entry_path: str | None = None  # the installed vectraguard-entry (sandbox/entry.py); None: not installed
    # `isolation: gvisor` (vectraguard/isolation/gvisor.py): the directory of the runsc
    # wrappers, or None, and then why not.
    gvisor_dir: str | None = None
    why_no_gvisor: str = "not detected"
    # `isolation: lite` (vectraguard/lite/): "" when this host can run it, else why not.
    why_no_lite: str = "not detected"


def cgroup_mode(root: Path = CGROUP_ROOT) -> str:
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified" / "cgroup.controllers").exists():
        return "hybrid"
    return "v1"


def _hard(limit: int) -> int:
    hard = resource.getrlimit(limit)[1]
    return -1 if hard == resource.RLIM_INFINITY else hard


def pick_oci_runtime(mode: str) -> str | None:
    # crun (at least up to 1.8) refuses to start anything on hybrid cgroups;
    # runc handles v1, hybrid and v2. On a pure v2 host, Podman's own default
    # is the best choice. Podman's REST API ignores a per-container runtime,
    # so this becomes the private service's own `--runtime` (service.py).
    # By absolute path, from the system directories: a name would be looked
    # up by Podman through containers.conf and PATH, which the caller's
    # environment can change; a path is what verify_runtime compares exactly.
    if mode != "v2":
        return _find_binary("runc")
    return None


def pick_init() -> str | None:
    # tini reports a command that cannot be found or executed as 127/126,
    # like a shell; catatonit (Podman's default) says 1 for both. The init is
    # bind-mounted into the sandbox, so it must be statically linked.
    return _find_binary("tini-static")


SYSTEM_BIN_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/local/sbin", "/usr/sbin", "/bin", "/sbin")


def _find_binary(name: str) -> str | None:
    # Fixed system directories, not $PATH: the init and the OCI runtime are
    # trusted host binaries, not whatever a caller's PATH points at.
    for directory in SYSTEM_BIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _rootless_v2_delegated(uid: int) -> bool:
    service = CGROUP_ROOT / "user.slice" / f"user-{uid}.slice" / f"user@{uid}.service" / "cgroup.controllers"
    try:
        controllers = set(service.read_text().split())
    except OSError:
        return False
    return {"memory", "pids", "cpu"} <= controllers


def detect() -> HostFacts:
    from vectraguard.isolation import gvisor
    from vectraguard.lite import support as lite

    no_gvisor = gvisor.why_not()  # a few stat calls
    uid = os.geteuid()
    mode = cgroup_mode()
    rootless = uid != 0
    enforced, why = True, ""
    if rootless and mode != "v2":
        enforced = False
        why = f"rootless Podman cannot enforce cpu, memory or pids limits on cgroups {mode}"
    elif rootless and not _rootless_v2_delegated(uid):
        enforced = False
        why = "the cpu, memory and pids cgroup controllers are not delegated to this user"
    return HostFacts(
        rootless=rootless,
        uid=uid,
        cgroup_mode=mode,
        nofile_hard=_hard(resource.RLIMIT_NOFILE),
        nproc_hard=_hard(resource.RLIMIT_NPROC),
        oci_runtime=pick_oci_runtime(mode),
        init_path=pick_init(),
        limits_enforced=enforced,
        why_not_enforced=why,
        entry_path=installed_entry(),
        gvisor_dir=None if no_gvisor else gvisor.wrapper_dir(),
        why_no_gvisor=no_gvisor,
        why_no_lite=lite.why_not(),
    )
