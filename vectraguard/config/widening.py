"""What changed between two resolutions of a profile, and which changes widen it.

`vectraguard trust` compares each profile as the last trusted project file
resolved it with the profile as the new file resolves it (on a first trust:
as your own profiles resolve it without the project file), so that the
reader's eye goes to what gives a sandbox more: environment names passed in
or variables set, network mode, destinations or published ports, read-write
or new mounts, a wider workspace, loosened risk decisions or changed rules
(config/risk_changes.py), protected paths removed, raised limits, weaker
isolation, another agent command.

Fail-safe: every field of ResolvedProfile is compared. FIELDS names the
check that knows each one (and NEUTRAL the few that give a sandbox
nothing); a field named nowhere — one added to the profile later — is
still compared, and any change to it is shown as widening until someone
classifies it here. Each check likewise marks a change as widening unless
it is known to narrow. Values come from a repository: the caller escapes
them before printing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from vectraguard import units
from vectraguard.config import upstream
from vectraguard.config.resolved import Agent, Limits, ResolvedProfile
from vectraguard.records import record

# Wider is later in each order.
NETWORK_MODES = ("none", "allowlist", "full")
WORKSPACE_MODES = ("none", "ro", "overlay", "rw")
ISOLATION = ("gvisor", "container", "lite")


@record
class Change:
    """One difference: the profile key, and a sentence saying what it is."""

    key: str
    text: str
    widens: bool


Check = Callable[[ResolvedProfile, ResolvedProfile], list["Change"]]


def compare(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes: list[Change] = []
    for check in dict.fromkeys(FIELDS.values()):
        changes += check(old, new)
    for field in _fields(ResolvedProfile):
        if field not in FIELDS and field not in NEUTRAL:
            changes += _unclassified(field, getattr(old, field), getattr(new, field))
    return changes


def _fields(cls: type) -> tuple[str, ...]:
    names: tuple[str, ...] = cls.__record_fields__  # type: ignore[attr-defined]  # set by @record
    return names


def _unclassified(field: str, old: Any, new: Any) -> list[Change]:
    """A field no check knows: any change widens (its key is the field's name)."""
    if old == new:
        return []
    return [Change(field, f"{field}: {_shown(old)} -> {_shown(new)}", True)]


def _shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(none)"  # a first trust's `image_base:  -> localhost/...` read as a typo
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True, default=str)
    return str(value)


def _ordered(key: str, order: tuple[str, ...], old: str, new: str) -> list[Change]:
    if old == new:
        return []
    widens = order.index(new) > order.index(old) if old in order and new in order else True
    return [Change(key, f"{key}: {_shown(old)} -> {_shown(new)}", widens)]


def _modes(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    return [*_ordered("network.mode", NETWORK_MODES, old.network_mode, new.network_mode),
            *_ordered("filesystem.workspace.mode", WORKSPACE_MODES, old.workspace_mode, new.workspace_mode),
            *_ordered("isolation", ISOLATION, old.isolation, new.isolation)]


def _workspace_target(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    # Where the tree appears decides what it hides or overlays in the image: not narrowing.
    return _unclassified("filesystem.workspace.target", old.workspace_target, new.workspace_target)


def _added(key: str, what: str, old: Any, new: Any, *, removal_widens: bool = False) -> list[Change]:
    added = [item for item in new if item not in old]
    removed = [item for item in old if item not in new]
    return ([Change(key, f"{key}: {what} added: {', '.join(map(str, added))}", True)] if added else []) + \
        ([Change(key, f"{key}: {what} removed: {', '.join(map(str, removed))}", removal_widens)] if removed else [])


def _env(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = _added("env.allow", "environment names passed in", old.env_allow, new.env_allow)
    # A variable set can change what a program trusts or loads (a proxy, a registry,
    # NODE_OPTIONS); unsetting one may drop a safeguard: no change here is known to narrow.
    changes += _added("env.set", "variables set", list(old.env_set), list(new.env_set), removal_widens=True)
    changed = [name for name in new.env_set if name in old.env_set and old.env_set[name] != new.env_set[name]]
    if changed:
        changes.append(Change("env.set", f"env.set: values changed: {', '.join(changed)}", True))
    return changes


def _network(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = _added("network.allow", "destinations", old.network_allow, new.network_allow)
    changes += _added("network.publish", "ports published on the host", old.network_publish, new.network_publish)
    changes += _flag("network.trust_host_ca", old.network_trust_host_ca, new.network_trust_host_ca, "false", "true")
    # Host-only keys (a project file may not set them: config/project.py), compared all the same.
    changes += _unclassified("network.upstream_proxy", upstream.redact(old.network_upstream_proxy),
                             upstream.redact(new.network_upstream_proxy))
    changes += _unclassified("network.no_proxy", old.network_no_proxy, new.network_no_proxy)
    changes += _unclassified("network.hosts_file", old.network_hosts_file, new.network_hosts_file)
    return changes


def _flag(key: str, was_loose: bool, now_loose: bool, tight: str, loose: str) -> list[Change]:
    """A boolean setting: loosened widens, tightened is listed."""
    if was_loose == now_loose:
        return []
    return [Change(key, f"{key}: {loose if was_loose else tight} -> {loose if now_loose else tight}", now_loose)]


def _mounts(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    before = {m.target: m for m in old.mounts}
    changes = []
    for mount in new.mounts:
        was = before.get(mount.target)
        if was is None:
            changes.append(Change("filesystem.mounts", f"filesystem.mounts: new {mount.mode} mount "
                                  f"{mount.source} -> {mount.target}", True))
        elif (was.source, was.mode) != (mount.source, mount.mode):
            changes.append(Change("filesystem.mounts", f"filesystem.mounts: {mount.target} was {was.source} "
                                  f"({was.mode}), now {mount.source} ({mount.mode})",
                                  mount.mode == "rw" or was.source != mount.source))
    gone = [target for target in before if target not in {m.target for m in new.mounts}]
    if gone:
        changes.append(Change("filesystem.mounts", f"filesystem.mounts: removed {', '.join(gone)}", False))
    return changes


def _filesystem(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = _protected(old.protected, new.protected)
    changes += _flag("filesystem.git", old.git_writable, new.git_writable, "read-only", "writable")
    changes += _flag("filesystem.noexec_tmpfs", not old.noexec_tmpfs, not new.noexec_tmpfs, "true", "false")
    if new.seccomp != old.seccomp:
        changes.append(Change("security.seccomp", f"security.seccomp: {_shown(old.seccomp)} -> {_shown(new.seccomp)}", True))
    if new.user != old.user:
        changes.append(Change("security.user", f"security.user: {_shown(old.user)} -> {_shown(new.user)}", True))
    if old.output_passthrough != new.output_passthrough:
        changes.append(Change("output.passthrough", f"output.passthrough: {old.output_passthrough} -> "
                              f"{new.output_passthrough}", new.output_passthrough != "filtered"))
    if old.image != new.image:
        # Other code in the sandbox (tools an attack needs, packages whose install scripts
        # `image build` runs as root: image.packages): the user should see it as such.
        changes.append(Change("image", f"image: {_shown(old.image)} -> {_shown(new.image)}", True))
    return changes


def _protected(old: tuple[str, ...], new: tuple[str, ...]) -> list[Change]:
    """A protected path removed widens, as does an exception (`!PATH`) added; the reverse narrows."""
    key = "filesystem.protected"
    removed = [p for p in old if p not in new]
    added = [p for p in new if p not in old]
    changes = []
    for entries, verb in ((removed, "removed"), (added, "added")):
        for exception in (False, True):
            chosen = [p for p in entries if p.startswith("!") == exception]
            if chosen:
                widens = (verb == "removed") != exception
                what = "exceptions" if exception else "protected paths"
                changes.append(Change(key, f"{key}: {what} {verb}: {', '.join(chosen)}", widens))
    return changes


# Limits where more is wider, with how each is shown; a Limits field not named
# here (nor `enforcement`) widens on any change.
_LIMITS: dict[str, Callable[[Any], str]] = {
    "cpus": lambda v: f"{v:g}", "memory": lambda v: units.format_size(int(v)), "pids": lambda v: f"{v:g}",
    "nofile": lambda v: f"{v:g}", "timeout": units.format_duration, "kill_grace": units.format_duration,
    "workspace_writes": lambda v: units.format_size(int(v)),
}


def _limits(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = []
    for name in _fields(Limits):
        was, now = getattr(old.limits, name), getattr(new.limits, name)
        if name == "enforcement":
            changes += _ordered("limits.enforcement", ("strict", "best-effort"), str(was), str(now))
        elif name in _LIMITS:
            changes += _raised(f"limits.{name}", was, now, _LIMITS[name])
        else:
            changes += _unclassified(f"limits.{name}", was, now)
    sizes: list[tuple[str, Any, Any, Callable[[Any], str]]] = [
            ("network.max_connections", old.network_max_connections, new.network_max_connections, str),
            ("filesystem.tmp_size", old.tmp_size, new.tmp_size, units.format_size),
            ("filesystem.home_size", old.home_size, new.home_size, units.format_size),
            # Sandboxes kept ready: more of them, or kept longer, hold more of the host.
            ("pool", old.pool, new.pool, str),
            ("pool_idle", old.pool_idle, new.pool_idle, units.format_duration)]
    for key, was_n, now_n, show in sizes:
        changes += _raised(key, was_n, now_n, show)
    return changes


def _raised(key: str, was: Any, now: Any, show: Callable[[Any], str]) -> list[Change]:
    if was == now:
        return []
    return [Change(key, f"{key}: {show(was)} -> {show(now)}", now > was)]


def _agent(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    """What an agent profile starts, and with what: any change widens."""
    if old.agent == new.agent:
        return []
    if old.agent is None or new.agent is None:
        return [Change("agent", f"agent: {_agent_shown(old.agent)} -> {_agent_shown(new.agent)}", True)]
    return [change for field in _fields(Agent)
            for change in _unclassified(f"agent.{field}", getattr(old.agent, field), getattr(new.agent, field))]


def _agent_shown(agent: Agent | None) -> str:
    return "(none)" if agent is None else f"command {' '.join(agent.command)}"


def _risk(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    from vectraguard.config import risk_changes  # it imports Change from here

    return risk_changes.compare(old.risk, new.risk)


# Fields that give a sandbox nothing: what the profile is called and described as, and
# where each value came from.
NEUTRAL = frozenset({"name", "description", "provenance"})

# Every other field of ResolvedProfile -> the check that compares it.
FIELDS: dict[str, Check] = {
    "network_mode": _modes, "workspace_mode": _modes, "isolation": _modes,
    "workspace_target": _workspace_target,
    "env_allow": _env, "env_set": _env,
    "network_allow": _network, "network_publish": _network, "network_trust_host_ca": _network,
    "network_upstream_proxy": _network, "network_no_proxy": _network, "network_hosts_file": _network,
    "mounts": _mounts,
    "protected": _filesystem, "git_writable": _filesystem, "noexec_tmpfs": _filesystem,
    "seccomp": _filesystem, "user": _filesystem, "output_passthrough": _filesystem, "image": _filesystem,
    "limits": _limits, "network_max_connections": _limits, "tmp_size": _limits, "home_size": _limits,
    "pool": _limits, "pool_idle": _limits,
    "agent": _agent,
    "risk": _risk,
}
