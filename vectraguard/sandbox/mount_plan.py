"""Which host paths one run mounts: the workspace, the profile's mounts, and
the read-only guards over sensitive workspace files — checked against the
built-in deny rules, the system policy and what the host can grant."""

from __future__ import annotations

import os

from vectraguard import errors, paths
from vectraguard.config import policy
from vectraguard.config.problems import Origin, raise_if_any
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.sandbox import mounts as mount_rules
from vectraguard.sandbox.request import RunRequest


def resolve_mounts(profile: ResolvedProfile, request: RunRequest, system_policy: policy.Policy | None, *,
                   rootless: bool) -> tuple[mount_rules.Mount, ...]:
    denied = mount_rules.denied_sources(mount_rules.real_home(), paths.own_state(), policy.denied_paths(system_policy),
                                        allowed_sockets=policy.allowed_sockets(system_policy))
    result: list[mount_rules.Mount] = []
    if profile.workspace_mode != "none":
        origin = profile.provenance.get("filesystem.workspace.mode", Origin("<profile>"))
        try:
            workspace = mount_rules.make_mount(request.workspace_source, profile.workspace_target,
                                               profile.workspace_mode, cwd=request.cwd,
                                               origin=Origin("working directory"), denied=denied)
        except errors.PolicyError as exc:
            exc.hint = f"cd into a project directory, or run with --workspace none (workspace set by {origin})"
            raise
        result.append(workspace)
    for entry in profile.mounts:
        result.append(mount_rules.make_mount(entry.source, entry.target, entry.mode,
                                             cwd=request.cwd, origin=entry.origin, denied=denied))
    targets = [m.target for m in result]
    for target in targets:
        if targets.count(target) > 1:
            raise errors.PolicyError(f"vectraguard: two mounts have the same target {target}")
    origins = [profile.provenance.get("filesystem.workspace.mode", Origin("working directory"))] * (
        profile.workspace_mode != "none") + [entry.origin for entry in profile.mounts]
    raise_if_any(policy.check_mount_roots(zip((m.source for m in result), origins), system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    if not rootless:
        _check_rootful_writable(result)
    if profile.workspace_mode == "rw":
        result += mount_rules.protected_mounts(result[0], git_writable=profile.git_writable)
    return tuple(result)


def _check_rootful_writable(sandbox_mounts: list[mount_rules.Mount]) -> None:
    """Rootful, every sandbox has a user namespace of its own, whose users own
    nothing on the host: a read-write mount would fail on the first write.
    Say so before anything starts."""
    for mount in sandbox_mounts:
        if mount.read_only or mount.overlay:  # an overlay's writes go to a layer Vectra Guard makes writable
            continue
        info = os.stat(mount.source)
        if not (info.st_mode & 0o002 and os.path.isdir(mount.source)):
            raise errors.PolicyError(
                f"vectraguard: cannot give a rootful sandbox write access to {mount.source} "
                f"(owned by uid {info.st_uid}): each sandbox has a user namespace of its own",
                hint="run vectraguard as a regular user (rootless: the sandbox then writes as you), "
                "or mount it read-only")
