"""Between a sandbox's output and the caller's terminals: the filter, and a clean line after.

`run` builds its output sink (runtime/attach.write_to_fds) and wraps it here.
A stream whose file descriptor is a terminal goes through a SequenceFilter
(policy LIVE, or TERMINAL_OWNER for an interactive session); a stream going to
a pipe or a file is data and passes unchanged, as does everything with
`output.passthrough: raw`. What the audit capture and the recording see is
not this sink's business: they are fed the raw bytes beside it (evidence).

When the sandbox's output has ended, `end()` puts the terminal our messages
go to (stderr) back in a known state, so what we say next (exit status,
refused destinations, changes to review) cannot be restyled or spliced into a
line the sandbox began: an attribute reset (more where the policy let more
through), and a newline unless the last byte written to that terminal was one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping

OutputSink = Callable[[int, bytes], None]  # (stream 1 or 2, bytes), as runtime/attach.py has it
RESET = b"\x1b[0m"  # plain attributes: all the LIVE policy lets a sandbox change that could restyle our text
# Where more passed (an interactive session, or output.passthrough: raw), also what would make
# our text unreadable or hidden: shift in and G0 back to ASCII (DEC line drawing turns letters
# into box pieces), the cursor visible, insert mode off. Each is a plain VT100/ECMA-48 sequence
# every terminal knows; the alternate screen is left alone (leaving it moves the cursor).
FULL_RESET = RESET + b"\x0f\x1b(B\x1b[?25h\x1b[4l"
PASSTHROUGH_MODES = ("filtered", "raw")  # output.passthrough in a profile


class TerminalRelay:
    """An OutputSink: `deliver` (which writes stream N to fds[N]) behind a filter
    for each stream whose descriptor is a terminal. `passthrough` is the
    profile's output.passthrough; `interactive` picks the policy for a session
    that owns the terminal."""

    def __init__(self, deliver: OutputSink, fds: Mapping[int, int], passthrough: str, interactive: bool) -> None:
        if passthrough not in PASSTHROUGH_MODES:
            raise ValueError(f"output.passthrough: {passthrough!r} is not one of {', '.join(PASSTHROUGH_MODES)}")
        self._deliver = deliver
        self._reset = RESET if passthrough != "raw" and not interactive else FULL_RESET  # LIVE's: see below
        terminals = [stream for stream, fd in fds.items() if os.isatty(fd)] if passthrough != "raw" else []
        self._filters = {}
        if terminals:  # the filter is imported only for a terminal (~0.7 ms of a run that writes to none)
            from vectraguard.terminal.sequences import LIVE, TERMINAL_OWNER, SequenceFilter

            policy = TERMINAL_OWNER if interactive else LIVE
            self._filters = {stream: SequenceFilter(policy) for stream in terminals}
        self._devices = {stream: _terminal(fd) for stream, fd in fds.items()}
        self._last_byte: dict[int, int] = {}  # terminal device -> the last byte written to it

    def __call__(self, stream: int, data: bytes) -> None:
        kept = self._filters[stream].feed(data) if stream in self._filters else data
        if not kept:
            return
        device = self._devices.get(stream)
        if device is not None:
            self._last_byte[device] = kept[-1]
        self._deliver(stream, kept)

    @contextlib.contextmanager
    def until_end(self) -> Iterator[None]:
        """end() when the block is left, however it is left."""
        try:
            yield
        finally:
            self.end()

    def end(self, message_fd: int = 2) -> None:
        """The sandbox's output is over: drop unfinished sequences, then reset
        attributes and finish the line on `message_fd` if it is a terminal."""
        for sequence_filter in self._filters.values():
            sequence_filter.end()
        device = _terminal(message_fd)
        if device is None:
            return
        last = self._last_byte.get(device)
        _write_all(message_fd, self._reset + (b"\n" if last is not None and last != ord("\n") else b""))


def _terminal(fd: int | None) -> int | None:
    """The terminal device behind `fd` (so stdout and stderr on one terminal
    share their last byte), or None when it is no terminal."""
    if fd is None or not os.isatty(fd):
        return None
    try:
        return os.fstat(fd).st_rdev
    except OSError:
        return None


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # the terminal is gone: there is no line to clean
