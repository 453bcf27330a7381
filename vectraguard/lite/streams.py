"""The streams of a `lite` sandbox: pipes (or one pseudo-terminal) between
the sandbox's stdio and the caller's.

Never the caller's own descriptors: the sandbox gets pipes of ours (or a
fresh pseudo-terminal whose other side we hold), so it can neither read
past what we copy in nor reach the caller's terminal (no TIOCSTI, no
settings changed behind the caller's back). One thread, one select loop,
like the Podman attach pump (runtime/attach.py): stdin is read only when the
previous chunk has been written, so a command that never reads its stdin
cannot make us block.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable

from vectraguard.runtime.attach import OutputSink

CHUNK = 65536


class Streams:
    """Our ends of the sandbox's stdio. `child` is what the sandbox gets as
    fds 0, 1, 2 (to close in the parent once it is started)."""

    def __init__(self, stdin_fd: int | None, terminal: bool) -> None:
        self.stdin_fd = stdin_fd
        self.terminal = terminal
        self.outputs: dict[int, int] = {}  # our read end -> stream number
        self.stdin_write: int | None = None
        self.child: tuple[int, ...]
        if terminal:
            import pty

            master, slave = pty.openpty()
            os.set_blocking(master, False)
            self.master: int | None = master
            self.outputs[master] = 1
            self.stdin_write = None if stdin_fd is None else master
            self.child = (slave, slave, slave)
            return
        self.master = None
        if stdin_fd is None:
            stdin_read = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        else:
            stdin_read, self.stdin_write = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(self.stdin_write, False)
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        err_read, err_write = os.pipe2(os.O_CLOEXEC)
        for fd in (out_read, err_read):
            os.set_blocking(fd, False)
        self.outputs = {out_read: 1, err_read: 2}
        self.child = (stdin_read, out_write, err_write)

    def close_child(self) -> None:
        for fd in set(self.child):
            os.close(fd)
        self.child = ()

    def close(self) -> None:
        if self.child:
            self.close_child()
        for fd in list(self.outputs):
            os.close(fd)
        self.outputs.clear()
        if self.stdin_write is not None and self.stdin_write != self.master:
            os.close(self.stdin_write)
        self.stdin_write = None

    def pump(self, sink: OutputSink, deadline: float, wake_fd: int, wake: Callable[[], bool],
             extra: dict[int, Callable[[], None]] | None = None) -> str:
        """Copy until every output has ended ("eof"), the deadline passed
        ("deadline"), or `wake()` is true after a byte on `wake_fd` ("stop").
        `extra`: more descriptors to watch, each with what to do when readable."""
        pending = b""
        extra = extra or {}
        while self.outputs:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return "deadline"
            readers = [*self.outputs, wake_fd, *extra]
            if self.stdin_fd is not None and self.stdin_write is not None and not pending:
                readers.append(self.stdin_fd)
            writers = [self.stdin_write] if pending and self.stdin_write is not None else []
            try:
                readable, writable, _ = select.select(readers, writers, [], min(timeout, 3600))
            except InterruptedError:
                continue
            if wake_fd in readable:
                try:
                    os.read(wake_fd, 512)
                except BlockingIOError:
                    pass
                if wake():
                    return "stop"
            for fd in readable:
                if fd in extra:
                    extra[fd]()
                elif fd in self.outputs:
                    self._read_output(fd, sink)
                elif fd == self.stdin_fd:
                    pending = self._read_stdin()
            if writable and pending:
                pending = self._write_stdin(pending)
        return "eof"

    def _read_output(self, fd: int, sink: OutputSink) -> None:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:  # a pseudo-terminal whose last holder closed it
                raise
            data = b""
        if data:
            sink(self.outputs[fd], data)
            return
        del self.outputs[fd]
        if fd != self.master:
            os.close(fd)
        elif self.master is not None:
            os.close(fd)
            self.master = None
            self.stdin_write = None

    def _read_stdin(self) -> bytes:
        assert self.stdin_fd is not None
        try:
            data = os.read(self.stdin_fd, CHUNK)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:
            self._end_stdin()
        return data

    def _write_stdin(self, pending: bytes) -> bytes:
        assert self.stdin_write is not None
        try:
            written = os.write(self.stdin_write, pending)
        except BlockingIOError:
            return pending
        except OSError:  # the sandbox closed its stdin: what is left is dropped, as with Podman
            self._end_stdin()
            return b""
        return pending[written:]

    def _end_stdin(self) -> None:
        """End of our stdin: the sandbox reads end-of-file (with a terminal, ^D)."""
        if self.terminal:
            self.stdin_fd = None
            return
        if self.stdin_write is not None:
            os.close(self.stdin_write)
            self.stdin_write = None
        self.stdin_fd = None
