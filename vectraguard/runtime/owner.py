"""Identifying the vectraguard process that owns a container.

A pid alone can be reused; pid plus the process start time (in clock ticks
since boot, /proc/PID/stat field 22) cannot, in practice.
"""

from __future__ import annotations

import os


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[19].decode()


def process_identity(pid: int) -> str | None:
    """`PID:STARTTIME`, or None when no such process exists."""
    started = _start_time(pid)
    return None if started is None else f"{pid}:{started}"


def current_owner() -> str:
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition(":")
    if not pid.isdigit():
        return False
    return _start_time(int(pid)) == started
