"""Removing containers left behind by a vectraguard that was killed.

SIGKILL gives no chance to clean up; the next run (its detached remover,
removal.py) looks for sandboxes whose owning process is gone and removes
them, and the files made for them, as does `vectraguard sandbox reap`. A container whose removal is
under way (a detached remover holds its lock) is left to that remover.
(Podman's own timeout, set to the profile's timeout plus a margin, stops
such a container even if no run comes.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from vectraguard.runtime import session_files
from vectraguard.runtime.owner import owner_alive
from vectraguard.runtime.removal import pending_locked
from vectraguard.runtime.unix_http import ApiError
from vectraguard.sandbox.spec import LABEL_OWNER, LABEL_SESSION

# The container's listing entry (its labels name the session) -> None: records the removal.
OnReaped = Callable[[dict[str, Any]], None]


class Engine(Protocol):
    """What reaping needs of an engine's client: Libpod, or docker.api.Docker."""

    def list_labelled(self, label: str) -> list[dict[str, Any]]: ...

    def remove(self, cid: str) -> None: ...


def reap_orphans(client: Engine, on_reaped: OnReaped | None = None) -> list[str]:
    """Remove every sandbox whose owner is gone; their IDs."""
    reaped = []
    for container in client.list_labelled(LABEL_OWNER):
        owner = (container.get("Labels") or {}).get(LABEL_OWNER, "")
        if owner_alive(owner) or pending_locked(str(container.get("Id", ""))):
            continue
        try:
            client.remove(container["Id"])
        except ApiError:  # LibpodError or DockerError
            continue
        reaped.append(container["Id"])
        session_files.forget(str((container.get("Labels") or {}).get(LABEL_SESSION, "")))
        if on_reaped is not None:
            on_reaped(container)
    return reaped

