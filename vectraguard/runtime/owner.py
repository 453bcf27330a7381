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


# A run made by the fork server is owned by the `vectraguard` its user started
# (the client), not by the server's process that does the work: the client is
# what a person or a supervisor sees, signals and kills, and that process ends
# as soon as its client does (forkserver/child.py).
_acting_for: str | None = None


def act_for(identity: str) -> None:
    """Own this process's runs in the name of `identity` (`PID:STARTTIME`)."""
    global _acting_for
    _acting_for = identity


def acting_for_client() -> bool:
    """Whether this process runs on behalf of a fork server's client."""
    return _acting_for is not None


def current_owner() -> str:
    if _acting_for is not None:
        return _acting_for
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition(":")
    if not pid.isdigit():
        return False
    return _start_time(int(pid)) == started
