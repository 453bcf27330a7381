"""The moment before a sandbox's command runs, for every engine: its egress listeners planted in its
network namespace, and the caller shown the set-up sandbox (SessionRequest.before_start), which may
refuse it; the listeners are closed again if it does."""

from __future__ import annotations

import socket

from vectraguard import errors
from vectraguard.runtime.interface import SandboxView, SessionRequest


def show(request: SessionRequest, mount_pid: int, checked_options: frozenset[str], netns_pid: int,
         rootless: bool) -> None:
    """`mount_pid`: a host process whose /proc/PID/root and mountinfo are the sandbox's; `checked_options`:
    SandboxView's; `netns_pid`: one in its network namespace (its init). Raises what before_start raises:
    nothing may run then."""
    listeners: tuple[socket.socket, ...] = ()
    if request.listen:
        listeners = plant(netns_pid, list(request.listen), rootless)
    try:
        request.before_start(SandboxView(mount_pid, checked_options, listeners, netns_pid))
    except BaseException:
        for listener in listeners:
            listener.close()
        raise


def plant(pid: int, endpoints: list[tuple[str, int]], rootless: bool) -> tuple[socket.socket, ...]:
    """Listeners bound inside the network namespace of the container whose init is `pid` (network/plant.py)."""
    from vectraguard.network.plant import listen_in, listen_in_rootless

    try:
        return tuple((listen_in_rootless if rootless else listen_in)(pid, endpoints))
    except OSError as exc:
        raise errors.RuntimeUnavailable(
            f"vectraguard: could not install the egress proxy in the sandbox ({exc.strerror}); nothing ran",
            hint="see `vectraguard doctor`; rootless, `podman unshare` must work for you") from None
