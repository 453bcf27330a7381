"""hostPath volumes, where the system policy allows them (`kube.host_path: true`): what a node path may be.

A hostPath names a path on whichever node runs the pod, which nothing on
this host can resolve or hold open, so the local mount rules' realpath and
descriptor checks cannot apply. What can be checked is the path as
written, strictly: absolute and normal (no `..`, no `.`, no doubled `/`),
not `/`, and neither at, under nor above a place of the node's own that
gives the node away: its kernel interfaces, its configuration (/etc, with
/etc/kubernetes), the kubelet's and the container runtimes' state (other
pods' volumes and secrets, images), runtime sockets (/run, /var/run:
containerd's, CRI-O's, Docker's: read-only does not stop connect()), the
log directories, homes and root's home, the system's programs. Then the
policy's own `filesystem.mount_roots` and `denied_paths`, as for local
mounts. Targets follow the local rules (sandbox/mounts.canonical_target)
and may not cover the sandbox's /tmp, $HOME or workspace.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from vectraguard import errors
from vectraguard.config.policy import Policy
from vectraguard.config.resolved import MountEntry
from vectraguard.sandbox.compile import SANDBOX_HOME, TMP_TARGET
from vectraguard.sandbox.mounts import canonical_target

NODE_DENIED = (
    "/proc", "/sys", "/dev", "/boot", "/etc", "/root", "/home", "/run", "/var/run", "/var/lib/kubelet",
    "/var/lib/containerd", "/var/lib/containers", "/var/lib/docker", "/var/lib/crio", "/var/lib/etcd",
    "/var/lib/cni", "/var/log", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/cni",
    "/tmp", "/var/tmp",
)


def check(mounts: Sequence[MountEntry], policy: Policy | None, workspace_target: str | None) -> None:
    """PolicyError (exit 125) for the first mount that cannot be a hostPath volume."""
    covered = [TMP_TARGET, SANDBOX_HOME, *([workspace_target] if workspace_target else [])]
    targets: set[str] = set()
    for mount in mounts:
        where = f"vectraguard kube generate: {mount.origin}: mount {mount.source}:{mount.target}"
        source = mount.source
        if not source.startswith("/") or posixpath.normpath(source) != source or "//" in source:
            raise errors.PolicyError(f"{where}: a hostPath must be an absolute, normal path on the node "
                                     "(no '..', '.', '//' or trailing '/')")
        if source == "/" or any(_near(source, denied) for denied in NODE_DENIED):
            raise errors.PolicyError(f"{where}: {source} is, holds or lies in a place of the node's own "
                                     f"({', '.join(d for d in NODE_DENIED if _near(source, d)) or '/'}): "
                                     "never a hostPath")
        _check_policy(where, source, policy)
        target = canonical_target(mount.target, mount.origin)
        if any(_within(place, target) for place in covered):
            raise errors.PolicyError(f"{where}: the target would cover the sandbox's own {', '.join(covered)}")
        if target in targets:
            raise errors.PolicyError(f"{where}: a second mount at {target}")
        targets.add(target)


def _check_policy(where: str, source: str, policy: Policy | None) -> None:
    if policy is None:
        return
    roots = policy.get("filesystem.mount_roots")
    if roots is not None and not any(_within(source, root) for root in roots):
        raise errors.PolicyError(f"{where}: outside every mount root ({', '.join(roots)}); refused by "
                                 f"{policy.rule('filesystem.mount_roots')}")
    for denied in policy.get("filesystem.denied_paths") or ():
        if _near(source, denied):
            raise errors.PolicyError(f"{where}: {denied} may not be mounted; refused by "
                                     f"{policy.rule('filesystem.denied_paths')}")


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _near(path: str, place: str) -> bool:
    """`path` is `place`, lies in it, or holds it."""
    return _within(path, place) or _within(place, path)
