"""A container's exit status as soon as its command has exited.

Podman's wait answers only once conmon's cleanup process (`podman container
cleanup`) has run: 40-120 ms after the exit on this host, a third of a whole
run. conmon itself writes the status first, to a file named by the
container's ID in the directory given to it as `--exit-dir`, before it
starts that cleanup; Podman reads the same file to learn the status. So the
file is the earliest reliable source, and Podman's wait the fallback.

The directory is read from conmon's own command line (/proc/PID/cmdline,
PID being the inspect document's `State.ConmonPid`), and used only when it
belongs to this user and nobody else can write to it: the status of a
security tool's run must not come from a file someone else could plant.
Measured here (Podman 4.3, conmon 2.1): the file is there when the attach
stream ends, or less than a millisecond after; Podman deletes it only when
the container is removed.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any

# How long after the attach stream ended the file may take to appear before
# Podman's wait is asked instead. The stream can end before the command does
# (it closed its stdout and stderr and goes on): then Podman's wait is right.
APPEAR_WITHIN_S = 0.05
_POLL_S = 0.0005


class ExitFile:
    """Where conmon will write one container's exit status."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def of(cls, inspect: dict[str, Any]) -> ExitFile | None:
        """The exit file of the container `inspect` describes (an initialised
        one: its conmon runs), or None when it cannot be trusted or found."""
        try:
            conmon = int(inspect["State"]["ConmonPid"])
            cid = str(inspect["Id"])
            with open(f"/proc/{conmon}/cmdline", "rb") as handle:
                words = handle.read().split(b"\0")
            directory = os.fsdecode(words[words.index(b"--exit-dir") + 1])
            info = os.stat(directory)
        except (KeyError, TypeError, ValueError, IndexError, OSError):
            return None
        if (not directory.startswith("/") or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or "/" in cid or not cid):
            return None
        return cls(os.path.join(directory, cid))

    def read(self, within: float = APPEAR_WITHIN_S) -> int | None:
        """The status conmon wrote (0-255; 128+N for signal N), waiting up to
        `within` seconds for the file; None when it did not appear or does
        not hold a status (then ask Podman)."""
        deadline = time.monotonic() + within
        while True:
            try:
                text = _read_small(self.path)
            except FileNotFoundError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(_POLL_S)
                continue
            except OSError:
                return None
            text = text.strip()
            if not text and time.monotonic() < deadline:
                time.sleep(_POLL_S)  # created, not yet written
                continue
            # A number of at most three digits, or it is not trusted: ask Podman.
            return int(text) if text.isdigit() and len(text) <= 3 else None


def _read_small(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        return os.read(fd, 64).decode("ascii", "replace")
    finally:
        os.close(fd)
