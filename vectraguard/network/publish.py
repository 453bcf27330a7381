"""Published ports: host listeners relayed into the sandbox's own loopback.

The sandbox keeps its network (`none` or `allowlist`: no route anywhere).
For each published port Vectra Guard listens on the host (bound when the
run is prepared, so a port already in use refuses the run before anything
starts) and, once the sandbox exists and before its command runs, serves
the listeners from one event loop: each accepted connection gets a fresh
socket made in the sandbox's network namespace (netns_sockets.py),
connected to localhost:PORT there (127.0.0.1, else ::1: what `localhost`
means inside) — a fixed destination the sandbox cannot
change, in a namespace with no route to the host's — and bytes are relayed
both ways (relay.py). A port nothing listens on inside: the host client's
connection is closed, the attempt recorded as refused, and said on stderr
once per port (the client itself sees only an empty reply; -q silences it). Every connection
is in the audit record (publish_log.py). When the run ends, the listeners
and every relayed connection are closed.

Not an idle timeout: a dev server's live-reload socket may stay silent for
long, and the host's client, not the sandbox, chose to connect. At most
MAX_OPEN relayed connections are open at once; one beyond is closed at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from typing import Any

from vectraguard import diag
from vectraguard.network import loop_thread
from vectraguard.network.netns_sockets import SocketMaker, maker_for
from vectraguard.network.publish_log import PublishLog
from vectraguard.network.publish_spec import PublishedPort
from vectraguard.network.relay import Activity, copy, first_failure

MAX_OPEN = 256
STOP_TIMEOUT_S = 5.0
# What `localhost` means inside a sandbox, in the order tried: a host's `curl localhost` tries both too.
LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))


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
        self._said: set[PublishedPort] = set()  # ports whose "nothing listens" was said on stderr

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
        inner = await self._connect_inside(port.port)
        if isinstance(inner, str):
            entry.update(outcome="refused", reason=f"nothing listens on port {port.port} in the sandbox ({inner})")
            self._say_nothing_listens(port)
            return
        inner_reader, inner_writer = await asyncio.open_connection(sock=inner)
        activity = Activity()
        try:
            await first_failure(copy(reader, inner_writer, entry, "bytes_to_sandbox", activity),
                                copy(inner_reader, writer, entry, "bytes_from_sandbox", activity))
        finally:
            inner_writer.transport.abort()

    async def _connect_inside(self, port: int) -> socket.socket | str:
        """A socket connected to what `localhost:PORT` means inside (127.0.0.1, then ::1: a server bound to
        `localhost` where localhost is ::1 first listens on ::1 only), or why neither answered."""
        loop = asyncio.get_running_loop()
        assert self._maker is not None
        why = []
        for family, address in LOOPBACKS:
            try:
                inner = await loop.run_in_executor(None, self._maker.make, family)
            except OSError as exc:  # no IPv6 in this sandbox's namespace: nothing can listen on ::1 either
                why.append(f"{address}: {exc.strerror or exc}")
                continue
            inner.setblocking(False)
            try:
                await loop.sock_connect(inner, (address, port))
            except OSError as exc:
                inner.close()
                why.append(f"{address}: {os.strerror(exc.errno) if exc.errno else exc}")  # asyncio's text repeats the address
                continue
            return inner
        return "; ".join(why)

    def _say_nothing_listens(self, port: PublishedPort) -> None:
        """Once per port (a browser retries many times): the host's client only saw an empty reply."""
        if port in self._said:
            return
        self._said.add(port)
        end = "\r\n" if sys.stderr.isatty() else "\n"  # the sandbox's terminal may be in raw mode
        diag.notice(f"vectraguard: published port {port.host_address}:{port.host_port} -> {port.port}: nothing "
                    f"listens on port {port.port} in the sandbox (neither {' nor '.join(a for _, a in LOOPBACKS)}); "
                    f"its connections are closed (said once per port)", end=end)

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
