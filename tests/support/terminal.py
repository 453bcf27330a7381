"""A real pseudo-terminal for driving `vectraguard` interactively (shells, approval questions)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from tests.support.vg import Caller


class Pty:
    """A program on the slave side of a pty we hold the master of (`fd`): what it
    wrote so far is `seen`; `send` types, `expect` waits for a pattern."""

    pid: int
    fd: int
    seen: bytes

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, pattern: bytes, timeout: float = 30) -> bytes:
        """What came before `pattern` (which is consumed); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while pattern not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {pattern!r}; saw {self.seen[-500:]!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:
                    break
        before, _, self.seen = self.seen.partition(pattern)
        return before


class Terminal(Pty):
    """`vectraguard ARGS` on the slave side of a pty we hold the master of: the
    pty is its controlling terminal. With `stdin`, its standard input is that
    file instead (the terminal stays the controlling one). The window is `size`
    (rows, columns) from before the program starts."""

    live: ClassVar[set[Terminal]] = set()

    def __init__(self, caller: Caller, cwd: Path, args: Sequence[str], *, stdin: Path | None = None,
                 extra_env: dict[str, str] | None = None, size: tuple[int, int] = (24, 80)) -> None:
        argv, env = caller.argv(caller.vg(args), extra_env)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes vectraguard, with the pty as its terminal
            os.chdir(cwd)
            # Sized here, before the exec: set from the parent, it could come after vectraguard measured it.
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
            if stdin is not None:
                os.dup2(os.open(stdin, os.O_RDONLY), 0)
            os.execvpe(argv[0], argv, env)
        self.seen = b""
        Terminal.live.add(self)

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.seen += os.read(self.fd, 65536)  # keep draining so the child never blocks on output
            except OSError:
                pass
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self._drain()  # what it wrote last may still be in the pty: longer than one read
                os.close(self.fd)
                Terminal.live.discard(self)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError("vectraguard did not end")

    def _drain(self) -> None:
        """Read until the pty has nothing more (EIO once the child's side is closed)."""
        while select.select([self.fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.seen += chunk
