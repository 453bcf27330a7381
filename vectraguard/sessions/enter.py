"""Running a command in a running sandbox's container, as its own command runs.

The engine's exec API (the session's engine, as its record names it:
runtime/control.py; Podman's and Docker's calls are alike: POST
/containers/{id}/exec, POST /exec/{id}/start — hijacked, multiplexed like
attach —, GET /exec/{id}/json for the exit code) starts the process with the
container's own process settings: its user, capabilities (none),
no_new_privs and seccomp filter (runc exec reuses the container's config;
tests/test_sessions.py and tests/test_sessions_docker.py check them from
inside). What the engine would not give the same is the environment and the working
directory: a sandbox's command gets them from its command file, read by
`vectraguard-entry` (sandbox/entry.py). So the exec'd process is that entry
program too, given the name of a command file of the exec's own
(`exec-<random>`, written into the session's command directory: ours on the
host, read-only inside) with the session's environment and directory and
the exec's argv, and removed when the exec has ended. The session's own file
is only read. (It was rewritten for the exec and put back once the program
seemed to have read it: when Podman dropped the exec session early, the
program read the session's file and ran the session's command again while
the record named the exec's.)

A session without the entry program (not installed when it started), or
started by a version whose program reads only the session's file, is
refused: its environment could not be reproduced exactly, or the exec
would run the session's command.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from vectraguard import errors
from vectraguard.runtime.attach import OutputSink, StreamPump
from vectraguard.runtime.control import SessionControl
from vectraguard.sandbox import entry

POLL_S = 0.01
EXIT_CODE_WITHIN_S = 10.0  # after the stream's end, until the engine reports the exit code


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


class ExecFile:
    """An exec's own command file in the session's command directory (its argv
    with the session's environment and directory) and the FIFO beside it
    (NAME.status) that the entry program writes "exit STATUS" to (and "pid
    PGID", unused: the sandbox could forge it) (contrib/entry/vectraguard-entry.c);
    `remove` when the exec has ended."""

    MAX_REPORT = 4096  # what is read of the FIFO: two short lines are expected

    def __init__(self, run_dir: Path, argv: list[str], session: EntryCommand) -> None:
        self.run_dir, self.name = run_dir, entry.EXEC_PREFIX + secrets.token_hex(8)
        self.session = session
        self.status_fd: int | None = None
        self.report = b""
        try:
            fifo = run_dir / f"{self.name}.status"
            os.mkfifo(fifo, 0o600)
            os.chmod(fifo, 0o622)  # the sandbox's user writes; only we read
            self.status_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            entry.write_command(run_dir, argv, session.env, session.cwd, name=self.name)
        except (OSError, ValueError) as exc:
            self.remove()
            raise errors.RuntimeUnavailable(f"vectraguard: the exec's command file cannot be written in {run_dir} "
                                            f"({exc}): exec is refused") from None

    def read_report(self) -> None:
        """Take what the entry program has written so far (never blocks)."""
        while self.status_fd is not None and len(self.report) < self.MAX_REPORT:
            try:
                chunk = os.read(self.status_fd, self.MAX_REPORT - len(self.report))
            except BlockingIOError:
                return
            if not chunk:
                return
            self.report += chunk

    def reported(self, what: str) -> int | None:
        """The first "WHAT N" line's N (a number 0..2**31), or None."""
        for line in self.report.split(b"\n")[:-1]:  # whole lines only
            word, _, value = line.partition(b" ")
            if word == what.encode() and value.isdigit() and len(value) <= 10 and int(value) < 2**31:
                return int(value)
        return None

    def remove(self) -> None:
        if self.status_fd is not None:
            os.close(self.status_fd)
            self.status_fd = None
        for name in (self.name, f"{self.name}.status"):
            (self.run_dir / name).unlink(missing_ok=True)


def end_group(control: SessionControl, cid: str, user: str, command: ExecFile, within: float = 5.0) -> None:
    """SIGTERM the exec's supervisor (the entry program running `command`), which
    passes it on to the command's process group: `vectraguard-entry --stop NAME`
    exec'd as the sandbox's user (neither engine has a signal for an exec; the
    program finds its supervisor by its command line, needing no shell or `kill`
    in the image, and trusting nothing the sandbox could write). Never raises."""
    try:
        _, sock, initial = start(control, cid, user, [entry.ENTRY_TARGET, "--stop", command.name], False)
        pump = Pump(sock, initial, None, lambda stream, data: None)
        try:
            pump.for_a_while(within)
        finally:
            pump.close()
    except (OSError, errors.VGError):
        pass


def require_argument_protocol(started: dict[str, Any]) -> None:
    """Refuse a session whose entry program reads only the session's own file
    (started by an earlier version: no `sandbox` in its record) or when the
    installed program is such a one (a checkout run against an older install)."""
    program = entry.installed_entry()
    try:
        current = program is not None and entry.ARGUMENT_PROTOCOL in Path(program).read_bytes()
    except OSError:
        current = False
    if "sandbox" not in started or not current:
        raise errors.UsageError("vectraguard: this session's vectraguard-entry cannot be given a command of "
                                "the exec's own (it was started by an earlier version): exec is refused",
                                hint="reinstall Vectra Guard (contrib/install.sh), then start a new session")


def start(control: SessionControl, cid: str, user: str, cmd: list[str],
          with_stdin: bool) -> tuple[str, socket.socket, bytes]:
    """Create and start an exec of `cmd` (the entry program and its arguments); (exec id, stream, bytes read past the header)."""
    return control.exec_start(cid, user, cmd, with_stdin)


class ExecState:
    """What the engine says of one exec session, asked now and then while its
    output flows. Podman may drop a finished exec session soon after it ends
    (seen on 4.3: "no such exec session" right after the stream's end), so
    the exit code is taken whenever an answer has it, not only at the end;
    and only once the exec's process has been seen (a pid), as an exec not
    yet started may report a stale code."""

    def __init__(self, control: SessionControl, exec_id: str) -> None:
        self.control, self.exec_id = control, exec_id
        self.pid = 0
        self.exit_code: int | None = None
        self.gone = False
        self.asked = 0

    def poll(self) -> None:
        if self.exit_code is not None or self.gone:
            return
        self.asked += 1
        state = self.control.exec_status(self.exec_id)
        if state is None:
            return
        if state.gone:
            self.gone = True
            return
        self.pid = self.pid or state.pid
        if self.pid and state.exit_code is not None:
            self.exit_code = state.exit_code

    def interval(self) -> float:
        """Often at first (most execs are short), then every 0.1 s."""
        return POLL_S if self.asked < 100 else 0.1


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


def final_exit_code(state: ExecState, command: ExecFile) -> tuple[int, str]:
    """The exec's exit status once its stream has ended, and where it came from:
    the engine's (its name: "podman", "docker"), else the entry program's report ("entry": the
    sandbox's own processes, the same user, could have written it too);
    RuntimeUnavailable when neither says it (no guess is made)."""
    deadline = time.monotonic() + EXIT_CODE_WITHIN_S
    while True:
        state.poll()
        if state.exit_code is not None:
            return state.exit_code, state.control.name
        command.read_report()
        reported = command.reported("exit")
        if reported is not None:
            return reported, "entry"
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    raise errors.RuntimeUnavailable(f"vectraguard: the command ran, but neither {state.control.name} nor the entry program "
                                    "reports its exit status", hint="run it again, or let the command print its "
                                    "status itself")
