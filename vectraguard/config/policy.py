"""The system policy: ceilings that no user, project or flag may exceed.

`/etc/vectraguard/policy.yaml` (the directory can be moved with
VECTRAGUARD_SYSTEM_DIR) is optional; when present it must be valid, or
nothing runs. Every resolved value is checked against it, wherever it was
set: a violation names the value's origin (the file and line, or the
command line, that asked) and the policy rule that forbids it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vectraguard import paths, units
from vectraguard.config.layers import Layer, load_file
from vectraguard.config.problems import Origin, Problem
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.records import record

FILE_NAME = "policy.yaml"


@record
class Policy:
    """The system policy file, validated."""

    layer: Layer

    def get(self, path: str) -> Any:
        node: Any = self.layer.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def rule(self, path: str) -> str:
        return f"policy rule {path} ({self.layer.origin(path)})"


def file_path() -> Path:
    """Where the system policy is (or would be): VECTRAGUARD_SYSTEM_DIR's, else /etc/vectraguard's
    policy.yaml. Messages name this, never a fixed path."""
    return paths.system_dir() / FILE_NAME


def load() -> Policy | None:
    path = file_path()
    if not path.exists():
        return None
    return Policy(load_file(path, "policy"))


def _violation(profile: ResolvedProfile, key: str, value: Any, message: str, rule: str) -> Problem:
    origin = profile.provenance.get(key, Origin("<built-in>"))
    return Problem(origin, key, f"{value!s} {message}; refused by {rule}")


def check_profile(profile: ResolvedProfile, policy: Policy | None) -> list[Problem]:
    if policy is None:
        return []
    problems: list[Problem] = []

    def member(key: str, value: Any, rule_path: str, what: str) -> None:
        allowed = policy.get(rule_path)
        if allowed is not None and value not in allowed:
            problems.append(_violation(profile, key, value, f"is not an allowed {what} ({', '.join(allowed)})",
                                       policy.rule(rule_path)))

    member("network.mode", profile.network_mode, "network.modes", "network mode")
    member("filesystem.workspace.mode", profile.workspace_mode, "filesystem.workspace_modes", "workspace mode")
    member("security.seccomp", profile.seccomp, "security.seccomp", "seccomp profile")
    member("limits.enforcement", profile.limits.enforcement, "security.limits_enforcement", "enforcement mode")
    patterns = policy.get("network.allow")
    if patterns is not None and profile.network_mode != "none":  # with no network the list is inert
        for entry in profile.network_allow:
            if not any(host_matches(entry, pattern) for pattern in patterns):
                problems.append(_violation(profile, "network.allow", entry, "is outside the allowed destinations",
                                           policy.rule("network.allow")))
    most = policy.get("network.max_connections")
    if most is not None and profile.network_max_connections > most:
        problems.append(_violation(profile, "network.max_connections", profile.network_max_connections,
                                   f"is above the maximum {most}", policy.rule("network.max_connections")))
    denied = policy.get("env.deny") or []
    for name in (*profile.env_allow, *profile.env_set):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in denied):
            key = "env.set" if name in profile.env_set else "env.allow"
            problems.append(_violation(profile, key, name, "is a variable the system never passes",
                                       policy.rule("env.deny")))
    problems += _check_limits(profile, policy)
    problems += _check_isolation(profile, policy)
    if profile.engine != "auto":  # auto is checked once it has chosen (runtime/engine.py)
        # The short form `engine: NAME` is provenanced at `engine`, the section at `engine.name`.
        member("engine.name" if "engine.name" in profile.provenance else "engine", profile.engine,
               "engine.allowed", "engine")
    if profile.engine_userns == "shared" and policy.get("engine.userns_shared") is False:
        problems.append(_violation(profile, "engine.userns", "shared", "is not allowed: the sandbox's uid would be "
                                   "the same uid on the host", policy.rule("engine.userns_shared")))
    return problems


def _check_isolation(profile: ResolvedProfile, policy: Policy) -> list[Problem]:
    """The level must be at least security.isolation_minimum, and at least the
    one security.isolation_minimum_for names for this profile (by the name the
    run asked for: a profile of another name, even one that extends it, is
    held to security.isolation_minimum only — say so to whoever writes both)."""
    from vectraguard.isolation.levels import at_least

    rules = [("security.isolation_minimum", policy.get("security.isolation_minimum"))]
    by_name = policy.get("security.isolation_minimum_for") or {}
    if profile.name in by_name:
        rules.append((f"security.isolation_minimum_for.{profile.name}", by_name[profile.name]))
    return [_violation(profile, "isolation", profile.isolation, f"is weaker than the minimum isolation {minimum}",
                       policy.rule(path))
            for path, minimum in rules if minimum is not None and not at_least(profile.isolation, minimum)]


_LIMITS: dict[str, tuple[Callable[[Any], float], Callable[[ResolvedProfile], float]]] = {
    "cpus": (units.parse_cpus, lambda p: p.limits.cpus),
    "memory": (units.parse_size, lambda p: p.limits.memory),
    "pids": (lambda v: units.parse_count(v, what="processes"), lambda p: p.limits.pids),
    "nofile": (lambda v: units.parse_count(v, what="open files"), lambda p: p.limits.nofile),
    "timeout": (units.parse_duration, lambda p: p.limits.timeout),
}


def _check_limits(profile: ResolvedProfile, policy: Policy) -> list[Problem]:
    problems = []
    for name, (parse, actual) in _LIMITS.items():
        ceiling = policy.get(f"limits.max.{name}")
        if ceiling is None:
            continue
        try:
            maximum = parse(ceiling)
        except ValueError as exc:
            problems.append(Problem(policy.layer.origin(f"limits.max.{name}"), f"limits.max.{name}", str(exc)))
            continue
        if actual(profile) > maximum:
            problems.append(_violation(profile, f"limits.{name}", _shown(profile, name),
                                       f"is above the maximum {ceiling}", policy.rule(f"limits.max.{name}")))
    return problems


def _shown(profile: ResolvedProfile, name: str) -> str:
    value = getattr(profile.limits, name)
    if name == "memory":
        return units.format_size(value)
    return units.format_duration(value) if name == "timeout" else f"{value:g}"


def host_matches(entry: str, pattern: str) -> bool:
    """host[:port] against a pattern; `*.example.com` matches true subdomains only."""
    host, _, port = entry.lower().rstrip(".").partition(":")
    want_host, _, want_port = pattern.lower().rstrip(".").partition(":")
    if want_port and port != want_port:
        return False
    if want_host.startswith("*."):
        return host.endswith(want_host[1:]) and host != want_host[2:]
    return host == want_host


def mount_roots(policy: Policy | None) -> tuple[str, ...] | None:
    roots = policy.get("filesystem.mount_roots") if policy else None
    # Compared with mount sources, which are real paths: resolve these too.
    return tuple(os.path.realpath(root) for root in roots) if roots is not None else None


def denied_paths(policy: Policy | None) -> tuple[str, ...]:
    return tuple(os.path.realpath(p) for p in policy.get("filesystem.denied_paths") or []) if policy else ()


def allowed_sockets(policy: Policy | None) -> tuple[str, ...]:
    """filesystem.allowed_sockets: the sockets (absolute paths; a component
    may be a shell pattern, `*` never crossing a `/`) a mount that names one
    itself may expose. Without the key, none: every socket is refused."""
    return tuple(os.path.normpath(p) for p in policy.get("filesystem.allowed_sockets") or []) if policy else ()


def check_mount_roots(sources: Iterable[tuple[str, Origin]], policy: Policy | None) -> list[Problem]:
    roots = mount_roots(policy)
    if roots is None or policy is None:
        return []
    problems = []
    for source, origin in sources:
        if not any(source == root or source.startswith(root.rstrip("/") + "/") for root in roots):
            problems.append(Problem(origin, "filesystem.mounts",
                                    f"{source} is outside the allowed mount roots ({', '.join(roots)}); "
                                    f"refused by {policy.rule('filesystem.mount_roots')}"))
    return problems
