"""Numeric ceilings of the system policy applied to values nobody chose.

A value of a resolved profile above a policy maximum (`limits.max.*`,
`network.max_connections`) is one of two things, and its provenance says
which (ResolvedProfile.provenance, kept by config/merge.py):

- a shipped default (set by a file under the package's `profiles/`, a
  shipped fragment included, or by no file at all): nobody asked for it, so
  it is *lowered* to the ceiling and the run says so in one notice line
  (each key, its value, the ceiling, the policy file and line). An administrator's
  `limits.max.memory: 1Gi` must not make every run of the shipped profiles
  fail;
- a value someone set (an /etc or user profile, a trusted project file, a
  flag): left as it is, and config/policy.check_profile refuses the run
  naming that file, as it always has.

Only maxima are lowered: a mode or a destination outside the policy's lists
has no "nearest allowed" value, so it is refused whoever set it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vectraguard import records, resources, units
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.records import record

BUILT_IN = "<built-in>"  # the origin resolved.py gives a value no layer set


@record
class Lowered:
    """One shipped default lowered to a ceiling, as the notice states it."""

    key: str  # profile key, e.g. "limits.memory"
    value: str  # the shipped value, in profile-file units (e.g. "2Gi")
    ceiling: str  # the policy's maximum, as written in the policy file
    rule: str  # where the ceiling is: "/etc/vectraguard/policy.yaml:7"


def notice(lowered: tuple[Lowered, ...]) -> str:
    """The one line a run prints about what it lowered ("" if nothing)."""
    if not lowered:
        return ""
    each = "; ".join(f"{item.key} {item.value} -> {item.ceiling} ({item.rule})" for item in lowered)
    return f"vectraguard: notice: shipped defaults above the system policy's ceilings were lowered: {each}"


# policy path -> (profile key, parse the ceiling, read the profile's value, set it, show a value)
_Ceiling = tuple[str, Callable[[Any], float], Callable[[ResolvedProfile], float],
                 Callable[[ResolvedProfile, float], ResolvedProfile], Callable[[float], str]]


def _limit(name: str, parse: Callable[[Any], float], show: Callable[[float], str],
           cast: Callable[[float], Any] = float) -> _Ceiling:
    return (f"limits.{name}", parse, lambda p: float(getattr(p.limits, name)),
            lambda p, v: records.replace(p, limits=records.replace(p.limits, **{name: cast(v)})), show)


CEILINGS: dict[str, _Ceiling] = {
    "limits.max.cpus": _limit("cpus", units.parse_cpus, lambda v: f"{v:g}"),
    "limits.max.memory": _limit("memory", units.parse_size, lambda v: units.format_size(int(v)), int),
    "limits.max.pids": _limit("pids", lambda v: units.parse_count(v, what="processes"), lambda v: f"{v:g}", int),
    "limits.max.nofile": _limit("nofile", lambda v: units.parse_count(v, what="open files"), lambda v: f"{v:g}", int),
    "limits.max.timeout": _limit("timeout", units.parse_duration, units.format_duration),
    "network.max_connections": ("network.max_connections", int, lambda p: float(p.network_max_connections),
                                lambda p, v: records.replace(p, network_max_connections=int(v)), lambda v: f"{v:g}"),
}


def shipped(origin: Origin) -> bool:
    """Did this value come from a shipped file (profiles/, fragments included) or from no file?"""
    if origin.source == BUILT_IN:
        return True
    return origin.source.startswith(str(resources.profiles_dir()).rstrip("/") + "/")


def lower_shipped(profile: ResolvedProfile, policy: Any) -> tuple[ResolvedProfile, tuple[Lowered, ...]]:
    """`profile` with every shipped default above a ceiling of `policy`
    (a config.policy.Policy, or None) lowered to it, and what was lowered.
    A ceiling that does not parse lowers nothing: check_profile reports it,
    located, and refuses the run."""
    if policy is None:
        return profile, ()
    lowered = []
    for rule_path, (key, parse, read, write, show) in CEILINGS.items():
        written = policy.get(rule_path)
        if written is None or not shipped(profile.provenance.get(key, Origin(BUILT_IN))):
            continue
        try:
            ceiling = parse(written)
        except (ValueError, TypeError):
            continue
        value = read(profile)
        if value > ceiling:
            lowered.append(Lowered(key, show(value), str(written), str(policy.layer.origin(rule_path))))
            # "Set by" the policy now (`profile show --explain`, the approvals' key).
            profile = records.replace(write(profile, ceiling),
                                      provenance={**profile.provenance, key: policy.layer.origin(rule_path)})
    return profile, tuple(lowered)
