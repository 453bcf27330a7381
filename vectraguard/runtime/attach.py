"""Pumping a container's stdio between the terminal and an attach stream.

Podman's attach stream (no TTY) multiplexes stdout and stderr in frames of
an 8-byte header (stream id, 3 zero bytes, big-endian length) and a
payload. Output is written raw to our own stdout/stderr as it arrives, so
nothing is decoded or rewritten. Our stdin is copied to the stream; its end
half-closes the connection, which Podman passes on as EOF to the command.
One thread, one select loop: stdin is only read when the previous chunk has
been sent, so a command that never reads stdin cannot make us block.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Callable

OutputSink = Callable[[int, bytes], None]
HEADER = 8


class Delivery:
    """The sink that writes stream 1 and 2 to the caller's file descriptors.

    A descriptor that fails — the reader went away (EPIPE), the disk is full
    (ENOSPC), an I/O error (EIO), anything else — stops being written for
    that stream, and the failure is kept (`failures`) for the record and the
    user; nothing is raised, so the container is still drained and its
    output still captured, and the run ends with its own exit status."""

    def __init__(self, fds: dict[int, int]) -> None:
        self.fds = fds
        self.delivered = {stream: 0 for stream in fds}  # bytes written, per stream
        self.failures: dict[int, str] = {}  # stream -> "ENOSPC: No space left on device"

    def __call__(self, stream: int, payload: bytes) -> None:
        fd = self.fds.get(stream)
        if fd is None or stream in self.failures:
            return
        view = memoryview(payload)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [])
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                self.failures[stream] = describe(exc)
                return
            view = view[written:]
            self.delivered[stream] += written


def describe(exc: OSError) -> str:
    """`ENOSPC: No space left on device`: the symbol a search finds, and the words."""
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"{name}: {exc.strerror or exc}"


def write_to_fds(fds: dict[int, int]) -> Delivery:
    """A sink that writes stream 1 and 2 to the given file descriptors (see Delivery)."""
    return Delivery(fds)


class StreamPump:
    def __init__(self, sock: socket.socket, initial: bytes, stdin_fd: int | None,
                 sink: OutputSink, wake_fd: int, raw: bool = False) -> None:
        # raw: a terminal session's stream is the pty's bytes, not frames.
        self.raw = raw
        self.sock = sock
        self.buffer = bytearray(initial)
        self.stdin_fd = stdin_fd
        self.sink = sink
        self.wake_fd = wake_fd
        self.pending = b""
        self.eof = False
        self._demux()

    def run(self, deadline: float | None, stop: Callable[[], bool]) -> str:
        """Pump until the stream ends ("eof"), the deadline passes ("deadline")
        or `stop()` turns true after a wake-up ("stop")."""
        while not self.eof:
            if stop():
                return "stop"
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return "deadline"
            readers: list[socket.socket | int] = [self.sock, self.wake_fd]
            if self.stdin_fd is not None and not self.pending:
                readers.append(self.stdin_fd)
            writers: list[socket.socket | int] = [self.sock] if self.pending else []
            readable, writable, _ = select.select(readers, writers, [], timeout)
            if self.wake_fd in readable:
                _drain(self.wake_fd)
            if self.sock in readable:
                self._receive()
            if self.stdin_fd is not None and self.stdin_fd in readable:
                self._read_stdin()
            if writable:
                self._send_stdin()
        return "eof"

    def _receive(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return
        self.buffer += chunk
        self._demux()

    def _demux(self) -> None:
        if self.raw:
            if self.buffer:
                self.sink(1, bytes(self.buffer))
                self.buffer.clear()
            return
        start = 0
        while len(self.buffer) - start >= HEADER:
            stream = self.buffer[start]
            size = int.from_bytes(self.buffer[start + 4 : start + 8], "big")
            if len(self.buffer) - start - HEADER < size:
                break
            payload = bytes(self.buffer[start + HEADER : start + HEADER + size])
            start += HEADER + size
            if stream in (1, 2):
                self.sink(stream, payload)
        del self.buffer[:start]

    def _read_stdin(self) -> None:
        assert self.stdin_fd is not None
        try:
            data = os.read(self.stdin_fd, 65536)
        except OSError:
            data = b""
        if data:
            self.pending = data
            return
        self.stdin_fd = None
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _send_stdin(self) -> None:
        try:
            sent = self.sock.send(self.pending, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            # The container closed its stdin; drop input from now on.
            self.pending = b""
            self.stdin_fd = None
            return
        self.pending = self.pending[sent:]


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def usable_stdin(fd: int = 0) -> int | None:
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd
