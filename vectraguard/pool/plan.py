"""Whether a run may use the pool, and where it looks in it.

A run may use the pool when it is asked for — the profile's `pool: N`, or
`vectraguard pool start` for this profile and directory — the entry program
is installed (vectraguard-entry: the command is handed over at the start),
and nothing about the sandbox is made for this run alone: no terminal
(fixed when a container is created), and no `overlay` workspace (its layer
is mounted for one session). An `rw` workspace is pooled: its mount is the
real directory (checked again when the container is claimed), and what it
records before the run is taken when the run starts. Otherwise it runs
cold, as it would without a pool.
"""

from __future__ import annotations

from collections.abc import Iterable

from vectraguard.pool import store
from vectraguard.pool.key import pool_key, slot
from vectraguard.records import record
from vectraguard.sandbox.held import Expected
from vectraguard.sandbox.spec import ContainerSpec


@record
class Plan:
    """Where a run looks in the pool, and how many it keeps there."""

    profile: str
    cwd: str
    slot: str
    key: str
    size: int
    idle: float  # seconds
    profile_pool: int = 0  # the profile's own `pool` (the rest of `size` came from `pool start`)


def why_not(spec: ContainerSpec, workspace_mode: str) -> str | None:
    """Why a run like this cannot be pooled, or None when it can."""
    if spec.entry_path is None:
        return "vectraguard-entry is not installed (contrib/install.sh builds it)"
    if spec.terminal:
        return "a terminal session's sandbox is made for its terminal"
    if workspace_mode == "overlay":
        return "an overlay workspace is mounted for one session"
    return None


def plan(profile_name: str, pool_size: int, idle: float, cwd: str, spec: ContainerSpec,
         expected: Iterable[Expected], workspace_mode: str, size: int | None = None) -> Plan | None:
    """The run's plan (`size` overrides the profile's and `pool start`'s), or
    None when it has no pool or cannot use one."""
    where = slot(profile_name, cwd)
    if size is None:
        started = store.size_of(where)
        size = max(pool_size, started[0] if started else 0)
        idle = max(idle, started[1]) if started else idle
    if size <= 0 or why_not(spec, workspace_mode) is not None:
        return None
    return Plan(profile_name, cwd, where, pool_key(spec, expected), size, idle, pool_size)


def still_wanted(wanted: Plan) -> int:
    """How many to keep now: the profile's own pool, or what `pool start` asked for if it
    still stands (a `pool stop` since the run began must not be undone by its refill)."""
    started = store.size_of(wanted.slot)
    return max(wanted.profile_pool, started[0] if started else 0)
