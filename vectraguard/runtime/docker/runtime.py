"""The Docker Engine runtime: a SandboxRuntime (runtime/interface.py) over Docker's API (api.py).

One session: create the container (spec.py: its command is `vectraguard-entry
--await`), attach, start — the entry program then waits on the start FIFO, so
nothing of the run's command runs yet — check the started container through
its init's process (before_start: its mounts, its network namespace for the
egress listeners), write the command file and say start; then pump the
streams, enforce the timeout (TERM, the kill grace, KILL), take the exit
status from Docker's wait, and remove the container on every path (the next
run's reaper removes what a killed `vectraguard` left: reap_orphans).

The user namespace: Docker has no per-container one; without the daemon's
userns-remap (rootful) the sandbox's uid is the same uid on the host, so the
run is refused unless the profile accepts `engine.userns: shared`, which is
then said on every run. A rootless daemon (rootlesskit) runs in a user
namespace of its caller's ids, as rootless Podman does.
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
from vectraguard.paths import runtime_dir
from vectraguard.runtime.attach import StreamPump
from vectraguard.runtime.host import HostFacts
from vectraguard.runtime.interface import SessionRequest
from vectraguard.runtime.outcome import RunResult, signals_deferred
from vectraguard.runtime.session import hosts_file, remove, resize
from vectraguard.sandbox import entry
from vectraguard.sandbox.spec import LABEL_SESSION, ContainerSpec

FINAL_DRAIN_S = 10.0
DOCKER_CHECKED_OPTIONS = frozenset({"ro"})
WAIT_TIMEOUT_S = 60.0
USERNS_FIX = ('start dockerd with --userns-remap=default (or "userns-remap": "default" in '
              "/etc/docker/daemon.json), or accept the same uids with engine.userns: shared in the profile")


class DockerRuntime:
    """One run's Docker side."""

    name = "docker"

    def __init__(self, profile: ResolvedProfile, facts: HostFacts, owner: str) -> None:
        self.profile, self.facts, self.owner = profile, facts, owner
        self.client: Any = None

    def run(self, request: SessionRequest) -> RunResult:
        from vectraguard.runtime.docker import daemon
        from vectraguard.runtime.docker.api import DockerError

        self.client = client = daemon.connect()
        found = daemon.facts(client)
        self._check_userns(found)
        spec = request.spec
        if spec.network != "none":
            _check_bridge(client)
        try:
            return _session(client, spec, request, self._view(request, found.rootless))
        except DockerError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: Docker Engine failed during the run: {exc.message}") \
                from None

    def _check_userns(self, found: Any) -> None:
        if found.rootless or found.userns_remap:
            return
        if self.profile.engine_userns != "shared":
            raise errors.IsolationUnavailable(
                "vectraguard: this Docker daemon has no userns-remap, so the sandbox's uid would be the same uid "
                "on the host (root's files and processes among them); nothing ran", hint=USERNS_FIX)
        diag.notice("vectraguard: warning: engine.userns: shared: the sandbox's uids are this host's own "
                    "(Docker without userns-remap)")  # -q leaves it out (diag.py)

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


def _check_bridge(client: Any) -> None:
    """network full is Docker's default bridge: a daemon started without one (--bridge=none, as the test
    daemon of contrib/docker/dockerd.sh is, so as not to touch the host's firewall) cannot give it, and
    Docker would quietly run the container without a network."""
    from vectraguard.runtime.docker.api import DockerError

    try:
        client.json("GET", "/networks/bridge")
    except DockerError as exc:
        if exc.status != 404:
            raise
        raise errors.RuntimeUnavailable(
            "vectraguard: network full on Docker Engine is its bridge network, and this daemon has none "
            "(started with --bridge=none); nothing ran",
            hint="use --network allowlist (it needs no bridge), or start dockerd with its default bridge") from None


def _session(client: Any, spec: ContainerSpec, request: SessionRequest, check: Any) -> RunResult:
    from vectraguard.runtime.docker.api import DockerError
    from vectraguard.runtime.docker.spec import create_body

    with signals_deferred() as interrupts, hosts_file(spec) as hosts, _run_dir(spec) as run_dir:
        name = f"vectraguard-{spec.labels.get(LABEL_SESSION, os.getpid())}"
        try:
            body = create_body(spec, hosts_file=hosts, run_dir=str(run_dir))
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
                check(inspected)  # raises to refuse: nothing of the command has run
                if interrupts.received is not None:
                    return RunResult(errors.EXIT_SIGNAL_BASE + interrupts.received, "interrupted", cid,
                                     interrupts.received)
                entry.write_command(run_dir, spec.command, spec.env, spec.workdir)
                _say_start(run_dir)
                result = _supervise(client, cid, sock, initial, request, interrupts)
                return RunResult(result.exit_status, result.reason, cid, result.signal,
                                 image_id=str(inspected.get("Image", "")))
            finally:
                sock.close()
        finally:
            remove(client, cid)


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
    directory = entry.make_run_dir(runtime_dir() / "entries", spec.labels.get(LABEL_SESSION, str(os.getpid())))
    fifo = directory / entry.START_FIFO
    try:
        os.mkfifo(fifo, 0o644)
        fifo.chmod(0o644)  # the entry opens it for reading, as whatever uid the sandbox maps to
        yield directory
    finally:
        fifo.unlink(missing_ok=True)
        entry.remove_run_dir(directory)


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
