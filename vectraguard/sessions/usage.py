"""What running sandboxes use now: CPU (percent of one CPU) and memory (bytes).

CPU "now" is a rate, so it is measured over SAMPLE_S: CPU time used by the
sandbox at two moments (cumulative nanoseconds), divided by the wall time
between them — for every sandbox at once, so `ps` waits SAMPLE_S whatever
their number. 100 % is one CPU's worth (`podman stats` shows the same).

Sources: a container's from Podman's stats API (GET
/libpod/containers/stats?stream=false: `CPUNano`, `MemUsage`, which Podman
reads from the container's cgroup); a `lite` sandbox's from the cgroup
Vectra Guard made for it (lite/cgroup.py, rootful only: `<session>@<owner>`
under the `vectraguard` parent). None where there is no such source
(rootless `lite`, which has no cgroup of its own; a rootless container on
cgroups v1 or hybrid, which has none either: Podman answers "stats is not
supported in rootless mode without cgroups v2"; or Podman unreachable).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from vectraguard.records import record
from vectraguard.runtime.libpod import Libpod, LibpodError

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
    lite_group: str | None = None  # `<session>@<owner>`


def measure(targets: Sequence[Target], client: Libpod | None, cgroup_mode: str) -> dict[str, Usage]:
    """Usage per session id of every target."""
    first = _sample(targets, client, cgroup_mode)
    start = time.monotonic()
    if any(cpu is not None for cpu, _ in first.values()):
        time.sleep(SAMPLE_S)  # a rate needs two readings; one pause for all sandboxes
    second = _sample(targets, client, cgroup_mode)
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


def _sample(targets: Sequence[Target], client: Libpod | None,
            cgroup_mode: str) -> dict[str, tuple[int | None, int | None]]:
    """(CPU nanoseconds so far, memory bytes) per session id."""
    readings: dict[str, tuple[int | None, int | None]] = {}
    containers = {t.container_id: t.session_id for t in targets if t.container_id}
    if containers and client is not None:
        readings.update(_podman(client, containers))
    for target in targets:
        if target.lite_group:
            readings[target.session_id] = _lite(target.lite_group, cgroup_mode)
    return readings


def _podman(client: Libpod, containers: dict[str, str]) -> dict[str, tuple[int | None, int | None]]:
    query = "&".join(f"containers={cid}" for cid in containers)  # ids are hex: nothing to quote
    try:
        answer = client.json("GET", f"/containers/stats?stream=false&{query}")
    except (LibpodError, OSError):
        return {}
    readings: dict[str, tuple[int | None, int | None]] = {}
    for stats in (answer or {}).get("Stats") or []:
        session = containers.get(str(stats.get("ContainerID", "")))
        if session is not None:
            readings[session] = (_int(stats.get("CPUNano")), _int(stats.get("MemUsage")))
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


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
