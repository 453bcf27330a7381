"""Podman services the tests start themselves, and stopping exactly those.

Other engineers' runs share this host and its private services: a test
stops only processes it can prove it started (its own Popen, or a socket
path no one else uses), never by a broad name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.vg import Caller
from vectraguard.runtime.libpod import Libpod

START_DEADLINE_S = 30.0


@contextmanager
def podman_service(caller: Caller, global_flags: Sequence[str], sock: Path) -> Iterator[str]:
    """`podman GLOBAL_FLAGS system service` on `sock`, as `caller`; yields the
    socket path and stops the service (and only it) afterwards."""
    argv, env = caller.argv(["podman", *global_flags, "system", "service", "--time=0", f"unix://{sock}"])
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not Libpod(str(sock)).ping():
            assert process.poll() is None and time.monotonic() < deadline, f"{argv} did not start"
            time.sleep(0.05)
        yield str(sock)
    finally:
        # runuser, the rootless podman and the service share the session we made.
        stop([pid for pid in _pids() if _session(pid) == process.pid])
        process.wait(timeout=30)


def stop(pids: list[int]) -> None:
    """TERM the processes, then KILL what is left after 30 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)


def services_where(predicate: Callable[[int, list[bytes]], bool]) -> list[int]:
    """PIDs of `podman ... system service` processes for which predicate(pid, argv) holds."""
    found = []
    for pid in _pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"system" in argv and b"service" in argv and predicate(pid, argv):
            found.append(pid)
    return found


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
