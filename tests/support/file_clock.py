"""Waiting for the file system's clock to move on, without sleeping.

File times (mtime, ctime) have a clock tick's granularity (the kernel's
coarse clock: some milliseconds), so a file changed twice within one tick
may show the same times both times. A test that changes a file a cache
keyed by those times has just seen calls `tick` first: it polls a scratch
file's ctime, with a deadline, until the clock has moved on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def tick(directory: Path, deadline_s: float = 5.0) -> None:
    """Return once a file touched in `directory` gets a later ctime than one touched now."""
    scratch = directory / ".file-clock"
    scratch.touch()
    first = scratch.stat().st_ctime_ns
    deadline = time.monotonic() + deadline_s
    while scratch.stat().st_ctime_ns == first:
        assert time.monotonic() < deadline, "the file system's clock did not move"
        os.utime(scratch)
