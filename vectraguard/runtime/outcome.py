"""How a sandboxed run ended (RunResult), and the signals that end it: what
every runtime (runtime/interface.py) shares, kept apart from the Podman
session so that a `lite` run imports none of it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from vectraguard.records import record
from vectraguard.runtime import signal_sets

# Every signal whose default action ends the process (runtime/signal_sets.py).
HANDLED_SIGNALS = tuple(getattr(signal, name) for name in signal_sets.ENDING if hasattr(signal, name))


@record
class RunResult:
    """How a sandboxed run ended."""

    exit_status: int
    reason: str  # "exited" | "timeout" | "oom" | "interrupted" | "not-found" | "cannot-execute"
    container_id: str
    signal: int | None = None
    image_id: str = ""  # the image the container was created from (sha256), as Podman resolved it
    pooled: bool = False  # the container came from the pool (vectraguard/pool/)


class Interrupts:
    """Signal flags + self-pipe so the select loop wakes at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.resized = False
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGWINCH:
            self.resized = True
        elif self.received is None:
            self.received = signum
        try:
            os.write(self.write_fd, b"\0")
        except OSError:
            pass

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


@contextmanager
def signals_deferred() -> Iterator[Interrupts]:
    interrupts = Interrupts()
    previous = {sig: signal.signal(sig, interrupts.handler) for sig in (*HANDLED_SIGNALS, signal.SIGWINCH)}
    try:
        yield interrupts
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        interrupts.close()
