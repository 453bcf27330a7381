"""Which host paths one run mounts: the workspace, the profile's mounts, and
the read-only guards over sensitive workspace files — checked against the
built-in deny rules, the system policy and what the host can grant."""

from __future__ import annotations

import os
import stat

from vectraguard import errors, paths
from vectraguard.config import policy
from vectraguard.config.problems import Origin, raise_if_any
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.network import host_ca
from vectraguard.sandbox import held
from vectraguard.sandbox.compile import SANDBOX_HOME, TMP_TARGET
from vectraguard.sandbox import mounts as mount_rules
from vectraguard.sandbox.request import RunRequest


def resolve_mounts(profile: ResolvedProfile, request: RunRequest,
                   system_policy: policy.Policy | None) -> tuple[mount_rules.Mount, ...]:
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
    origins = [profile.provenance.get("filesystem.workspace.mode", Origin("working directory"))] * (
        profile.workspace_mode != "none") + [entry.origin for entry in profile.mounts]
    if host_ca.wanted(profile.network_mode, profile.network_trust_host_ca):
        origin = profile.provenance.get("network.trust_host_ca", Origin("<profile>"))
        bundle = host_ca.find_bundle(dict(request.host_env))
        result.append(mount_rules.make_mount(bundle, host_ca.HOST_CA_TARGET, "ro", cwd=request.cwd,
                                             origin=origin, denied=denied))
        origins.append(origin)
    targets = [m.target for m in result]
    for target in targets:
        if targets.count(target) > 1:
            raise errors.PolicyError(f"vectraguard: two mounts have the same target {target}")
    _check_targets_apart(targets, origins)
    raise_if_any(policy.check_mount_roots(zip((m.source for m in result), origins), system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    # Every read-write bind, not only the workspace: a checkout mounted with
    # --mount ...:rw has hooks the host's git runs too.
    for mount in list(result):
        result += mount_rules.protected_mounts(mount, git_writable=profile.git_writable)
    return tuple(result)


def _check_targets_apart(targets: list[str], origins: list[Origin]) -> None:
    """No target inside another, none at or above the sandbox's own /tmp and
    home: the runtime would create the inner mount point inside the outer
    source (on the host, or failing on a read-only one) or shadow its own."""
    for target, origin in zip(targets, origins):
        for reserved in (TMP_TARGET, SANDBOX_HOME):
            if reserved == target or reserved.startswith(target.rstrip("/") + "/"):
                raise errors.PolicyError(f"vectraguard: {origin}: mount target {target} would cover the sandbox's "
                                         f"own {reserved}", hint="choose another target, such as /mnt/NAME")
        for other in targets:
            if other != target and other.startswith(target.rstrip("/") + "/"):
                raise errors.PolicyError(f"vectraguard: {origin}: mount target {target} contains another mount's "
                                         f"target {other}", hint="give each mount a target of its own, side by side")


def hold_mounts(sandbox_mounts: tuple[mount_rules.Mount, ...], *, keep_id: bool, rootless: bool,
                workspace_first: bool) -> tuple[held.Held, ...]:
    """Open every bind source and keep it open (vectraguard/sandbox/held.py),
    then check, through the descriptor, what the sandbox user can do with it
    and that no other filesystem is mounted below it. `workspace_first`: the
    first mount is the working directory (for the messages). One Held per mount, in order."""
    table: list[held.MountEntry] | None = None
    sources = []
    for index, mount in enumerate(sandbox_mounts):
        label = "working directory" if workspace_first and index == 0 else f"the mount at {mount.target}"
        source = held.hold(mount.source, label)
        _check_sandbox_access(source, mount, label, keep_id=keep_id, rootless=rootless)
        if not mount.overlay:  # an overlay's lower layer never shows what is mounted below it
            if table is None:
                table = _host_mounts()
            _check_no_submounts(source, table, label)
        sources.append(source)
    return tuple(sources)


def expectations(sandbox_mounts: tuple[mount_rules.Mount, ...],
                 sources: tuple[held.Held, ...]) -> tuple[held.Expected, ...]:
    """What the sandbox must have at each target (held.verify). An overlay
    workspace shows the overlay Vectra Guard mounted from the held directory
    (checked then), not the directory itself."""
    return tuple(held.Expected(m.target, None if m.overlay else source, m.read_only)
                 for m, source in zip(sandbox_mounts, sources))


def _host_mounts() -> list[held.MountEntry]:
    try:
        with open("/proc/self/mountinfo") as listing:
            return held.parse_mountinfo(listing.read())
    except OSError as exc:
        raise errors.PolicyError(f"vectraguard: cannot read /proc/self/mountinfo: {exc.strerror}") from None


def _check_no_submounts(source: held.Held, table: list[held.MountEntry], label: str) -> None:
    """A bind is not recursive (a read-only mount must not carry a writable
    filesystem mounted below it into the sandbox), and the kernel refuses a
    non-recursive bind that would uncover what a filesystem mounted below
    hides, inside a user namespace: say so before anything starts."""
    if not source.is_dir:
        return
    below = sorted(entry.mount_point for entry in table
                   if entry.mount_point.startswith(source.path.rstrip("/") + "/"))
    if below:
        raise errors.PolicyError(
            f"vectraguard: {label}: {source.path} has another filesystem mounted below it, at {below[0]}"
            + (f" (and {len(below) - 1} more)" if len(below) > 1 else ""),
            hint="a sandbox gets one filesystem per mount, never what is mounted inside it: "
                 f"mount {below[0]} separately with --mount, or run from a directory without mounts below it")


def _check_sandbox_access(source: held.Held, mount: mount_rules.Mount, label: str, *, keep_id: bool,
                          rootless: bool) -> None:
    """Whether the sandbox user may read (and, read-write, write) the source's
    top level, by its mode bits: rootless with keep-id it is the caller; a
    rootful overlay's lower layer shows the owner's files as the sandbox
    user's; otherwise it is a user of the sandbox's own, for whom only the
    "other" bits apply. Runc would otherwise fail late ("chdir to cwd ...
    permission denied"). ACLs are not read: a directory opened to the sandbox
    by an ACL alone is refused."""
    if keep_id or (mount.overlay and not rootless):
        who, shift = ("you (the sandbox runs as you)", 6) if source.uid == os.geteuid() else (
            ("your group", 3) if source.gid == os.getegid() else ("a user other than its owner", 0))
    else:
        who, shift = ("a user of the sandbox's own, not its owner", 0)
    need = (stat.S_IROTH | (stat.S_IXOTH if source.is_dir else 0)
            | (stat.S_IWOTH if not mount.read_only and not mount.overlay else 0))
    if (source.mode >> shift) & need == need:
        return
    if not rootless and need & stat.S_IWOTH:
        # Rootful, each sandbox's users own nothing on the host: a read-write
        # mount would fail on the first write.
        raise errors.PolicyError(
            f"vectraguard: cannot give a rootful sandbox write access to {source.path} "
            f"(owned by uid {source.uid}): each sandbox has a user namespace of its own",
            hint="run vectraguard as a regular user (rootless: the sandbox then writes as you), "
            "or mount it read-only")
    bits = "r" + ("x" if source.is_dir else "") + ("w" if need & stat.S_IWOTH else "")
    what = "directory" if source.is_dir else "file"
    raise errors.PolicyError(
        f"vectraguard: {label}: the sandbox cannot {'use' if need & stat.S_IWOTH else 'read'} {source.path} "
        f"({what} owned by uid {source.uid}, mode {stat.S_IMODE(source.mode):04o}): inside, it is {who}",
        hint=f"give others access (chmod o+{bits} {source.path}), or run from a {what} they can read"
             + ("; rootless, a read-write or overlay workspace runs the sandbox as you" if rootless else ""))
