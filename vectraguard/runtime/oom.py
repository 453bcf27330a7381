"""Telling an out-of-memory kill from any other SIGKILL.

Podman's own `OOMKilled` flag stays false on cgroups v1/hybrid hosts (seen
with Podman 4.3 and conmon 2.1.6), and the container's cgroup is deleted
moments after it exits. So, while the sandbox runs, we open its memory
cgroup's event counter and keep the file descriptor; when the command has
died with SIGKILL we read the counter through it — before Podman's cleanup
removes the cgroup (after that the read fails and we fall back to Podman's
flag).
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class OomWatch:
    def __init__(self) -> None:
        self._fd: int | None = None

    @property
    def armed(self) -> bool:
        return self._fd is not None

    def arm(self, cgroup_path: str, cgroup_mode: str) -> bool:
        relative = cgroup_path.lstrip("/")
        if cgroup_mode == "v2":
            candidate = CGROUP_ROOT / relative / "memory.events"
        else:
            candidate = CGROUP_ROOT / "memory" / relative / "memory.oom_control"
        try:
            self._fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None
        return self._fd is not None

    def arm_by_convention(self, container_id: str, cgroup_mode: str) -> bool:
        """Podman's usual cgroup paths (cgroupfs, then systemd), without asking
        Podman: a memory bomb can be dead before an inspect call returns."""
        for path in (f"libpod_parent/libpod-{container_id}", f"machine.slice/libpod-{container_id}.scope"):
            if self.arm(path, cgroup_mode):
                return True
        return False

    def fired(self) -> bool:
        if self._fd is None:
            return False
        try:
            text = os.pread(self._fd, 4096, 0).decode()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
