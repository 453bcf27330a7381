"""`vectraguard ps [--json]`: this user's running sandboxes, and what they use now.

Running sessions come from this user's audit store (sessions/running.py);
root sees root's, another user's are in their own store and are not shown.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from vectraguard import output
from vectraguard.audit import exact
from vectraguard.audit.store import open_store
from vectraguard.runtime.control import engine_of
from vectraguard.sessions import ports, usage
from vectraguard.sessions.running import RunningSession, running

COLUMNS = ["SESSION", "PROFILE", "ISOLATION", "AGE", "CPU", "MEMORY", "PORTS", "COMMAND"]
COMMAND_SHOWN = 60  # characters of the command in the table (--json has it whole)


def main(args: argparse.Namespace) -> int:
    store = open_store()
    try:
        sessions = running(store)
    finally:
        store.close()
    rows = [_row(session, used) for session, used in _measured(sessions)]
    if args.json:
        output.print_json(rows)
    elif rows:
        output.print_table([_cells(row) for row in rows], COLUMNS)
    else:
        print("no running sandboxes")
    return 0


def _measured(sessions: list[RunningSession]) -> list[tuple[RunningSession, tuple[usage.Usage, str | None]]]:
    """Each session with its use now and its container's ID (None: no container), asked of the engine
    each session's record names (runtime/control.py): only the engines some session runs on are reached."""
    from vectraguard.runtime import host
    from vectraguard.runtime.control import SessionControl, for_engine
    from vectraguard.sessions.containers import by_session

    facts = host.detect()
    controls: dict[str, SessionControl] = {}
    containers: dict[str, tuple[str, str]] = {}  # session id -> (engine, container ID)
    for name in sorted({engine_of(s.started) for s in sessions if s.isolation != "lite"}):
        controls[name] = control = for_engine(name)
        ours = [s for s in sessions if s.isolation != "lite" and engine_of(s.started) == name]
        containers.update({sid: (name, str(found["Id"])) for sid, found in by_session(control, ours).items()})
    targets = [usage.Target(s.id, containers[s.id][1] if s.id in containers else None,
                            containers[s.id][0] if s.id in containers else "podman",
                            f"{s.id}@{s.owner}" if s.isolation == "lite" and not facts.rootless else None)
               for s in sessions]
    used = usage.measure(targets, controls, facts.cgroup_mode)
    return [(s, (used[s.id], containers[s.id][1] if s.id in containers else None)) for s in sessions]


def _row(session: RunningSession, measured: tuple[usage.Usage, str | None]) -> dict[str, Any]:
    used, container = measured
    return {"id": session.id, "profile": session.profile, "isolation": session.isolation, "agent": session.agent,
            "command": list(session.argv), "cwd": session.cwd, "started_at": session.started_at,
            "age_s": round(_age(session.started_at), 1), "cpu_percent": used.cpu_percent,
            "memory_bytes": used.memory, "container_id": container, "owner_pid": session.owner_pid,
            "engine": engine_of(session.started) if session.isolation != "lite" else None,
            "ports": ports.published(session.started)}


def _cells(row: dict[str, Any]) -> dict[str, Any]:
    command = exact.shell_line(row["command"])  # shlex.join's words, and what is not printable escaped
    return {"SESSION": row["id"], "PROFILE": row["profile"], "ISOLATION": row["isolation"],
            "AGE": _short_age(row["age_s"]),
            "CPU": "-" if row["cpu_percent"] is None else f"{row['cpu_percent']:.1f}%",
            "MEMORY": "-" if row["memory_bytes"] is None else _size(row["memory_bytes"]),
            "PORTS": ", ".join(row["ports"]),
            "COMMAND": command if len(command) <= COMMAND_SHOWN else command[:COMMAND_SHOWN - 1] + "…"}


def _age(started_at: str) -> float:
    """Seconds since `started_at` (the store's UTC form)."""
    import calendar

    try:
        whole, _, fraction = started_at.rstrip("Z").partition(".")
        at = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")
    except ValueError:
        return 0.0
    return max(0.0, time.time() - at)


def _short_age(seconds: float) -> str:
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= factor:
            return f"{int(seconds // factor)}{unit}"
    return f"{int(seconds)}s"


def _size(value: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= factor:
            return f"{value / factor:.1f}{unit}"
    return f"{value}B"
