"""Running one sandbox session: create, attach, start, pump, wait, remove.

The container is removed on every path out of `run_session` — normal exit,
timeout, Ctrl-C, SIGTERM, SIGHUP, and errors — or, when the caller asks,
left stopped on the paths that return a result, for the caller to remove
once the outcome is recorded (removal.py). Signals only set a flag and
wake the pump, so cleanup always runs in the normal flow, never inside a
signal handler. The exit status comes from conmon's exit file as soon as
the command has exited (exit_file.py), from Podman's wait otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from vectraguard import diag, errors
from vectraguard.records import replace
from vectraguard.runtime import oci
from vectraguard.runtime.attach import OutputSink, StreamPump
from vectraguard.runtime.exit_file import ExitFile
from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.runtime.oom import OomWatch
from vectraguard.runtime.outcome import Interrupts, RunResult, signals_deferred
from vectraguard.runtime.owner import process_identity
from vectraguard.runtime.unix_http import ApiError
from vectraguard.sandbox import entry
from vectraguard.sandbox.spec import LABEL_SESSION, ContainerSpec

FINAL_DRAIN_S = 10.0
KILL_ANSWER_S = 5.0  # a kill Podman has not answered by then is waiting on something: see _signal
WAIT_TIMEOUT_S = 60.0


def run_session(client: Libpod, spec: ContainerSpec, *, timeout: float, kill_grace: float,
                stdin_fd: int | None, sink: OutputSink, cgroup_mode: str,
                before_start: Callable[[dict[str, Any]], None] | None = None, tty_fd: int | None = None,
                after_create: Callable[[dict[str, Any]], None] | None = None,
                leave_container: bool = False, claimed: Claimed | None = None) -> RunResult:
    """`after_create` gets the container's inspect document once it exists and
    before it is initialised (its user-id mapping is known; its mounts are
    not made yet: the overlay workspace is mounted then). `before_start` gets
    the inspect document again once the container is initialised — its
    namespaces and mounts exist, `State.Pid` is its init — and before the
    command runs (to check its mounts and runtime, to plant the network
    listeners); what it raises ends the run, and the container is removed.

    With `leave_container`, a session that ends with a RunResult leaves its
    (stopped) container for the caller to remove — after it has recorded
    the outcome (removal.remove_later); on every other path it is removed
    here, before returning or raising.

    With `claimed` (a pooled container), there is nothing to create: the
    command is written for its entry program, and it is attached to,
    checked (`before_start`) and started like a fresh one; `after_create`
    is not called (a run with something to do there is never pooled). If it
    cannot be attached to, a fresh container is made instead."""
    if claimed is not None:
        try:
            return _session(client, spec, timeout, kill_grace, stdin_fd, sink, cgroup_mode, before_start, tty_fd,
                            after_create, leave_container, claimed)
        except _PooledGone:
            pass  # nothing ran: a cold sandbox instead
    return _session(client, spec, timeout, kill_grace, stdin_fd, sink, cgroup_mode, before_start, tty_fd,
                    after_create, leave_container, None)


class _PooledGone(Exception):
    """The claimed container could not be attached to (it is gone, or not initialised any more)."""


def _session(client: Libpod, spec: ContainerSpec, timeout: float, kill_grace: float, stdin_fd: int | None,
             sink: OutputSink, cgroup_mode: str, before_start: Callable[[dict[str, Any]], None] | None,
             tty_fd: int | None, after_create: Callable[[dict[str, Any]], None] | None, leave_container: bool,
             claimed: Claimed | None) -> RunResult:
    oom = OomWatch()
    returned = False
    with signals_deferred() as interrupts, _own_files(spec, claimed) as (hosts_file, run_dir):
        if claimed is None:
            cid = _create(client, spec, hosts_file, run_dir)
        else:
            cid = claimed.cid
            entry.write_command(Path(claimed.run_dir), spec.command, spec.env, spec.workdir)
        try:
            if claimed is None:
                created = client.inspect(cid)
                # Before init: with the wrong runtime, init itself may fail obscurely.
                oci.verify_runtime(created, spec.oci_runtime)
                if after_create is not None:
                    after_create(created)
            if interrupts.received is not None:
                returned = True
                return RunResult(errors.EXIT_SIGNAL_BASE + interrupts.received, "interrupted", cid, interrupts.received)
            started = _start(client, cid, oom, cgroup_mode, before_start, claimed, spec.oci_runtime, tty_fd)
            if isinstance(started, RunResult):
                returned = True
                return started
            sock, initial, initialised = started
            try:
                result = _supervise(client, cid, sock, initial, stdin_fd, sink, interrupts, timeout, kill_grace, oom,
                                    tty_fd, ExitFile.of(initialised))
            finally:
                sock.close()
            returned = True
            return replace(result, image_id=str(initialised.get("Image", "")), pooled=claimed is not None)
        except LibpodError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: Podman failed during the run: {exc.message}") from None
        finally:
            if not (returned and leave_container):
                remove(client, cid)
            oom.close()


class Claimed(NamedTuple):
    """A pooled container taken for this run (vectraguard/pool/): created and
    initialised already, its command file to be written in `run_dir`. `facts`:
    its inspect document's fields a run needs, as Podman gave them once it
    was initialised; `init`: its init process's PID:STARTTIME then. While
    that process lives, the container is still that initialised one (an init
    is never replaced): no inspect is needed."""

    cid: str
    run_dir: str
    facts: dict[str, Any]
    init: str


@contextmanager
def _own_files(spec: ContainerSpec, claimed: Claimed | None) -> Iterator[tuple[str, str | None]]:
    """The hosts file and command directory a fresh container is made with
    (a pooled one has its own, which go with it: pool/store.py)."""
    if claimed is not None:
        yield "", None
        return
    with hosts_file(spec) as hosts, _run_dir(spec) as run_dir:
        yield hosts, run_dir


@contextmanager
def hosts_file(spec: ContainerSpec) -> Iterator[str]:
    """The sandbox's /etc/hosts, in paths.hosts_dir(), for the session's lifetime."""
    from vectraguard.paths import ensure_hosts_dir
    from vectraguard.runtime import session_files

    ensure_hosts_dir()
    path = session_files.hosts_path(spec.labels.get(LABEL_SESSION, str(os.getpid())))
    path.write_text(spec.render_hosts())
    path.chmod(0o644)  # readable inside the sandbox, whatever uid it maps to
    try:
        yield str(path)
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def _run_dir(spec: ContainerSpec) -> Iterator[str | None]:
    """The directory holding the command file for vectraguard-entry, for the
    session's lifetime; None when the entry program is not used."""
    if spec.entry_path is None:
        yield None
        return
    from vectraguard.runtime import session_files

    directory = entry.make_run_dir(session_files.entries_dir(), spec.labels.get(LABEL_SESSION, str(os.getpid())))
    try:
        entry.write_command(directory, spec.command, spec.env, spec.workdir)
        yield str(directory)
    finally:
        entry.remove_run_dir(directory)


def _create(client: Libpod, spec: ContainerSpec, hosts_file: str, run_dir: str | None) -> str:
    # By name: Podman resolves it to exactly one image, whose ID we learn
    # from the container afterwards. An inspect first would cost a round
    # trip on every run. Podman's create never pulls from a registry.
    try:
        return client.create(spec.to_specgen(hosts_file, run_dir))
    except LibpodError as exc:
        if "image not known" in exc.message:
            raise errors.ImageNotFound(f"vectraguard: image {spec.image} not found") from None
        raise errors.RuntimeUnavailable(f"vectraguard: Podman refused to create the sandbox: {exc.message}") from None


def _start(client: Libpod, cid: str, oom: OomWatch, cgroup_mode: str,
           before_start: Callable[[dict[str, Any]], None] | None, claimed: Claimed | None,
           oci_runtime: str | None, tty_fd: int | None) -> tuple[socket.socket, bytes, dict[str, Any]] | RunResult:
    """Initialise (attach), check (`before_start`), start. The inspect document
    of the initialised container comes back with the stream: its image ID,
    cgroup and conmon are known from then on. A pooled container was
    initialised when it was made: _PooledGone when it cannot be attached to,
    or its init is not the one it was made with (Claimed)."""
    try:
        sock, initial = client.attach(cid)  # initializes the container: its cgroup exists from here
    except LibpodError:
        if claimed is not None:
            raise _PooledGone from None
        raise
    oom.arm_by_convention(cid, cgroup_mode)
    try:
        if claimed is not None:
            pid = int(claimed.facts.get("State", {}).get("Pid") or 0)
            if not claimed.init or process_identity(pid) != claimed.init:
                raise _PooledGone
            initialised = claimed.facts
            oci.verify_runtime(initialised, oci_runtime)
        else:
            initialised = client.inspect(cid)
        cgroup = initialised.get("State", {}).get("CgroupPath")
        if cgroup and not oom.armed:
            oom.arm(cgroup, cgroup_mode)
        if before_start is not None:
            before_start(initialised)
        if tty_fd is not None:  # before the command starts: it may ask the size once, at once (`tput cols`)
            resize(client, cid, tty_fd)
    except BaseException:
        sock.close()
        raise
    try:
        client.start(cid)
    except LibpodError as exc:
        sock.close()
        # Without a working init, the OCI runtime itself reports these.
        if "not found" in exc.message or "no such file" in exc.message.lower():
            return RunResult(errors.EXIT_NOT_FOUND, "not-found", cid)
        if "permission denied" in exc.message.lower():
            return RunResult(errors.EXIT_CANNOT_EXECUTE, "cannot-execute", cid)
        raise errors.RuntimeUnavailable(f"vectraguard: the sandbox failed to start: {exc.message}") from None
    return sock, initial, initialised


def _supervise(client: Libpod, cid: str, sock: socket.socket, initial: bytes, stdin_fd: int | None,
               sink: OutputSink, interrupts: Interrupts, timeout: float, kill_grace: float,
               oom: OomWatch, tty_fd: int | None, exit_file: ExitFile | None) -> RunResult:
    pump = StreamPump(sock, initial, stdin_fd, sink, interrupts.read_fd, raw=tty_fd is not None)
    deadline = time.monotonic() + timeout
    if tty_fd is not None:
        resize(client, cid, tty_fd)
    while True:
        outcome = pump.run(deadline, lambda: interrupts.received is not None or interrupts.resized)
        if outcome == "stop" and interrupts.received is None:
            interrupts.resized = False  # the window changed: follow it, keep going
            if tty_fd is not None:
                resize(client, cid, tty_fd)
            continue
        break
    if outcome != "eof":
        _stop(client, cid, pump, kill_grace)
    # Read now: Podman's cleanup deletes the cgroup shortly after the exit.
    oom_killed = outcome == "eof" and oom.fired()
    # conmon's exit file when the command ended by itself; else, or when the
    # file does not come, Podman's wait (which also waits for its cleanup).
    status = exit_file.read() if outcome == "eof" and exit_file is not None else None
    source = "conmon's exit file"
    if status is None:
        source = "Podman's wait"
        status = client.wait(cid, WAIT_TIMEOUT_S)
    elif status == errors.EXIT_SIGNAL_BASE + signal.SIGKILL and not oom_killed:
        oom_killed = oom.fired()  # the kill may have been counted after the stream ended
    diag.debug(f"exit status {status}, from {source}")
    if outcome == "deadline":
        return RunResult(errors.EXIT_TIMEOUT, "timeout", cid)
    if outcome == "stop" and interrupts.received is not None:
        return RunResult(errors.EXIT_SIGNAL_BASE + interrupts.received, "interrupted", cid, interrupts.received)
    if status == errors.EXIT_SIGNAL_BASE + signal.SIGKILL and (
            oom_killed or client.inspect(cid).get("State", {}).get("OOMKilled")):
        return RunResult(status, "oom", cid, signal.SIGKILL)
    signum = status - errors.EXIT_SIGNAL_BASE if status > errors.EXIT_SIGNAL_BASE else None
    return RunResult(status, "exited", cid, signum)


def resize(client: Any, cid: str, tty_fd: int) -> None:
    """The sandbox's terminal to the caller's window size (either engine's client: `resize(cid, rows, columns)`)."""
    try:
        rows, columns = os.get_terminal_size(tty_fd)[::-1]
        client.resize(cid, rows, columns)
    except (OSError, ApiError):
        pass  # a window that cannot be measured or a container already gone


def _stop(client: Libpod, cid: str, pump: StreamPump, kill_grace: float) -> None:
    """TERM, let it finish writing for the grace period, then KILL."""
    never = lambda: False  # noqa: E731
    for sig, window in (("SIGTERM", kill_grace), ("SIGKILL", FINAL_DRAIN_S)):
        if not _signal(client, cid, sig, pump):
            return  # the stream had to be ended: nothing more to drain
        if pump.run(time.monotonic() + window, never) == "eof":
            return


def _signal(client: Libpod, cid: str, sig: str, pump: StreamPump) -> bool:
    """Send `sig` to the sandbox; False when our end of the attach stream had
    to be closed for Podman to act on it. Now and then on Podman 4.3 a
    SIGTERM'd run hung with its sandbox still running, as if the kill waited
    on the container's lock while the attach session was open (suspected, not
    proven) — so a kill that gets no answer soon ends the stream (its handler
    then lets go) and is asked again."""
    try:
        client.kill(cid, sig, timeout=KILL_ANSWER_S)
        return True
    except LibpodError:
        return True  # it may have exited in between
    except errors.RuntimeUnavailable:
        pump.sock.close()
    try:
        client.kill(cid, sig)
    except LibpodError:
        pass
    return False


def remove(client: Any, cid: str) -> None:
    """Remove the container (either engine's client); a failure is a warning, the next run's reaper retries."""
    try:
        client.remove(cid)
    except ApiError as exc:
        # The run's outcome stands; the next run's reaper retries the removal
        # (this process, the owner, will be gone by then).
        print(f"vectraguard: warning: could not remove sandbox {cid[:12]}: {exc.message}", file=sys.stderr)
