"""The Docker Engine runtime: a SandboxRuntime (runtime/interface.py) over Docker's API (api.py).

One session: create the container (spec.py: its command is `vectraguard-entry
--await`), attach, start — the entry program then waits on the start FIFO, so
nothing of the run's command runs yet — check the started container through
its init's process (before_start: its mounts, its network namespace for the
egress listeners), write the command file and say start; then pump the
streams, enforce the timeout (TERM, the kill grace, KILL), take the exit
status from Docker's wait, and remove the container on every path (the next
run's reaper removes what a killed `vectraguard` left: reap_orphans).

What Docker cannot give was refused before the run was recorded (admit.py:
the user namespace, an overlay workspace, a kept $HOME, a bridge for the
full network); the plan made there (the daemon's facts, the image's VOLUME
paths) makes the create body here as it was recorded.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vectraguard import diag, errors
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.runtime import session_files
from vectraguard.runtime.attach import StreamPump
from vectraguard.runtime.docker.admit import DockerPlan
from vectraguard.runtime.host import HostFacts
from vectraguard.runtime.interface import SessionRequest
from vectraguard.runtime.outcome import RunResult, signals_deferred
from vectraguard.runtime.session import hosts_file, remove, resize
from vectraguard.sandbox import entry
from vectraguard.sandbox.spec import LABEL_SESSION, ContainerSpec

FINAL_DRAIN_S = 10.0
DOCKER_CHECKED_OPTIONS = frozenset({"ro"})
WAIT_TIMEOUT_S = 60.0


class DockerRuntime:
    """One run's Docker side; `plan` is what prepare learnt of the daemon and the image (admit.py)."""

    name = "docker"

    def __init__(self, profile: ResolvedProfile, facts: HostFacts, owner: str, plan: DockerPlan) -> None:
        self.profile, self.facts, self.owner, self.plan = profile, facts, owner, plan
        self.client: Any = None

    def run(self, request: SessionRequest) -> RunResult:
        from vectraguard.runtime.docker.api import DockerError

        if request.after_create is not None:  # admit.py refuses what needs one (overlay); never dropped silently
            raise errors.IsolationUnavailable("vectraguard: this run needs a step between the sandbox's create and "
                                              "its start, which Docker Engine has not; nothing ran")
        self.client = client = self.plan.client
        spec = request.spec
        try:
            return _session(client, spec, request, self._view(request, self.plan.facts.rootless), self.plan)
        except DockerError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: Docker Engine failed during the run: {exc.message}") \
                from None

    def _view(self, request: SessionRequest, rootless: bool) -> Any:
        def check(inspect: dict[str, Any]) -> None:
            from vectraguard.runtime.before_start import show

            pid = int(inspect["State"]["Pid"])
            # The mounts as the kernel has them for the sandbox's first process (/proc/PID/mountinfo):
            # read-only is checked; nosuid/nodev are not Docker's to give binds (spec.py).
            show(request, pid, DOCKER_CHECKED_OPTIONS, pid, rootless)

        return check

    def release(self, result: RunResult, session_id: str) -> None:
        """The container went before `run` returned; what killed runs left goes now (reaper)."""
        from vectraguard.audit.run_audit import record_removal
        from vectraguard.runtime.reaper import reap_orphans

        if self.client is None:
            return
        try:
            reap_orphans(self.client, lambda listed: record_removal(
                str((listed.get("Labels") or {}).get(LABEL_SESSION, "")), str(listed["Id"]), by="reaper"))
        except Exception as exc:  # noqa: BLE001 - the run's outcome stands; the next run reaps again
            diag.debug(f"docker reaper: {exc}")


def _session(client: Any, spec: ContainerSpec, request: SessionRequest, check: Any, plan: DockerPlan) -> RunResult:
    from vectraguard.runtime.docker.api import DockerError

    with signals_deferred() as interrupts, hosts_file(spec) as hosts, _run_dir(spec) as run_dir, \
            _resolv_file(spec) as resolv:
        name = f"vectraguard-{spec.labels.get(LABEL_SESSION, os.getpid())}"
        try:
            body = plan.body(spec, hosts, str(run_dir), resolv)
        except (ValueError, OSError) as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: this run cannot be given to Docker Engine: {exc}; "
                                            "nothing ran", hint="reinstall Vectra Guard (contrib/install.sh), "
                                            "or use --engine podman") from None
        try:
            cid = client.create(body, name=name)
        except DockerError as exc:
            if exc.status == 404:
                raise errors.ImageNotFound(f"vectraguard: image {spec.image} not found in Docker Engine") from None
            raise errors.RuntimeUnavailable(f"vectraguard: Docker Engine refused to create the sandbox: "
                                            f"{exc.message}") from None
        try:
            sock, initial = client.attach(cid)
            try:
                client.start(cid)
                inspected = client.inspect(cid)
                _check_workdir(int(inspected["State"]["Pid"]), spec.workdir)
                check(inspected)  # raises to refuse: nothing of the command has run
                if interrupts.received is not None:
                    return RunResult(errors.EXIT_SIGNAL_BASE + interrupts.received, "interrupted", cid,
                                     interrupts.received)
                entry.write_command(run_dir, spec.command, spec.env, spec.workdir)
                if request.tty_fd is not None:  # before the command starts: it may ask the size once, at once
                    resize(client, cid, request.tty_fd)
                _say_start(run_dir)
                result = _supervise(client, cid, sock, initial, request, interrupts)
                return RunResult(result.exit_status, result.reason, cid, result.signal,
                                 image_id=str(inspected.get("Image", "")))
            finally:
                sock.close()
        finally:
            remove(client, cid)


def _check_workdir(pid: int, workdir: str) -> None:
    """Refuse, as Podman does ("workdir ... does not exist"), a working directory the started sandbox
    lacks: Docker's WorkingDir is "/" (spec.py) so that Docker never makes one in the container or a
    mount, and the entry program changes into the run's (it fails with 126 itself if this cannot tell)."""
    from vectraguard.runtime.inroot import is_directory

    try:
        found = is_directory(pid, workdir)
    except OSError:
        return  # the entry's chdir decides
    if found is False:
        raise errors.RuntimeUnavailable(f"vectraguard: the working directory {workdir} does not exist in the "
                                        "sandbox (or is not a directory); nothing ran",
                                        hint="use --workdir with a directory of the image or of a mount")


def _supervise(client: Any, cid: str, sock: socket.socket, initial: bytes, request: SessionRequest,
               interrupts: Any) -> RunResult:
    tty_fd = request.tty_fd
    pump = StreamPump(sock, initial, request.stdin_fd, request.sink, interrupts.read_fd, raw=tty_fd is not None)
    deadline = time.monotonic() + request.timeout
    if tty_fd is not None:
        resize(client, cid, tty_fd)
    while True:
        outcome = pump.run(deadline, lambda: interrupts.received is not None or interrupts.resized)
        if outcome == "stop" and interrupts.received is None:
            interrupts.resized = False
            if tty_fd is not None:
                resize(client, cid, tty_fd)
            continue
        break
    if outcome != "eof":
        _stop(client, cid, pump, request.kill_grace)
    status = client.wait(cid, WAIT_TIMEOUT_S)
    if outcome == "deadline":
        return RunResult(errors.EXIT_TIMEOUT, "timeout", cid)
    if outcome == "stop" and interrupts.received is not None:
        return RunResult(errors.EXIT_SIGNAL_BASE + interrupts.received, "interrupted", cid, interrupts.received)
    if status == errors.EXIT_SIGNAL_BASE + signal.SIGKILL and client.inspect(cid).get("State", {}).get("OOMKilled"):
        return RunResult(status, "oom", cid, signal.SIGKILL)
    signum = status - errors.EXIT_SIGNAL_BASE if status > errors.EXIT_SIGNAL_BASE else None
    return RunResult(status, "exited", cid, signum)


def _stop(client: Any, cid: str, pump: StreamPump, kill_grace: float) -> None:
    """TERM, let it finish writing for the grace period, then KILL."""
    from vectraguard.runtime.docker.api import DockerError

    never = lambda: False
    for sig, window in (("SIGTERM", kill_grace), ("SIGKILL", FINAL_DRAIN_S)):
        try:
            client.kill(cid, sig)
        except DockerError:
            return  # it has exited in between
        if pump.run(time.monotonic() + window, never) == "eof":
            return


@contextmanager
def _run_dir(spec: ContainerSpec) -> Iterator[Path]:
    """The command file's directory with the start FIFO (sandbox/entry.py), for the session's lifetime."""
    directory = entry.make_run_dir(session_files.entries_dir(), spec.labels.get(LABEL_SESSION, str(os.getpid())))
    fifo = directory / entry.START_FIFO
    try:
        os.mkfifo(fifo, 0o644)
        fifo.chmod(0o644)  # the entry opens it for reading, as whatever uid the sandbox maps to
        yield directory
    finally:
        fifo.unlink(missing_ok=True)
        entry.remove_run_dir(directory)


@contextmanager
def _resolv_file(spec: ContainerSpec) -> Iterator[str]:
    """An empty /etc/resolv.conf for a sandbox with no network (spec.py), beside its hosts file, for the
    session's lifetime."""
    from vectraguard.paths import ensure_hosts_dir

    ensure_hosts_dir()
    path = session_files.resolv_path(spec.labels.get(LABEL_SESSION, str(os.getpid())))
    path.write_bytes(b"")
    path.chmod(0o644)  # readable inside the sandbox, whatever uid it maps to
    try:
        yield str(path)
    finally:
        path.unlink(missing_ok=True)


def _say_start(run_dir: Path) -> None:
    """Open the FIFO for writing (the entry has it open for reading, or will) and say start. Opened
    non-blocking first: ENXIO means no reader yet, so poll briefly with a deadline."""
    fifo = run_dir / entry.START_FIFO
    if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
        raise errors.RuntimeUnavailable("vectraguard: the sandbox's start FIFO is not a FIFO; nothing ran")
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:  # the entry has not opened it yet
                raise errors.RuntimeUnavailable(f"vectraguard: the sandbox did not wait for its start "
                                                f"({exc.strerror}); nothing ran") from None
            time.sleep(0.005)
    try:
        os.write(fd, entry.START_WORD)
    finally:
        os.close(fd)
