"""Checks of the caller and the kernel: who runs Podman, cgroups, rlimits, ids."""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Sequence
from pathlib import Path

from vectraguard.doctor.context import DEFAULT_PROFILE, Context
from vectraguard.doctor.finding import Finding, fail, ok, warn
from vectraguard.images import recipe

SUBUID, SUBGID = Path("/etc/subuid"), Path("/etc/subgid")
TUN = Path("/dev/net/tun")
ROOTFUL_SUBID_OWNER = "containers"  # whom Podman's --userns=auto takes ranges from
MIN_AUTO_RANGE = 65536  # userns=auto hands out ranges of this size
CGROUP_MODES = {"v2": "v2 (unified)", "hybrid": "hybrid (v1 controllers, v2 mount)", "v1": "v1"}


def mode(ctx: Context) -> Finding:
    if ctx.facts.rootless:
        return ok("mode", f"rootless (uid {ctx.facts.uid}, user {_user_name(ctx.facts.uid)})")
    return ok("mode", "rootful: each sandbox gets a user namespace of its own")


def cgroups(ctx: Context) -> Finding:
    return ok("cgroups", CGROUP_MODES.get(ctx.facts.cgroup_mode, ctx.facts.cgroup_mode))


def profiles(ctx: Context, refused: Sequence[str] = ()) -> Finding:
    """Whether every profile resolves; `refused`: the names the system policy refuses (policy_checks,
    each on a line of its own below): then this line says so too, rather than "ok" above them."""
    # A broken `default` breaks every profile built on it: name it, not the first dependant.
    for name, exc in sorted(ctx.profile_errors.items(), key=lambda item: item[0] != DEFAULT_PROFILE):
        # The first located detail (file:line key: problem) says more than the summary line.
        detail = exc.details[0].strip() if exc.details else _strip(exc.message)
        return fail("profiles", f"profile {name}: {detail}", exc.hint or "fix or remove the file named here")
    resolved = f"{len(ctx.profiles)} resolve: {', '.join(sorted(ctx.profiles))}"
    if refused:
        return warn("profiles", f"{resolved}; the system policy refuses {len(refused)}: {', '.join(refused)}",
                    "see the `policy: profile NAME` lines below: runs of those profiles are refused")
    return ok("profiles", resolved)


def rlimits(ctx: Context) -> Finding:
    nofile_hard, nproc_hard = ctx.facts.nofile_hard, ctx.facts.nproc_hard
    detail = f"hard nofile {_limit(nofile_hard)}, nproc {_limit(nproc_hard)}"
    profile = ctx.default_profile
    if profile is None:
        return ok("rlimits", detail)
    nofile, nproc = _capped(profile.limits.nofile, nofile_hard), _capped(profile.limits.pids, nproc_hard)
    detail += f"; sandboxes of profile {DEFAULT_PROFILE} get nofile {nofile}, nproc {nproc}"
    if (nofile, nproc) != (profile.limits.nofile, profile.limits.pids):
        return warn("rlimits", detail + " (capped at the hard limits)",
                    "raise the hard limits (limits.conf, systemd LimitNOFILE=/LimitNPROC=) if sandboxed programs need more")
    return ok("rlimits", detail)


def resource_limits(ctx: Context) -> Finding:
    check = "cpu/memory/pids limits"
    if ctx.facts.limits_enforced:
        return ok(check, "enforced by the container engine for this caller")
    strict = sorted(name for name, p in ctx.profiles.items() if p.limits.enforcement == "strict")
    hint = ("run as root, or use cgroups v2 with the cpu, memory and pids controllers delegated, "
            "or use a profile with `limits.enforcement: best-effort`")
    if strict:
        return fail(check, f"not enforceable: {ctx.facts.why_not_enforced}; "
                    f"these profiles require them and will refuse to run: {', '.join(strict)}", hint)
    return warn(check, f"not enforceable: {ctx.facts.why_not_enforced}; every profile is best-effort", hint)


def init(ctx: Context) -> Finding:
    if ctx.facts.init_path:
        return ok("init", f"tini-static at {ctx.facts.init_path}")
    return warn("init", "tini-static not found: Podman's catatonit is used, which reports a command "
                "that is not found or not executable as exit status 1 (not 127/126)", "apt-get install tini")


def entry(ctx: Context) -> Finding:
    if ctx.facts.entry_path:
        return ok("entry program", f"vectraguard-entry at {ctx.facts.entry_path}: sandboxes can be pooled")
    return warn("entry program", "vectraguard-entry is not installed: runs give Podman the command directly, and "
                "no sandbox can be pooled (`pool`, `vectraguard pool start`)", "run contrib/install.sh, which builds it")


def subordinate_ids(ctx: Context) -> Finding:
    check = "subordinate ids"
    if not ctx.facts.rootless:
        uids, gids = _subid_count(SUBUID, {ROOTFUL_SUBID_OWNER}), _subid_count(SUBGID, {ROOTFUL_SUBID_OWNER})
        if min(uids, gids) >= MIN_AUTO_RANGE:
            return ok(check, f"{ROOTFUL_SUBID_OWNER}: {uids} uids, {gids} gids for per-sandbox user namespaces")
        return fail(check, f"no '{ROOTFUL_SUBID_OWNER}' range (of {MIN_AUTO_RANGE}+ ids) in {SUBUID} and {SUBGID}: "
                    "per-sandbox user namespaces (userns=auto) cannot be made",
                    f"run contrib/install.sh, or add `{ROOTFUL_SUBID_OWNER}:2147483647:2147483648` to both files")
    name = _user_name(ctx.facts.uid)
    owners = {name, str(ctx.facts.uid)}
    uids, gids = _subid_count(SUBUID, owners), _subid_count(SUBGID, owners)
    if min(uids, gids) > recipe.SANDBOX_UID:
        return ok(check, f"{name}: {uids} uids, {gids} gids")
    return fail(check, f"{name} has {uids} subordinate uids and {gids} gids: the sandbox user "
                f"(uid {recipe.SANDBOX_UID}) cannot be mapped",
                f"as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}")


def net_tun(ctx: Context) -> Finding | None:
    """Rootless only: slirp4netns needs /dev/net/tun for the `full` network mode."""
    if not ctx.facts.rootless:
        return None
    check = str(TUN)
    try:
        mode_bits = stat.S_IMODE(TUN.stat().st_mode)
    except OSError:
        return warn(check, "missing: rootless `full` network cannot work", "load the tun module: modprobe tun")
    if os.access(TUN, os.R_OK | os.W_OK):
        return ok(check, f"mode {mode_bits:04o}, usable by {_user_name(ctx.facts.uid)}")
    return warn(check, f"mode {mode_bits:04o}: not usable by {_user_name(ctx.facts.uid)}, "
                "so slirp4netns cannot give a rootless sandbox the `full` network",
                f"as root: chmod 666 {TUN} (only needed for network mode full)")


def _subid_count(path: Path, owners: set[str]) -> int:
    total = 0
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in owners and parts[2].isdigit():
            total += int(parts[2])
    return total


def _capped(wanted: int, hard: int) -> int:
    # The same rule as compile: never ask for more than the hard limit (EPERM).
    return wanted if hard < 0 else min(wanted, hard)


def _limit(value: int) -> str:
    return "unlimited" if value < 0 else str(value)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _strip(message: str) -> str:
    return message.removeprefix("vectraguard: ")


def overlay_workspace(ctx: Context) -> Finding:
    """What `filesystem.workspace.mode: overlay` needs (workspace/layer.py)."""
    from vectraguard.workspace.layer import missing_support

    missing = missing_support(ctx.facts.rootless)
    users = sorted(name for name, p in ctx.profiles.items() if p.workspace_mode == "overlay")
    if missing:
        return warn("overlay workspace", f"unavailable: {missing}; profiles that use it are refused: "
                    f"{', '.join(users) or 'none'}", "use a newer kernel, or --workspace ro|rw")
    how = "kernel overlayfs in the rootless user namespace" if ctx.facts.rootless else \
        "kernel overlayfs over an id-mapped bind of the workspace"
    return ok("overlay workspace", f"{how}; layers capped by limits.workspace_writes (tmpfs)")
