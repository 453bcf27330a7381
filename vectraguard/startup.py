"""The garbage collector while a command starts.

Start-up allocates ~100,000 objects that nearly all live until the process
ends (modules, classes, compiled patterns, the resolved profile). At
CPython's default threshold (700 allocations) the cyclic collector runs
over them again and again: ~4 ms of a `vectraguard run` before its first
call to Podman (bench/startup). `begin` raises the threshold for the
start; `end` sets what was allocated so far aside for good (gc.freeze:
later collections do not walk it) and restores the threshold, so a long
session collects as usual. A command that never calls `end` is a short one.
"""

from __future__ import annotations

import gc

START_THRESHOLD = 50_000
_usual: tuple[int, int, int] | None = None


def begin() -> None:
    global _usual
    if _usual is None:
        _usual = gc.get_threshold()
        gc.set_threshold(START_THRESHOLD, *_usual[1:])


def end() -> None:
    global _usual
    if _usual is not None:
        gc.freeze()
        gc.set_threshold(*_usual)
        _usual = None
