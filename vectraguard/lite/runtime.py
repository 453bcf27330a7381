"""The `lite` runtime: a SandboxRuntime (runtime/interface.py) with no
container engine — bubblewrap and Vectra Guard's init (bwrap_argv.py).

One session:

1. open every host object the sandbox gets (held mount sources, the
   image's top-level entries, its /etc/hosts, the init, the seccomp filter)
   and a control socket; rootful, make its cgroup (cgroup.py);
2. start bwrap in a session of its own (terminal signals reach us, and we
   stop the sandbox ourselves), as the system user support.SANDBOX_USER
   when rootful; its init binds the egress listeners and sends them back
   with `R`; the kernel attaches the init's pid, as we see it
   (SCM_CREDENTIALS), to that message;
3. with the init blocked: move it into the cgroup (what it starts is born
   there), let the caller check the mounts through /proc/PID/root
   (`before_start`), then send `G`; the init locks itself down and
   executes the command; `E` + errno on the control socket means the
   exec failed;
4. pump the streams until they end, the deadline passes (TERM, grace,
   KILL) or a signal arrives; bwrap's status is the command's (128+N for
   signal N); a SIGKILL with the cgroup's OOM counter up is `oom`;
5. on every path: bwrap killed if still there (its `--die-with-parent`
   and the pid namespace take the rest), the cgroup emptied and removed,
   every descriptor closed.
"""

from __future__ import annotations

import array
import errno
import os
import signal
import socket
import struct
import subprocess
import time
from contextlib import ExitStack
from typing import Any

from vectraguard import diag, errors
from vectraguard.lite import bwrap_argv, support
from vectraguard.lite.plan import LitePlan
from vectraguard.lite.streams import Streams
from vectraguard.runtime.host import HostFacts
from vectraguard.runtime.interface import ALL_OPTIONS, SandboxView, SessionRequest
from vectraguard.runtime.outcome import RunResult, signals_deferred
from vectraguard.sandbox.held import Expected
from vectraguard.sandbox.spec import LABEL_SESSION, ContainerSpec

HANDSHAKE_S = 30.0  # bwrap sets up in milliseconds; a sandbox not ready by then is not coming
FINAL_DRAIN_S = 10.0
_O_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


class LiteRuntime:
    name = "lite"

    def __init__(self, facts: HostFacts, plan: LitePlan, expected: tuple[Expected, ...]) -> None:
        self.facts, self.plan = facts, plan
        self.sources = {item.target: item.held for item in expected}

    def release(self, result: RunResult, session_id: str) -> None:
        """The session removed everything before returning; rootful, the
        cgroups a killed Vectra Guard left (their processes ended with its
        bwrap: --die-with-parent) go too."""
        if not self.facts.rootless:
            from vectraguard.lite import cgroup

            cgroup.reap_stale(mode=self.facts.cgroup_mode, kill=True)

    def run(self, request: SessionRequest) -> RunResult:
        spec = request.spec
        with signals_deferred() as interrupts, ExitStack() as stack:
            fds = self._open(spec, stack)
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            stack.callback(parent.close)
            parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            streams = Streams(request.stdin_fd, spec.terminal)
            stack.callback(streams.close)
            cgroup = self._cgroup(spec, stack)
            fds = _with_control(fds, child.fileno(), os.ttyname(streams.child[0]) if spec.terminal else "")
            try:
                line = bwrap_argv.argv(spec, self.plan, fds, request.listen, support.BWRAP)
            except ValueError as exc:
                raise errors.IsolationUnavailable(f"vectraguard: {exc}; nothing ran",
                                                  hint="use isolation container") from None
            process = self._start(line, fds, streams)
            child.close()
            streams.close_child()
            stack.callback(_end, process)  # first on the way out: bwrap, then the cgroup's leftovers
            pid, listeners = _handshake(parent, len(request.listen), process, streams)
            try:
                if cgroup is not None:
                    cgroup.add(pid)
                if interrupts.received is not None:
                    raise _Interrupted(interrupts.received)
                request.before_start(SandboxView(pid, ALL_OPTIONS, tuple(listeners)))
            except _Interrupted as stop:
                for listener in listeners:
                    listener.close()
                return RunResult(errors.EXIT_SIGNAL_BASE + stop.signum, "interrupted", "", stop.signum,
                                 image_id=self.plan.image_id)
            except BaseException:
                for listener in listeners:
                    listener.close()
                raise
            parent.sendall(b"G")
            return _supervise(request, process, pid, parent, streams, interrupts, cgroup, self.plan.image_id)

    def _open(self, spec: ContainerSpec, stack: ExitStack) -> bwrap_argv.Fds:
        def keep(fd: int) -> int:
            stack.callback(os.close, fd)
            return fd

        root = keep(os.open(self.plan.root, _O_PATH | os.O_DIRECTORY))
        entries = {e.name: keep(os.open(e.name, _O_PATH, dir_fd=root)) for e in self.plan.entries
                   if e.kind != "symlink"}
        binds = {}
        for bind in spec.binds:
            source = self.sources.get(bind.target)
            if source is None:  # only an overlay has no held source, and lite refuses overlays (limits.py)
                raise errors.IsolationUnavailable(f"vectraguard: isolation lite: no checked source for {bind.target}")
            binds[bind.target] = source.fd
        hosts = keep(_hosts_file(spec))
        empty = tuple(keep(os.memfd_create("vectraguard-empty", os.MFD_CLOEXEC)) for _ in bwrap_argv.PROC_COVERED)
        return bwrap_argv.Fds(entries, binds, hosts, keep(os.open(self.plan.init_path, os.O_PATH | os.O_CLOEXEC)),
                              keep(os.open(self.plan.bpf_path, os.O_RDONLY | os.O_CLOEXEC)), -1, empty=empty)

    def _cgroup(self, spec: ContainerSpec, stack: ExitStack) -> Any:
        if self.facts.rootless or (spec.memory is None and spec.pids is None and spec.cpus is None):
            return None
        from vectraguard.lite import cgroup

        group = cgroup.SandboxCgroup.create(spec.labels.get(LABEL_SESSION, str(os.getpid())), memory=spec.memory,
                                            pids=spec.pids, cpus=spec.cpus, mode=self.facts.cgroup_mode)
        stack.callback(group.remove)
        stack.callback(group.kill_all)
        for note in group.notes:  # what the kernel cannot give and the profile did not insist on
            diag.warning(note)
        return group

    def _start(self, line: list[str], fds: bwrap_argv.Fds, streams: Streams) -> subprocess.Popen[bytes]:
        inherited = sorted({*fds.entries.values(), *fds.binds.values(), fds.hosts, fds.init, fds.bpf, fds.control,
                            *fds.empty})
        user: dict[str, Any] = {}
        if self.plan.run_as is not None:
            uid, gid = self.plan.run_as
            user = {"user": uid, "group": gid, "extra_groups": []}
        stdin, stdout, stderr = streams.child
        try:
            return subprocess.Popen(line, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=inherited, env={},
                                    start_new_session=True, close_fds=True, **user)
        except OSError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: cannot start bubblewrap ({support.BWRAP}): "
                                            f"{exc.strerror}", hint="`vectraguard doctor` checks isolation lite") \
                from None


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _with_control(fds: bwrap_argv.Fds, control: int, tty: str) -> bwrap_argv.Fds:
    from vectraguard.records import replace

    return replace(fds, control=control, tty=tty)


def _hosts_file(spec: ContainerSpec) -> int:
    """The sandbox's /etc/hosts as an anonymous file for bwrap to copy (never on disk)."""
    fd = os.memfd_create("vectraguard-hosts", os.MFD_CLOEXEC)
    os.write(fd, spec.render_hosts().encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _handshake(parent: socket.socket, listeners: int, process: subprocess.Popen[bytes],
               streams: Streams) -> tuple[int, list[socket.socket]]:
    """The init's `R`: its pid (as the kernel gave it) and the listeners it bound."""
    parent.settimeout(HANDSHAKE_S)
    fd_size = array.array("i").itemsize
    try:
        message, ancillary, _, _ = parent.recvmsg(
            1, socket.CMSG_SPACE(max(listeners, 1) * fd_size) + socket.CMSG_SPACE(_UCRED.size))
    except TimeoutError:
        raise errors.RuntimeUnavailable(f"vectraguard: the lite sandbox was not ready after {HANDSHAKE_S:g} s; "
                                        "nothing ran") from None
    received, pid = array.array("i"), 0
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received.frombytes(data[: len(data) - len(data) % fd_size])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _, _ = _UCRED.unpack(data[:_UCRED.size])
    sockets = [socket.socket(fileno=fd) for fd in received]
    if message != b"R" or len(sockets) != listeners or pid <= 0:
        for sock in sockets:
            sock.close()
        detail = _failure(message, parent, process, streams)
        raise errors.RuntimeUnavailable(f"vectraguard: the lite sandbox could not be set up; nothing ran: {detail}",
                                        hint="`vectraguard doctor` checks isolation lite")
    parent.settimeout(None)
    return pid, sockets


def _failure(message: bytes, parent: socket.socket, process: subprocess.Popen[bytes], streams: Streams) -> str:
    """What bwrap or the init said when the set-up failed."""
    text = b""
    if message.startswith(b"F"):
        parent.settimeout(2)
        try:
            while chunk := parent.recv(4096):
                text += chunk
        except OSError:
            pass
        return (message[1:] + text).decode(errors="replace").strip() or "the init failed"
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
    said = []
    for fd in list(streams.outputs):
        try:
            said.append(os.read(fd, 4096))
        except OSError:
            pass
    return b" ".join(part.strip() for part in said if part.strip()).decode(errors="replace") or \
        f"bubblewrap exited with status {process.returncode}"


def _supervise(request: SessionRequest, process: subprocess.Popen[bytes], pid: int, control: socket.socket,
               streams: Streams, interrupts: Any, cgroup: Any, image_id: str) -> RunResult:
    exec_error: list[int] = []
    lockdown: list[bytes] = []
    watched: dict[int, Any] = {}

    def from_init() -> None:
        try:
            data = control.recv(4096)
        except OSError:
            data = b""
        if data.startswith(b"E") and len(data) >= 5:
            exec_error.append(struct.unpack("i", data[1:5])[0])
        elif data.startswith(b"F"):
            lockdown.append(data[1:])
        if not data:
            watched.pop(control.fileno(), None)

    watched[control.fileno()] = from_init
    if request.tty_fd is not None:
        _resize(streams, request.tty_fd)
    deadline = time.monotonic() + request.timeout
    while True:
        outcome = streams.pump(request.sink, deadline, interrupts.read_fd,
                               lambda: interrupts.received is not None or interrupts.resized, watched)
        if outcome == "stop" and interrupts.received is None:
            interrupts.resized = False
            if request.tty_fd is not None:
                _resize(streams, request.tty_fd)
            continue
        break
    if outcome != "eof":
        _stop(process, pid, streams, request, cgroup)
    status = _status(process)
    while control.fileno() in watched:  # the init's last word, if any, is there already
        control.settimeout(1)
        watched[control.fileno()]()
    if lockdown:
        raise errors.RuntimeUnavailable("vectraguard: the lite sandbox could not lock itself down; the command did "
                                        f"not run: {lockdown[0].decode(errors='replace').strip()}",
                                        hint="`vectraguard doctor` checks isolation lite")
    if outcome == "deadline":
        return RunResult(errors.EXIT_TIMEOUT, "timeout", "", image_id=image_id)
    if outcome == "stop":
        signum = interrupts.received
        return RunResult(errors.EXIT_SIGNAL_BASE + signum, "interrupted", "", signum, image_id=image_id)
    if exec_error:
        missing = exec_error[0] == errno.ENOENT
        return RunResult(errors.EXIT_NOT_FOUND if missing else errors.EXIT_CANNOT_EXECUTE,
                         "not-found" if missing else "cannot-execute", "", image_id=image_id)
    if status == errors.EXIT_SIGNAL_BASE + signal.SIGKILL and cgroup is not None and cgroup.oom_killed():
        return RunResult(status, "oom", "", signal.SIGKILL, image_id=image_id)
    signum = status - errors.EXIT_SIGNAL_BASE if status > errors.EXIT_SIGNAL_BASE else None
    return RunResult(status, "exited", "", signum, image_id=image_id)


def _status(process: subprocess.Popen[bytes]) -> int:
    """bwrap's exit status once its outputs have ended: the command's (bwrap
    gives 128+N for a signal N). Its pid 1 exits with the command, which ends
    the namespace; bwrap follows at once."""
    try:
        code = process.wait(FINAL_DRAIN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return code if code >= 0 else errors.EXIT_SIGNAL_BASE - code


def _stop(process: subprocess.Popen[bytes], pid: int, streams: Streams, request: SessionRequest,
          cgroup: Any) -> None:
    """TERM to the command, its grace period to finish writing, then KILL to
    everything: bwrap (the sandbox's pid 1 goes with it, and the kernel ends
    every process of its pid namespace) and what is left in the cgroup."""
    never = lambda: False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        if streams.pump(request.sink, time.monotonic() + request.kill_grace, read_fd, never) == "eof":
            return
        process.kill()
        if cgroup is not None:
            cgroup.kill_all()
        streams.pump(request.sink, time.monotonic() + FINAL_DRAIN_S, read_fd, never)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def _resize(streams: Streams, tty_fd: int) -> None:
    if streams.master is None:
        return
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(tty_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(streams.master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _end(process: subprocess.Popen[bytes]) -> None:
    """Whatever happened: no bwrap outlives the session."""
    if process.poll() is None:
        process.kill()
        process.wait()
