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

import fcntl
import os
import socket
import time
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


class WrittenCommand:
    """The session's command directory, locked, its file holding an exec's
    argv with the session's environment and directory until `release`."""

    def __init__(self, run_dir: Path, argv: list[str]) -> None:
        self.run_dir = run_dir
        self.fd: int | None = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.original = (run_dir / entry.COMMAND_FILE).read_bytes()
            session = decode(self.original)
            entry.write_command(run_dir, argv, session.env, session.cwd)
        except (OSError, ValueError) as exc:
            self.release()
            raise errors.RuntimeUnavailable(f"vectraguard: the session's command file in {run_dir} cannot be "
                                            f"used ({exc}): exec is refused") from None

    def release(self) -> None:
        """Put the session's own file back and unlock; safe to call again."""
        if self.fd is None:
            return
        try:
            if hasattr(self, "original"):
                _put_back(self.run_dir, self.original)
        finally:
            os.close(self.fd)
            self.fd = None


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


class ExecState:
    """What Podman says of one exec session, asked now and then while its
    output flows. Podman may drop a finished exec session soon after it ends
    (seen on 4.3: "no such exec session" right after the stream's end), so
    the exit code is taken whenever an answer has it, not only at the end."""

    def __init__(self, client: Libpod, exec_id: str) -> None:
        self.client, self.exec_id = client, exec_id
        self.pid = 0
        self.exit_code: int | None = None
        self.gone = False
        self.asked = 0

    def poll(self) -> None:
        if self.exit_code is not None or self.gone:
            return
        self.asked += 1
        try:
            state = self.client.json("GET", f"/exec/{self.exec_id}/json")
        except LibpodError as exc:
            # Podman 4.3 answers 404, or 500 "container ... does not exist in database" while it drops the session.
            if exc.status != 404 and "does not exist in database" not in exc.message:
                raise errors.RuntimeUnavailable(f"vectraguard: Podman failed during the exec: {exc.message}") from None
            self.gone = True
            return
        self.pid = self.pid or int(state.get("Pid") or 0)
        if self.pid and not state.get("Running") and state.get("ExitCode") is not None:
            self.exit_code = int(state["ExitCode"])

    def consumed(self) -> bool:
        """Whether the entry program has read its file: its process runs something else now, or has ended."""
        return self.gone or self.exit_code is not None or (self.pid != 0 and not _is_entry(self.pid))

    def interval(self) -> float:
        """Often at first (most execs are short), then every 0.1 s."""
        return POLL_S if self.asked < 100 else 0.1


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


def final_exit_code(state: ExecState) -> int:
    """The exec's exit status once its stream has ended; RuntimeUnavailable
    when Podman dropped the session before saying it (no guess is made:
    its events do not name the exec session)."""
    deadline = time.monotonic() + EXIT_CODE_WITHIN_S
    while state.exit_code is None and not state.gone:
        state.poll()
        if state.exit_code is None and time.monotonic() >= deadline:
            break
        time.sleep(0 if state.exit_code is not None else POLL_S)
    if state.exit_code is None:
        raise errors.RuntimeUnavailable("vectraguard: the command ran, but Podman no longer reports its exit status "
                                        "(it dropped the exec session as soon as it ended)",
                                        hint="run it again, or let the command print its status itself")
    return state.exit_code
