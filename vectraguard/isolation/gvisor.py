"""The `gvisor` level: a run's container started by gVisor's runsc.

Podman is given one of four small wrappers that contrib/install.sh puts in
PREFIX/libexec (contrib/gvisor/), each `exec /usr/bin/runsc` with fixed flags:

- `--platform=ptrace`: the platform this host's runsc (Debian's 2022-12
  build) runs; `systrap` is unknown to it and `kvm` hangs here.
- `--oci-seccomp`: without it runsc silently ignores the spec's seccomp
  profile; with it the profile filters the sandbox's own system calls.
- `--network=none` for a sandbox without network: gVisor's own stack, with
  nothing but its loopback. `--network=host` for `allowlist` and `full`:
  the sandbox uses the network namespace Podman made for it — for
  `allowlist` the private, empty one where Vectra Guard plants its
  listeners (reached through the sandbox's 127.0.0.1, as with runc), for
  `full` Podman's bridge or slirp4netns. "host" is gVisor's name for "the
  namespace runsc runs in", never the host's own: Podman always gives the
  container a namespace of its own. The price: socket calls then reach the
  host kernel's network stack (filtered by the Sentry) instead of gVisor's.
- rootless also `--ignore-cgroups` (runsc cannot create cgroups there):
  no cpu, memory or pids limits, refused unless the profile accepts
  best-effort limits (compile.py, as for rootless Podman without delegation).

Rootful, the container gets Podman's user namespace of unprivileged ids
(userns=auto) as at container, so the sandbox's uid 1000 is not the host's
uid 1000 for the files it is given. runsc runs its Sentry — the kernel the
sandbox's processes talk to, and what an exploit inside reaches first — as
nobody, and its Gofer, the file proxy that opens every mount source, as the
container's root (the first id of that range) under runsc's own seccomp
filter (checked: `ps` shows runsc-sandbox as nobody, runsc-gofer as
2147483647 here). runsc 2022-12 opens the sources after entering that
namespace, unlike runc: a source below a directory others cannot search
is refused before anything starts (isolation/files.py check_reachable),
hosts files live in a searchable directory (paths.hosts_dir), and the
command is given to Podman directly rather than through vectraguard-entry
(its command directory is private), so this level has no pool.

Podman's REST API ignores a per-container runtime, so each wrapper is the
`--runtime` of a Podman service of its own (runtime/service.py), and every
container's inspect document is checked to name that wrapper (runtime/oci.py).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

RUNSC = "/usr/bin/runsc"
# (gVisor network, rootless) -> the wrapper's file name in PREFIX/libexec.
WRAPPERS = {
    ("none", False): "runsc-none",
    ("host", False): "runsc-host",
    ("none", True): "runsc-none-rootless",
    ("host", True): "runsc-host-rootless",
}


def wrapper_dir() -> str:
    return os.path.join(sys.prefix, "libexec")


def why_not(directory: str | None = None) -> str:
    """"" when gVisor can be used here (runsc and the four wrappers in
    `directory`, default wrapper_dir(), which only root or this user can
    change); else why not, and what to do."""
    directory = directory or wrapper_dir()
    if not _trusted(RUNSC, executable=True):
        return f"gVisor's runsc is not installed at {RUNSC} (apt-get install runsc, or rerun contrib/install.sh)"
    if not _trusted(directory, executable=True, directory=True):
        return f"{directory} is missing or others may change it (rerun contrib/install.sh)"
    for name in WRAPPERS.values():
        if not _trusted(os.path.join(directory, name), executable=True):
            return f"the runsc wrapper {os.path.join(directory, name)} is missing or others may change it " \
                   "(rerun contrib/install.sh)"
    return ""


def runtime_for(network_mode: str, rootless: bool, directory: str) -> str:
    """The wrapper (absolute path) for a run with `network_mode` (none, allowlist, full)."""
    return os.path.join(directory, WRAPPERS[("none" if network_mode == "none" else "host", rootless)])


def _trusted(path: str, *, executable: bool, directory: bool = False) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    return (kind_ok and info.st_uid in (0, os.geteuid()) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and (not executable or bool(info.st_mode & stat.S_IXOTH)))


# System calls gVisor (runsc 2022-12) does not implement, and so answers ENOSYS
# itself. runsc's --oci-seccomp ignores a rule's errnoRet and answers EPERM:
# the profile's "clone3: ENOSYS" (glibc 2.34+ falls back to clone only on
# ENOSYS, and clone's flags are what the profile filters) became EPERM, and
# every posix_spawn and new thread failed. For a gVisor sandbox these rules
# are allowed instead, so gVisor's own ENOSYS reaches the program;
# tests/test_isolation_gvisor.py checks from inside that clone3 still fails
# with ENOSYS (a runsc that implemented it would fail that test).
NATIVE_ENOSYS = frozenset({"clone3", "socketcall"})


def for_gvisor(document: dict[str, Any]) -> dict[str, Any]:
    """A seccomp profile (OCI / containers JSON, as parsed) as a gVisor sandbox needs it: the
    rules answering ENOSYS for what gVisor does not implement become allows (NATIVE_ENOSYS)."""
    for rule in document.get("syscalls", []):
        if rule.get("errnoRet") == 38 and set(rule.get("names", ())) <= NATIVE_ENOSYS and not rule.get("args"):
            rule["action"] = "SCMP_ACT_ALLOW"
            rule.pop("errnoRet", None)
            rule.pop("errno", None)
            rule["comment"] = f"{rule.get('comment', '')} [gVisor: answered ENOSYS by gVisor itself]".strip()
    return document


def seccomp_profile(path: str, directory: Path) -> str:
    """The seccomp profile at `path` as a gVisor sandbox needs it (above),
    written once into `directory` (private to the caller) under a name
    derived from its content; its path. OSError when it cannot be written."""
    text = Path(path).read_bytes()
    document = for_gvisor(json.loads(text))
    from vectraguard.digests import sha256_hex

    derived = directory / f"seccomp-gvisor-{sha256_hex(text)[:16]}.json"
    if not derived.is_file():
        temporary = directory / f".{derived.name}.{os.getpid()}"
        temporary.write_text(json.dumps(document, indent=1))
        os.replace(temporary, derived)
    return str(derived)
