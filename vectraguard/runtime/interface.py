"""The one interface every way of running a sandbox implements.

`commands/run.py` prepares a run (resolve, check, compile: sandbox/compile.py
gives the ContainerSpec, pure), records it, and hands it to a SandboxRuntime:
the Podman runtime (runtime/podman_runtime.py: isolation `container` and
`gvisor`) or the engine-less one (lite/runtime.py: isolation `lite`). Both
consume the same spec; everything above them — policy, approvals, audit,
output capture, egress, workspaces — is shared.

A runtime starts the sandbox, stops it before its command runs to let the
caller check it (`before_start`, given a SandboxView), runs the command with
the caller's streams, enforces the timeout, and returns a RunResult.
`release` runs after the outcome is recorded (the Podman runtime removes
the stopped container then, in a detached process).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from vectraguard.records import record
from vectraguard.runtime.attach import OutputSink
from vectraguard.runtime.outcome import RunResult
from vectraguard.sandbox.spec import ContainerSpec

ALL_OPTIONS = frozenset({"ro", "nosuid", "nodev"})  # what a runc container's mount table enforces


class SandboxView(NamedTuple):
    """What the caller is shown of a sandbox that is set up and has not run its command yet."""

    mount_pid: int  # a host process whose /proc/PID/root and mountinfo are the sandbox's (sandbox/held.py)
    # The per-mount options of its mount table that protect the sandbox, and so are checked before the
    # command runs: ro, nosuid, nodev (runc through Podman); ro only (Docker: its API gives binds no
    # nosuid/nodev); none (gVisor: its own file proxy protects it, isolation/views.py).
    checked_options: frozenset[str]
    listeners: tuple[socket.socket, ...]  # bound inside, on the sandbox's loopback, as SessionRequest.listen asked
    netns_pid: int = 0  # a host process in the sandbox's network namespace (published ports); 0: none to enter


@record
class SessionRequest:
    """One session to run. Times are seconds."""

    spec: ContainerSpec
    timeout: float  # wall clock for the command; then TERM, `kill_grace`, KILL
    kill_grace: float
    stdin_fd: int | None  # copied into the sandbox; None: it reads end-of-file
    sink: OutputSink  # every chunk of its stdout (1) and stderr (2), or of its terminal (1)
    tty_fd: int | None  # with spec.terminal: the caller's terminal (window size follows it)
    before_start: Callable[[SandboxView], None]  # raises to refuse: nothing runs, the sandbox goes
    listen: tuple[tuple[str, int], ...] = ()  # IPv4 address, port: listeners wanted inside (egress)
    # Overlay workspaces only (Podman): called with the created container's
    # inspect document before it is initialised.
    after_create: Callable[[dict[str, Any]], None] | None = None


class SandboxRuntime(Protocol):
    """A way to run sandboxes (above). Errors: errors.VGError subclasses, the sandbox gone."""

    name: str  # recorded: "podman" | "lite"

    def run(self, request: SessionRequest) -> RunResult: ...

    def release(self, result: RunResult, session_id: str) -> None:
        """After the outcome is recorded: whatever is left of the sandbox goes."""
