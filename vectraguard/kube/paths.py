"""Paths in the generated pod: mount targets (the workspace's, the mounts'), and hostPath sources.

Targets follow the local rules (sandbox/mounts.canonical_target: absolute,
no `..`, `:` or line breaks, not the runtime's own places) and may neither be
nor hold the sandbox's /tmp and $HOME, nor be used twice.

A hostPath names a path on whichever node runs the pod, which nothing on
this host can resolve or hold open, so the local rules' realpath and
descriptor checks cannot apply. It is given only inside the node
directories the system policy names (`kube.host_path_roots`: fail closed,
an allowlist of the administrator's, since no list of a node's sensitive
places is complete across distributions), as written: absolute and normal
(no `..`, `.` or doubled `/`), and, as a second fence, neither at, under nor
above a place of the node's own that gives the node away (NODE_DENIED: its
kernel interfaces, its configuration, the kubelet's, the container
runtimes' and the Kubernetes distributions' state, sockets, logs, homes, the
system's programs); then the policy's `filesystem.denied_paths`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from vectraguard import errors
from vectraguard.config.policy import Policy
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import MountEntry
from vectraguard.sandbox.compile import SANDBOX_HOME, TMP_TARGET
from vectraguard.sandbox.mounts import canonical_target

NODE_DENIED = (
    "/proc", "/sys", "/dev", "/boot", "/etc", "/root", "/home", "/run", "/var/run", "/var/lock", "/var/lib",
    "/var/log", "/var/snap", "/snap", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/cni",
    "/tmp", "/var/tmp",
)
PROG = "vectraguard kube generate"


def check_target(target: str, origin: Origin, what: str, taken: set[str]) -> str:
    """The canonical target, added to `taken`; PolicyError where a local run would refuse it, where it would
    be or hold the sandbox's /tmp or $HOME, or where another mount has it."""
    canonical = canonical_target(target, origin)
    for own in (TMP_TARGET, SANDBOX_HOME):
        if _within(own, canonical):
            raise errors.PolicyError(f"{PROG}: {origin}: {what} {canonical} would cover the sandbox's own {own}")
    if canonical in taken:
        raise errors.PolicyError(f"{PROG}: {origin}: {what} {canonical}: a second mount there")
    taken.add(canonical)
    return canonical


def check_host_paths(mounts: Sequence[MountEntry], policy: Policy | None, taken: set[str]) -> None:
    """PolicyError (exit 125) for the first mount that cannot be a hostPath volume."""
    roots = tuple(policy.get("kube.host_path_roots") or ()) if policy is not None else ()
    denied_paths = tuple(policy.get("filesystem.denied_paths") or ()) if policy is not None else ()
    for mount in mounts:
        where = f"{PROG}: {mount.origin}: mount {mount.source}:{mount.target}"
        source = mount.source
        if not source.startswith("/") or posixpath.normpath(source) != source or "//" in source:
            raise errors.PolicyError(f"{where}: a hostPath must be an absolute, normal path on the node "
                                     "(no '..', '.', '//' or trailing '/')")
        if not any(_within(source, root) for root in roots):
            raise errors.PolicyError(f"{where}: not inside a node directory the system policy's "
                                     f"kube.host_path_roots names ({', '.join(roots)})")
        near = [place for place in NODE_DENIED if _near(source, place)]
        if source == "/" or near:
            raise errors.PolicyError(f"{where}: {source} is, holds or lies in a place of the node's own "
                                     f"({', '.join(near) or '/'}): never a hostPath")
        for denied in denied_paths:
            if _near(source, denied):
                assert policy is not None
                raise errors.PolicyError(f"{where}: {denied} may not be mounted; refused by "
                                         f"{policy.rule('filesystem.denied_paths')}")
        check_target(mount.target, mount.origin, "mount target", taken)


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _near(path: str, place: str) -> bool:
    """`path` is `place`, lies in it, or holds it."""
    return _within(path, place) or _within(place, path)
