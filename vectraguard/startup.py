"""The garbage collector while a command starts, and a quick exit once a run is done.

Start-up allocates ~100,000 objects that nearly all live until the process
ends (modules, classes, compiled patterns, the resolved profile). At
CPython's default threshold (700 allocations) the cyclic collector runs
over them again and again: ~4 ms of a `vectraguard run` before its first
call to Podman (bench/startup). `begin` raises the threshold for the
start; `end` sets what was allocated so far aside for good (gc.freeze:
later collections do not walk it) and restores the threshold, so a long
session collects as usual. A command that never calls `end` is a short one.

A finished run exits without the interpreter's finalisation (tearing down
~190 modules: ~5 ms of every `vectraguard run`, measured spawn to exit),
but only when its code said all it wrote is closed (`done`) and nothing else
could still need the finalisation: one thread (a non-daemon thread would be
waited for); the atexit callbacks are run first, as the usual exit runs
them, and standard output and error flushed. An allowlist run, with asyncio
and the proxy loaded (~300 modules), saves ~40 ms.
"""

from __future__ import annotations

import gc
import os
import sys

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


_done = False


def done() -> None:
    """Said by a run once its records, captures and recording are closed."""
    global _done
    _done = True


def only_thread() -> bool:
    """Whether this process runs no other Python thread (a fork copies none
    of them, and the interpreter's exit would wait for them). Without
    `threading` ever imported none was started, and it is not imported here
    (~0.5 ms of a run)."""
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def exit_now(status: int) -> None:
    """Exit with `status` at once if `done` was said and nothing needs the
    interpreter's finalisation; else return (the caller exits as usual)."""
    if not _done or not only_thread():
        return
    atexit = sys.modules.get("atexit")  # never imported: nothing registered a callback
    run_callbacks = getattr(atexit, "_run_exitfuncs", None) if atexit is not None else (lambda: None)
    if run_callbacks is None:  # CPython's; unknown elsewhere: the usual exit
        return
    run_callbacks()  # what the usual exit runs (logging's shutdown, once asyncio imported it), in its order
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None when the process was started with that descriptor closed
                stream.flush()
    except (OSError, ValueError):
        return  # the usual exit reports it as it always did
    os._exit(status)
