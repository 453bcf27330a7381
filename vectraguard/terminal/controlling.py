"""The caller's controlling terminal, to ask a person on.

A run started in-process opens /dev/tty. A run made by the fork server
(forkserver/) has no controlling terminal of its own: its client opened its
/dev/tty and passed the descriptor, kept here (`passed`).
"""

from __future__ import annotations

import os

passed: int | None = None  # set by forkserver/child.py; close-on-exec


def open_terminal() -> int:
    """A new read-write descriptor on the caller's terminal (the caller
    closes it). OSError when there is none."""
    if passed is not None:
        return os.dup(passed)  # os.dup makes it close-on-exec, as the open below
    return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
