"""Running a command in a running sandbox's container, as its own command runs.

Podman's exec API (POST /containers/{id}/exec, POST /exec/{id}/start —
hijacked, multiplexed like attach —, GET /exec/{id}/json for the exit code)
starts the process with the container's own process settings: its user,
capabilities (none), no_new_privs and seccomp filter (runc exec reuses the
container's config; tests/test_sessions.py checks them from inside). What
Podman would not give the same is the environment and the working
directory: a sandbox's command gets them from its command file, read by
`vectraguard-entry` (sandbox/entry.py). So the exec'd process is that entry
program too, reading a command file with the session's own environment and
directory and the exec's argv: written into the session's command directory
(ours on the host, read-only inside) under an exclusive lock, and put back
once the entry program has read it (its process has exec'd the command, or
ended), so two execs never read each other's.

A session without the entry program (not installed when it started) is
refused: its environment could not be reproduced exactly.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vectraguard import errors
from vectraguard.runtime.attach import OutputSink, StreamPump
from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.sandbox import entry

CONSUMED_WITHIN_S = 10.0  # the entry program reads its file at once; past this, something is wrong
POLL_S = 0.01
EXIT_CODE_WITHIN_S = 10.0  # after the stream's end, until Podman reports the exit code


class EntryCommand:
    """The run's command file: (environment, working directory), decoded from its bytes."""

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        self.env, self.cwd = env, cwd


def run_dir_of(inspect: dict[str, Any]) -> Path:
    """The host directory mounted at the entry program's RUN_DIR_TARGET; refusal when there is none."""
    for mount in inspect.get("Mounts") or []:
        if mount.get("Destination") == entry.RUN_DIR_TARGET and mount.get("Source"):
            return Path(str(mount["Source"]))
    raise errors.UsageError("vectraguard: this sandbox was started without vectraguard-entry, so a command cannot "
                            "be given its environment exactly: exec is refused",
                            hint="reinstall Vectra Guard (contrib/install.sh builds the entry program), then start "
                            "a new session")


def decode(data: bytes) -> EntryCommand:
    """The environment and directory of a command file (entry.encode's format); ValueError when malformed."""
    fields = data.split(b"\0")
    if len(fields) < 4 or fields[0] != entry.MAGIC or fields[-1] != b"":
        raise ValueError("not a command file")
    cwd, count = os.fsdecode(fields[1]), int(fields[2])
    env = {}
    for raw in fields[3:3 + count]:
        name, _, value = os.fsdecode(raw).partition("=")
        env[name] = value
    return EntryCommand(env, cwd)


def session_command(run_dir: Path) -> EntryCommand:
    """The session's own environment and directory, from its command file."""
    try:
        return decode((run_dir / entry.COMMAND_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise errors.RuntimeUnavailable(f"vectraguard: the session's command file in {run_dir} cannot be read "
                                        f"({exc}): exec is refused") from None


@contextlib.contextmanager
def command_written(run_dir: Path, argv: list[str]) -> Iterator[tuple[EntryCommand, bytes]]:
    """Lock the session's command directory, write `argv` with the session's
    environment and directory; put the original back on leaving."""
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        original = (run_dir / entry.COMMAND_FILE).read_bytes()
        try:
            session = decode(original)
        except ValueError:
            raise errors.RuntimeUnavailable(f"vectraguard: the session's command file in {run_dir} cannot be "
                                            "read: exec is refused") from None
        entry.write_command(run_dir, argv, session.env, session.cwd)
        try:
            yield session, original
        finally:
            _put_back(run_dir, original)
    finally:
        os.close(fd)


def _put_back(run_dir: Path, original: bytes) -> None:
    temporary = run_dir / f".{entry.COMMAND_FILE}.{os.getpid()}"
    temporary.write_bytes(original)
    temporary.chmod(0o644)
    os.rename(temporary, run_dir / entry.COMMAND_FILE)


def start(client: Libpod, cid: str, user: str, with_stdin: bool) -> tuple[str, socket.socket, bytes]:
    """Create and start the exec of the entry program; (exec id, stream, bytes read past the header)."""
    body = {"AttachStdin": with_stdin, "AttachStdout": True, "AttachStderr": True, "Cmd": [entry.ENTRY_TARGET],
            "User": user, "Tty": False, "Privileged": False}
    try:
        exec_id = str(client.json("POST", f"/containers/{cid}/exec", body=body)["Id"])
    except LibpodError as exc:
        raise errors.RuntimeUnavailable(f"vectraguard: Podman refused the exec: {exc.message}") from None
    sock = client._connect(client.timeout)
    client._send(sock, "POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": False}, upgrade=True)
    status, headers, rest = client._read_head(sock)
    if status not in (101, 200):
        body_text = client._read_body(sock, headers, rest)
        sock.close()
        raise errors.RuntimeUnavailable(f"vectraguard: Podman could not start the exec: {body_text[:500]!r}")
    sock.settimeout(None)
    return exec_id, sock, rest


def consumed(client: Libpod, exec_id: str) -> bool:
    """Whether the exec's entry program has read its file: its process runs
    something else now, or has ended."""
    pid = int(client.json("GET", f"/exec/{exec_id}/json").get("Pid") or 0)
    return pid != 0 and not _is_entry(pid)


def _is_entry(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            first = handle.read().split(b"\0", 1)[0]
    except OSError:
        return False  # ended: it has read the file, or never will
    return first == entry.ENTRY_TARGET.encode()


class Pump:
    """Copies stdin in and the output out until the exec's stream ends, in
    slices when asked (the caller checks something between them)."""

    def __init__(self, sock: socket.socket, initial: bytes, stdin_fd: int | None, sink: OutputSink) -> None:
        self.sock = sock
        self.wake_read, self.wake_write = os.pipe()
        self.pump = StreamPump(sock, initial, stdin_fd, sink, self.wake_read)

    def for_a_while(self, seconds: float) -> bool:
        """Pump for at most `seconds`; True once the stream has ended."""
        return self.pump.run(time.monotonic() + seconds, lambda: False) == "eof"

    def to_the_end(self) -> None:
        self.pump.run(None, lambda: False)

    def close(self) -> None:
        os.close(self.wake_read)
        os.close(self.wake_write)
        self.sock.close()


def exit_code(client: Libpod, exec_id: str) -> int:
    """The exec's exit status, once Podman has it."""
    deadline = time.monotonic() + EXIT_CODE_WITHIN_S
    while True:
        state = client.json("GET", f"/exec/{exec_id}/json")
        if not state.get("Running") and state.get("ExitCode") is not None:
            return int(state["ExitCode"])
        if time.monotonic() >= deadline:
            raise errors.RuntimeUnavailable("vectraguard: Podman did not report the exec's exit status")
        time.sleep(POLL_S)
