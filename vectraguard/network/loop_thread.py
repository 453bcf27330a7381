"""An asyncio event loop served by a thread of its own, for a run's listeners.

The egress listeners (server.py) and the published ports (publish.py) are
each served by one event loop in a daemon thread while the run's main thread
relays the sandbox's streams. Both start and end it the same way: no
traceback ever reaches the person's terminal, and ending it never blocks the
run for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from typing import Any


def run_forever(loop: asyncio.AbstractEventLoop) -> None:
    """The thread's target: serve `loop` until stopped, then close it."""
    asyncio.set_event_loop(loop)
    # asyncio's default handler prints tracebacks to stderr, which is the person's terminal.
    loop.set_exception_handler(lambda loop, context: None)
    try:
        loop.run_forever()
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, servers: Iterable[asyncio.AbstractServer],
         tasks: set[asyncio.Task[Any]], timeout: float) -> None:
    """Stop listening, cancel every connection's task and end the thread, waiting
    at most `timeout` seconds for each of the two steps."""
    if not thread.is_alive():
        return

    async def cancel() -> None:
        for server in servers:
            server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(cancel(), loop).result(timeout=timeout)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout)
