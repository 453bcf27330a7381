"""Published ports: host listeners relayed into the sandbox's own loopback.

The sandbox keeps its network (`none` or `allowlist`: no route anywhere).
For each published port Vectra Guard listens on the host (bound when the
run is prepared, so a port already in use refuses the run before anything
starts) and, once the sandbox exists and before its command runs, serves
the listeners from one event loop: each accepted connection gets a fresh
socket made in the sandbox's network namespace (netns_sockets.py),
connected to 127.0.0.1:PORT there — a fixed destination the sandbox cannot
change, in a namespace with no route to the host's — and bytes are relayed
both ways (relay.py). A port nothing listens on inside: the host client's
connection is closed, and the attempt recorded as refused. Every connection
is in the audit record (publish_log.py). When the run ends, the listeners
and every relayed connection are closed.

Not an idle timeout: a dev server's live-reload socket may stay silent for
long, and the host's client, not the sandbox, chose to connect. At most
MAX_OPEN relayed connections are open at once; one beyond is closed at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from vectraguard.network import loop_thread
from vectraguard.network.netns_sockets import SocketMaker, maker_for
from vectraguard.network.publish_log import PublishLog
from vectraguard.network.publish_spec import PublishedPort
from vectraguard.network.relay import Activity, copy, first_failure

MAX_OPEN = 256
STOP_TIMEOUT_S = 5.0
SANDBOX_LOOPBACK = "127.0.0.1"


class PortInUse(OSError):
    """A host address:port could not be bound (in use, not an address of this host, privileged)."""


def bind(port: PublishedPort) -> socket.socket:
    """A listening socket on the host for `port` (PortInUse naming it otherwise)."""
    family = socket.AF_INET6 if ":" in port.host_address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A dev server restarted often: a previous run's connections in TIME_WAIT must not block the port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((port.host_address, port.host_port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise PortInUse(exc.errno, exc.strerror) from None
    listener.set_inheritable(False)
    return listener


class Publisher:
    """The published ports of one session: bound by bind_all(), served by
    start() once the sandbox exists, closed by close() whatever happens."""

    def __init__(self, ports: tuple[PublishedPort, ...]) -> None:
        self.ports = ports
        self.listeners: list[socket.socket] = []
        self.log = PublishLog()
        self.open = 0
        self._maker: SocketMaker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._served = False

    def bind_all(self) -> None:
        """Listen on every host port now; PortInUse (with `.port` set) for the first that cannot be bound."""
        try:
            for port in self.ports:
                try:
                    self.listeners.append(bind(port))
                except PortInUse as exc:
                    exc.port = port  # type: ignore[attr-defined]
                    raise
        except BaseException:
            self.close()
            raise

    def start(self, pid: int, rootless: bool) -> None:
        """Serve the listeners into the network namespace of the sandbox whose init is `pid` (OSError if not possible)."""
        self._maker = maker_for(pid, rootless)
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="vg-publish", daemon=True)
        self._thread.start()

        async def serve() -> None:
            for port, listener in zip(self.ports, self.listeners):
                listener.setblocking(False)
                self._servers.append(await asyncio.start_server(self._handler(port), sock=listener))

        asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
        self._served = True

    def _run(self) -> None:
        assert self._loop is not None
        loop_thread.run_forever(self._loop)

    def _handler(self, port: PublishedPort) -> Any:
        host = port.text().rsplit(":", 1)[0]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            peer = writer.get_extra_info("peername") or ("?", 0)
            address = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])  # as `host` writes IPv6
            entry = self.log.opened(f"{address}:{peer[1]}", host, port.port)
            if self.open >= MAX_OPEN:
                entry.update(outcome="over-limit", reason=f"more than {MAX_OPEN} published connections open at once")
                writer.transport.abort()
                self.log.ended(entry)
                return
            self.open += 1
            if task is not None:
                self._tasks.add(task)
            try:
                await self._relay(port, reader, writer, entry)
            except (OSError, ConnectionError, TimeoutError) as exc:
                if entry["outcome"] == "relayed" and not entry["bytes_to_sandbox"] + entry["bytes_from_sandbox"]:
                    entry.update(outcome="failed")
                entry["reason"] = entry["reason"] or f"{exc.__class__.__name__}: {exc}"
            except asyncio.CancelledError:
                entry["reason"] = entry["reason"] or "the run ended"
                raise
            finally:
                self.open -= 1
                if task is not None:
                    self._tasks.discard(task)
                writer.close()
                self.log.ended(entry)

        return handle

    async def _relay(self, port: PublishedPort, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     entry: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        assert self._maker is not None
        inner = await loop.run_in_executor(None, self._maker.make)
        inner.setblocking(False)
        try:
            await loop.sock_connect(inner, (SANDBOX_LOOPBACK, port.port))
        except OSError as exc:
            inner.close()
            entry.update(outcome="refused", reason=f"nothing listens on {SANDBOX_LOOPBACK}:{port.port} in the "
                                                   f"sandbox ({exc.strerror or exc.__class__.__name__})")
            return
        inner_reader, inner_writer = await asyncio.open_connection(sock=inner)
        activity = Activity()
        try:
            await first_failure(copy(reader, inner_writer, entry, "bytes_to_sandbox", activity),
                                copy(inner_reader, writer, entry, "bytes_from_sandbox", activity))
        finally:
            inner_writer.transport.abort()

    def close(self) -> dict[str, Any] | None:
        """Stop listening, end every relayed connection; the record's keys, or None if nothing was served."""
        if self._loop is not None and self._thread is not None:
            loop_thread.stop(self._loop, self._thread, self._servers, self._tasks, STOP_TIMEOUT_S)
        for listener in self.listeners:
            listener.close()
        self.listeners = []
        if self._maker is not None:
            self._maker.close()
            self._maker = None
        return self.log.snapshot() if self._served else None
