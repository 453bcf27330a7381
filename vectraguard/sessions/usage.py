"""What running sandboxes use now: CPU (percent of one CPU) and memory (bytes).

CPU "now" is a rate, so it is measured over SAMPLE_S: CPU time used by the
sandbox at two moments (cumulative nanoseconds), divided by the wall time
between them — for every sandbox at once, so `ps` waits SAMPLE_S whatever
their number. 100 % is one CPU's worth (`podman stats` shows the same).

Sources: a container's from its engine's stats API (runtime/control.py:
Podman's GET /libpod/containers/stats, Docker's GET /containers/{id}/stats,
both read from the container's cgroup); a `lite` sandbox's from the cgroup
Vectra Guard made for it (lite/cgroup.py, rootful only: `<session>@<owner>`
under the `vectraguard` parent). None where there is no such source
(rootless `lite`, which has no cgroup of its own; a rootless Podman
container on cgroups v1 or hybrid, which has none either: Podman answers
"stats is not supported in rootless mode without cgroups v2"; or the engine
unreachable).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from vectraguard.records import record
from vectraguard.runtime.control import SessionControl

SAMPLE_S = 0.5


@record
class Usage:
    """One sandbox's use now; None: not known."""

    cpu_percent: float | None  # of one CPU, over SAMPLE_S
    memory: int | None  # bytes charged to its cgroup (page cache included)


@record
class Target:
    """Where to read one session's use: its container ID, or its lite cgroup's name."""

    session_id: str
    container_id: str | None = None
    engine: str = "podman"  # of the container: runtime/control.py
    lite_group: str | None = None  # `<session>@<owner>`


def measure(targets: Sequence[Target], controls: Mapping[str, SessionControl],
            cgroup_mode: str) -> dict[str, Usage]:
    """Usage per session id of every target; `controls`: engine name -> its control (a container whose
    engine is not there is not measured)."""
    first = _sample(targets, controls, cgroup_mode)
    start = time.monotonic()
    if any(cpu is not None for cpu, _ in first.values()):
        time.sleep(SAMPLE_S)  # a rate needs two readings; one pause for all sandboxes
    second = _sample(targets, controls, cgroup_mode)
    elapsed_ns = max(1, int((time.monotonic() - start) * 1e9))
    found = {}
    for target in targets:
        cpu_before, _ = first.get(target.session_id, (None, None))
        cpu_after, memory = second.get(target.session_id, (None, None))
        percent = None
        if cpu_before is not None and cpu_after is not None:
            percent = round(max(0, cpu_after - cpu_before) * 100 / elapsed_ns, 1)
        found[target.session_id] = Usage(percent, memory)
    return found


def _sample(targets: Sequence[Target], controls: Mapping[str, SessionControl],
            cgroup_mode: str) -> dict[str, tuple[int | None, int | None]]:
    """(CPU nanoseconds so far, memory bytes) per session id."""
    readings: dict[str, tuple[int | None, int | None]] = {}
    for name, control in controls.items():
        containers = {t.container_id: t.session_id for t in targets if t.container_id and t.engine == name}
        if containers:
            for cid, reading in control.usage(list(containers)).items():
                if cid in containers:
                    readings[containers[cid]] = reading
    for target in targets:
        if target.lite_group:
            readings[target.session_id] = _lite(target.lite_group, cgroup_mode)
    return readings


def _lite(group: str, cgroup_mode: str) -> tuple[int | None, int | None]:
    from vectraguard.lite.cgroup import CONTROLLERS, PARENT_NAME, SandboxCgroup
    from vectraguard.runtime.host import CGROUP_ROOT

    if cgroup_mode == "v2":
        directories = {c: CGROUP_ROOT / PARENT_NAME / group for c in CONTROLLERS}
    else:  # v1/hybrid: cpu time is in cpuacct, which shares its hierarchy with cpu
        directories = {c: CGROUP_ROOT / c / PARENT_NAME / group for c in CONTROLLERS}
    directories = {c: d for c, d in directories.items() if d.is_dir()}
    if not directories:
        return None, None
    try:
        used = SandboxCgroup(cgroup_mode, directories).usage()
    except OSError:
        return None, None
    return used.cpu_ns, used.memory
