"""What the session commands (`ps`, `exec`; vectraguard/sessions/) need of a container engine, for a
sandbox that is running: one small interface, implemented by each engine's own module —
runtime/podman_control.py (Podman's libpod API) and runtime/docker/control.py (Docker Engine's API).

A session's `started` record names the engine that runs it (`engine`: "podman" | "docker"; records
written before there was a second engine have none, and were Podman's). `for_engine` gives that
engine's control, connected; everything above it (finding the session's container by its labels,
the exec's command file, status reporting and supervision, the gate, the audit) is shared.

Shapes (both engines' APIs give them alike, which is why they are passed through):
- a listing entry: {"Id": str, "Labels": {str: str}, "State": "running" | ...} (GET /containers/json);
- an inspect document: {"Config": {"User": str}, "Mounts": [{"Source": str, "Destination": str}, ...]}
  (GET /containers/{id}/json).
Errors: errors.RuntimeUnavailable (exit 125) when the engine cannot be reached or refuses;
errors.UsageError when the container is gone.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol


class ExecStatus(NamedTuple):
    """What the engine says of one exec now."""

    pid: int  # its process on the host; 0 while not known
    exit_code: int | None  # once it has ended
    gone: bool = False  # the engine no longer knows the exec (Podman drops finished ones early)


class SessionControl(Protocol):
    """A running sandbox's engine, as `ps` and `exec` use it (module docstring)."""

    name: str  # "podman" | "docker", as the started record says

    def list_labelled(self, label: str) -> list[dict[str, Any]]:
        """Every container with `label`, running or not (listing entries)."""

    def inspect(self, cid: str) -> dict[str, Any]:
        """The container's inspect document; UsageError when it is gone."""

    def usage(self, cids: list[str]) -> dict[str, tuple[int | None, int | None]]:
        """Container ID -> (CPU time used so far in nanoseconds, memory charged to its cgroup in bytes,
        page cache included), from the engine's stats API; missing or None where it has no answer."""

    def exec_start(self, cid: str, user: str, cmd: list[str], with_stdin: bool) -> tuple[str, socket.socket, bytes]:
        """Create and start an exec of `cmd` as `user`, without a terminal: (exec id, the hijacked stream —
        multiplexed stdout/stderr frames, as attach —, bytes read past the answer's head)."""

    def exec_status(self, exec_id: str) -> ExecStatus | None:
        """The exec's state; None when the engine is between answers (ask again)."""


class ClientControl:
    """What both engines' clients (runtime/libpod.Libpod, runtime/docker/api.Docker) give alike: listing
    and inspecting; each engine's control adds the rest."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def list_labelled(self, label: str) -> list[dict[str, Any]]:
        return self.client.list_labelled(label)  # type: ignore[no-any-return]

    def inspect(self, cid: str) -> dict[str, Any]:
        from vectraguard import errors
        from vectraguard.runtime.unix_http import ApiError

        try:
            return self.client.inspect(cid)  # type: ignore[no-any-return]
        except ApiError as exc:  # LibpodError or DockerError
            raise errors.UsageError(f"vectraguard: the sandbox is gone: {exc.message}") from None


def engine_of(started: Mapping[str, Any]) -> str:
    """The engine a session's `started` record names ("podman" when it names none: written before Docker)."""
    return str(started.get("engine") or "podman")


def for_engine(name: str) -> SessionControl:
    """The control of engine `name`, connected; RuntimeUnavailable when it cannot be reached or is not one."""
    from vectraguard import errors

    if name == "docker":
        from vectraguard.runtime.docker.control import DockerControl

        return DockerControl.connect()
    if name == "podman":
        from vectraguard.runtime.podman_control import PodmanControl

        return PodmanControl.connect()
    raise errors.RuntimeUnavailable(f"vectraguard: the session was run by engine {name!r}, which this version "
                                    "does not know", hint="use the version of Vectra Guard that started it")
