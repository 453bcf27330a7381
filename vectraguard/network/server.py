"""One session's egress servers: one event loop, a cap on open connections.

Every listener planted in the sandbox (the proxy, each forwarder) is served
by one asyncio event loop on one thread, whatever the sandbox does: a
thread per connection let six processes holding 21,600 idle connections
drive an earlier version to ~9,800 threads and starve the run's own
timeout. Now a connection costs a few kilobytes and two stream buffers,
at most `max_connections` are open at once (the profile's
network.max_connections), and one beyond the cap is closed at once,
recorded as refused "over-limit" (the record's counts are bounded:
attempts.py). Names are resolved through a bounded pool of RESOLVER_THREADS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from vectraguard.network import loop_thread
from vectraguard.network.attempts import ConnectionLog
from vectraguard.network.dial import STREAM_LIMIT, Denied, Dialed, Dialer, bounded
from vectraguard.network.relay import IDLE_TIMEOUT_S
from vectraguard.network.tunnel import Refused

RESOLVER_THREADS = 4
STOP_TIMEOUT_S = 2.0


class Attempt:
    """One connection's record entry: logged once, when its decision is made."""

    def __init__(self, log: ConnectionLog, via: str, host: str, port: Any) -> None:
        self.log = log
        self.entry: dict[str, Any] = {"at": time.time(), "via": via, "host": host, "port": port, "address": None,
                                      "decision": "denied", "reason": "", "bytes_out": 0, "bytes_in": 0}
        self.logged = False

    def allow(self, address: str, rule: str) -> None:
        self.entry.update(address=address or None)
        self.decide(None, f"rule {rule}")

    def decide(self, refusal: str | None, reason: str, asked: str = "") -> None:
        """`refusal` None: allowed; else the record's refusal kind (summary.py). Only the first decision counts."""
        if self.logged:
            return
        self.logged = True
        if refusal is None:
            self.entry.update(decision="allowed", reason=self.entry["reason"] or reason)
        else:
            self.entry.update(decision="denied", reason=reason, refusal=refusal, bytes_out=0, bytes_in=0)
            if asked:
                self.entry["asked"] = asked
        self.log.add(self.entry)

    def decider(self, dialed: Dialed) -> Callable[[str | None, str, str], None]:
        """The callback tunnel.pass_inspected tells its decision to."""
        def decided(kind: str | None, message: str, asked: str) -> None:
            if kind is None:
                self.allow(dialed.address, dialed.rule.text)
            else:
                self.decide(kind, message, asked)

        return decided

    def end(self) -> None:
        if self.logged and self.entry["decision"] == "allowed":
            self.log.closed(self.entry)  # its bytes, into the counts of the attempts after the first ones


Handler = Callable[["EgressServers", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ClientCallback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class EgressServers:
    """The listeners of one session, served until close()."""

    def __init__(self, dialer: Dialer, log: ConnectionLog, max_connections: int,
                 idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.dialer, self.log = dialer, log
        self.max_connections, self.idle_timeout = max_connections, idle_timeout
        self.open = 0
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(RESOLVER_THREADS, "vg-resolve"))
        self._thread = threading.Thread(target=self._run, name="vg-egress", daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def run_loop(self) -> None:
        """Start the event loop's thread, ahead of start() (Egress.preload: while Podman works)."""
        if not self._thread.is_alive():
            self._thread.start()

    def start(self, listeners: list[tuple[socket.socket, str, Handler]]) -> None:
        """Serve each listener (`via` names it in the record: "proxy", "forwarder")
        with its handler; returns once they are served."""
        async def open_servers() -> None:
            for listener, via, handler in listeners:
                listener.setblocking(False)
                self._servers.append(await asyncio.start_server(self._admit(via, handler), sock=listener,
                                                                limit=STREAM_LIMIT, backlog=128))

        self.run_loop()
        asyncio.run_coroutine_threadsafe(open_servers(), self._loop).result(timeout=10)

    def close(self) -> None:
        """Stop serving and end every connection; never blocks the run for long."""
        loop_thread.stop(self._loop, self._thread, self._servers, self._tasks, STOP_TIMEOUT_S)

    def _run(self) -> None:
        loop_thread.run_forever(self._loop)

    def _admit(self, via: str, handler: Handler) -> ClientCallback:
        async def admitted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if self.open >= self.max_connections:
                Attempt(self.log, via, "(over the connection limit)", 0).decide(
                    "over-limit", f"more than network.max_connections ({self.max_connections}) open at once")
                writer.transport.abort()  # at once: a flood must not cost us a close handshake each
                return
            self.open += 1
            if task is not None:
                self._tasks.add(task)
            try:
                await handler(self, reader, bounded(writer))
            except (Refused, Denied, OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                pass  # each path has recorded its decision; the connection just ends
            except Exception as exc:  # noqa: BLE001 - a bug: recorded, never a traceback on the terminal
                Attempt(self.log, via, "(internal error)", 0).decide(
                    "malformed", f"internal error: {exc.__class__.__name__}: {exc}")
            finally:
                self.open -= 1
                if task is not None:
                    self._tasks.discard(task)
                writer.close()  # what is still buffered for the sandbox is sent first

        return admitted


async def serve_checked(servers: EgressServers, attempt: Attempt, run: Callable[[], Awaitable[None]]) -> None:
    """Run one connection's work, its decision recorded whatever happens."""
    try:
        await run()
    except Refused as exc:
        attempt.decide(exc.kind, str(exc), exc.asked)
    except Denied as exc:
        attempt.decide(exc.kind, str(exc))
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
        # Ended before a decision (a reset, an idle client): it still leaves a trace.
        attempt.decide("malformed", f"the connection ended before its first message was complete "
                                    f"({exc.__class__.__name__})")
        raise
    finally:
        attempt.end()

