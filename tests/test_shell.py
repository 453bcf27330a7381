"""Interactive sandboxed shells through a real pseudo-terminal, and their recordings."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import Caller

PROMPT = b"$ "


class Terminal:
    """`vectraguard sandbox shell` on the slave side of a pty we hold the master of."""

    live: set[Terminal] = set()

    def __init__(self, caller: Caller, cwd: Path, *extra: str) -> None:
        argv, env = caller.argv(caller.vg(["sandbox", "shell", "-p", "test-untrusted", *extra]))
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes vectraguard, with the pty as its terminal
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        self.resize(24, 80)
        self.seen = b""
        Terminal.live.add(self)

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, pattern: bytes, timeout: float = 30) -> bytes:
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

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.read(self.fd, 65536)  # keep draining so the child never blocks on output
            except OSError:
                pass
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                Terminal.live.discard(self)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError("vectraguard sandbox shell did not end")


@pytest.fixture(autouse=True)
def _hang_up_leftovers() -> Iterator[None]:
    """A failed test must not leave its shell (and sandbox) running."""
    yield
    for term in list(Terminal.live):
        try:
            os.kill(term.pid, signal.SIGHUP)
            term.wait()
        except (OSError, AssertionError):
            pass


def test_an_interactive_session_prompt_resize_ctrl_c_and_exit_status(root: Caller, workspace: Path) -> None:
    before = set(root.sandboxes())
    term = Terminal(root, workspace)
    term.expect(PROMPT)
    term.send(b"echo hello-$((40+2))\r")
    term.expect(b"hello-42")
    term.send(b"stty size\r")
    term.expect(b"24 80")
    term.resize(33, 101)
    time.sleep(0.5)
    term.send(b"stty size\r")
    term.expect(b"33 101")
    term.send(b"sleep 100\r")
    time.sleep(1)
    term.send(b"\x03")  # Ctrl-C: to the sleeping program inside, not to vectraguard
    term.expect(PROMPT)
    term.send(b"echo still-here\r")
    term.expect(b"still-here")
    term.send(b"exit 3\r")
    assert term.wait() == 3
    assert set(root.sandboxes()) == before
    rows = json.loads(root.run(["logs", "list", "--json", "--limit", "1"], cwd=workspace).stdout)
    assert (rows[0]["status"], rows[0]["exit"]) == ("failed", 3)


def test_hang_up_ends_the_session_and_removes_the_sandbox(root: Caller, workspace: Path) -> None:
    before = set(root.sandboxes())
    term = Terminal(root, workspace)
    term.expect(PROMPT)
    os.kill(term.pid, signal.SIGHUP)  # what closing the terminal window sends
    assert term.wait() == 129
    assert set(root.sandboxes()) == before


def test_tiocsti_cannot_reach_the_outer_terminal(root: Caller, workspace: Path) -> None:
    term = Terminal(root, workspace)
    term.expect(PROMPT)
    # vgprobe tries TIOCSTI (also with high bits set) and TIOCLINUX on a terminal.
    term.send(b"vgprobe syscalls | tr ',' '\\n' | grep -E 'tiocsti|tioclinux'; echo END-$((1+1))\r")
    out = term.expect(b"END-2")
    assert out.count(b'"EPERM"') == 3, out
    # And the only terminal the sandbox holds is its own (a devpts of its own), never ours.
    term.send(b"readlink /proc/self/fd/0; ls /dev/pts | tr '\\n' ' '; echo END-$((2+1))\r")
    out = term.expect(b"END-3")
    assert b"/dev/pts/0" in out
    term.send(b"exit\r")
    assert term.wait() == 0


def test_without_a_terminal_it_says_so(root: Caller, workspace: Path) -> None:
    result = root.run(["sandbox", "shell", "-p", "test-untrusted"], cwd=workspace)
    assert result.returncode == 125
    assert result.stderr.decode().startswith("vectraguard: sandbox shell needs a terminal on stdin and stdout")


def test_the_session_is_recorded_as_asciicast_and_replays(root: Caller, workspace: Path) -> None:
    term = Terminal(root, workspace)
    term.expect(PROMPT)
    term.send(b"echo recorded-$((6*7))\r")
    term.expect(b"recorded-42")
    term.send(b"exit\r")
    assert term.wait() == 0
    rows = json.loads(root.run(["logs", "list", "--json", "--limit", "1"], cwd=workspace).stdout)
    shown = json.loads(root.run(["logs", "show", rows[0]["id"], "--json"], cwd=workspace).stdout)
    recording = shown["events"][-1]["recording"]
    lines = Path(recording["path"]).read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 80 and header["height"] == 24
    events = [json.loads(line) for line in lines[1:]]
    assert all(isinstance(t, float) and kind == "o" and isinstance(text, str) for t, kind, text in events)
    assert [t for t, _, _ in events] == sorted(t for t, _, _ in events)
    assert "recorded-42" in "".join(text for _, _, text in events)
    assert Path(recording["path"]).stat().st_mode & 0o777 == 0o600
    replay = root.run(["logs", "replay", rows[0]["id"], "--speed", "1000"], cwd=workspace)
    assert replay.returncode == 0 and b"recorded-42" in replay.stdout
