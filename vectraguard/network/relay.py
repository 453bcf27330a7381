"""Copying bytes between two asyncio streams, counted, with an idle timeout.

A connection that moves no byte either way for IDLE_TIMEOUT_S is closed:
a sandbox holding thousands of idle connections must not hold our
resources for ever (the cap on open connections is in server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

IDLE_TIMEOUT_S = 300.0
CHUNK = 128 * 1024


class Activity:
    """When a connection last moved a byte, in either direction (time.monotonic seconds)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last


async def idle_guard(activity: Activity, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
    """Raises TimeoutError once the connection has moved no byte for `idle_timeout`
    seconds. One sleeping task per connection, rather than a timer per read
    (asyncio.wait_for makes a task each time: a third of the relay's speed)."""
    while True:
        remaining = idle_timeout - activity.idle_for()
        if remaining <= 0:
            raise TimeoutError
        await asyncio.sleep(max(remaining, 1.0))


async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, entry: dict[str, Any], counter: str,
               activity: Activity) -> None:
    """Copy until the end of `reader`, then half-close `writer`; bytes add up in entry[counter]."""
    while True:
        data = await reader.read(CHUNK)
        activity.touch()
        if not data:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
            return
        writer.write(data)
        entry[counter] += len(data)
        await writer.drain()  # returns at once unless the peer's buffer is over its limit


async def first_failure(*coroutines: Any, guard: Any = None) -> None:
    """Run them together until all have returned; the first to fail (a reset,
    a refusal, the `guard` coroutine's idle timeout) cancels the others, and
    its exception is raised. The guard is cancelled when the others are done."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    watch = asyncio.ensure_future(guard) if guard is not None else None
    failure: BaseException | None = None
    try:
        pending = set(tasks) | ({watch} if watch is not None else set())
        while failure is None and pending - {watch}:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failure = next((t.exception() for t in done if not t.cancelled() and t.exception() is not None), None)
    finally:
        everything = [*tasks, *([watch] if watch is not None else [])]
        for task in everything:
            task.cancel()
        await asyncio.gather(*everything, return_exceptions=True)
    if failure is not None:
        raise failure
