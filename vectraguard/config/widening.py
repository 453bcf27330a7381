"""What changed between two resolutions of a profile, and which changes widen it.

`vectraguard trust` compares each profile as the last trusted project file
resolved it with the profile as the new file resolves it (on a first trust:
as your own profiles resolve it without the project file), so that the
reader's eye goes to what gives a sandbox more: environment names passed in,
network mode or destinations, read-write or new mounts, a wider workspace,
loosened risk decisions or removed rules, protected paths removed, raised
limits, weaker isolation. Everything else that differs is listed as a plain
change. Values come from a repository: the caller escapes them before printing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vectraguard import units
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.records import record

# Wider is later in each order.
NETWORK_MODES = ("none", "allowlist", "full")
WORKSPACE_MODES = ("none", "ro", "overlay", "rw")
VERDICTS = ("deny", "ask", "allow")
ISOLATION = ("gvisor", "container", "lite")


@record
class Change:
    """One difference: the profile key, and a sentence saying what it is."""

    key: str
    text: str
    widens: bool


def compare(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes: list[Change] = []
    for check in _CHECKS:
        changes += check(old, new)
    return changes


def _ordered(key: str, order: tuple[str, ...], old: str, new: str) -> list[Change]:
    if old == new:
        return []
    widens = order.index(new) > order.index(old) if old in order and new in order else True
    return [Change(key, f"{key}: {old} -> {new}", widens)]


def _modes(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    return [*_ordered("network.mode", NETWORK_MODES, old.network_mode, new.network_mode),
            *_ordered("filesystem.workspace.mode", WORKSPACE_MODES, old.workspace_mode, new.workspace_mode),
            *_ordered("isolation", ISOLATION, old.isolation, new.isolation)]


def _added(key: str, what: str, old: Any, new: Any) -> list[Change]:
    added = [item for item in new if item not in old]
    removed = [item for item in old if item not in new]
    return ([Change(key, f"{key}: {what} added: {', '.join(map(str, added))}", True)] if added else []) + \
        ([Change(key, f"{key}: {what} removed: {', '.join(map(str, removed))}", False)] if removed else [])


def _env(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = _added("env.allow", "environment names passed in", old.env_allow, new.env_allow)
    changes += _added("env.set", "variables set", list(old.env_set), list(new.env_set))
    changed = [name for name in new.env_set if name in old.env_set and old.env_set[name] != new.env_set[name]]
    if changed:
        changes.append(Change("env.set", f"env.set: values changed: {', '.join(changed)}", False))
    return changes


def _network(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = _added("network.allow", "destinations", old.network_allow, new.network_allow)
    if new.network_trust_host_ca and not old.network_trust_host_ca:
        changes.append(Change("network.trust_host_ca", "network.trust_host_ca: false -> true", True))
    return changes


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
    for key, was, now in [("filesystem.git", old.git_writable, new.git_writable),
                          ("filesystem.noexec_tmpfs", not old.noexec_tmpfs, not new.noexec_tmpfs)]:
        if now and not was:
            changes.append(Change(key, f"{key}: loosened ({'writable' if key.endswith('git') else 'false'})", True))
    if new.seccomp != old.seccomp:
        changes.append(Change("security.seccomp", f"security.seccomp: {old.seccomp} -> {new.seccomp}", True))
    if new.user != old.user:
        changes.append(Change("security.user", f"security.user: {old.user} -> {new.user}", True))
    if old.output_passthrough != new.output_passthrough:
        changes.append(Change("output.passthrough", f"output.passthrough: {old.output_passthrough} -> "
                              f"{new.output_passthrough}", new.output_passthrough == "raw"))
    if old.image != new.image:
        changes.append(Change("image", f"image: {old.image} -> {new.image}", False))
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


_LIMITS: dict[str, Callable[[float], str]] = {
    "cpus": lambda v: f"{v:g}", "memory": lambda v: units.format_size(int(v)), "pids": lambda v: f"{v:g}",
    "nofile": lambda v: f"{v:g}", "timeout": units.format_duration,
    "workspace_writes": lambda v: units.format_size(int(v)),
}


def _limits(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    changes = []
    for name, show in _LIMITS.items():
        was, now = getattr(old.limits, name), getattr(new.limits, name)
        if was != now:
            changes.append(Change(f"limits.{name}", f"limits.{name}: {show(was)} -> {show(now)}", now > was))
    if old.limits.enforcement != new.limits.enforcement:
        changes.append(Change("limits.enforcement", f"limits.enforcement: {old.limits.enforcement} -> "
                              f"{new.limits.enforcement}", new.limits.enforcement == "best-effort"))
    for key, was_n, now_n in [("network.max_connections", old.network_max_connections, new.network_max_connections),
                              ("filesystem.tmp_size", old.tmp_size, new.tmp_size),
                              ("filesystem.home_size", old.home_size, new.home_size)]:
        if was_n != now_n:
            changes.append(Change(key, f"{key}: {was_n} -> {now_n}", now_n > was_n))
    return changes


def _risk(old: ResolvedProfile, new: ResolvedProfile) -> list[Change]:
    was: Mapping[str, Any] = (old.risk or {}).get("decisions") or {}
    now: Mapping[str, Any] = (new.risk or {}).get("decisions") or {}
    changes = []
    for key in sorted({*was, *now}):
        before, after = was.get(key), now.get(key)
        if before == after:
            continue
        if after is None:
            changes.append(Change(f"risk.decisions.{key}", f"risk.decisions.{key}: {before} -> (no longer set)",
                                  before != "allow"))
        elif before is None:
            changes.append(Change(f"risk.decisions.{key}", f"risk.decisions.{key}: (unset) -> {after}",
                                  after == "allow"))
        else:
            changes.extend(_ordered(f"risk.decisions.{key}", VERDICTS, str(before), str(after)))
    rules_before = [r.get("id") for r in (old.risk or {}).get("rules") or []]
    rules_after = [r.get("id") for r in (new.risk or {}).get("rules") or []]
    changes += [Change(c.key, c.text, not c.widens) for c in _added("risk.rules", "rules", rules_before, rules_after)]
    return changes


_CHECKS: tuple[Callable[[ResolvedProfile, ResolvedProfile], list[Change]], ...] = (
    _modes, _env, _network, _mounts, _filesystem, _limits, _risk)
