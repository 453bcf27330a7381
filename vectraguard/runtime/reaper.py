"""Removing containers left behind by a vectraguard that was killed.

SIGKILL gives no chance to clean up; the next run looks for sandboxes whose
owning process is gone and removes them. (Podman's own timeout, set to the
profile's timeout plus a margin, stops such a container even if no run
comes.)
"""

from __future__ import annotations

from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.runtime.owner import owner_alive
from vectraguard.sandbox.spec import LABEL_OWNER


def reap_orphans(client: Libpod) -> list[str]:
    reaped = []
    for container in client.list_labelled(LABEL_OWNER):
        owner = (container.get("Labels") or {}).get(LABEL_OWNER, "")
        if owner_alive(owner):
            continue
        try:
            client.remove(container["Id"])
        except LibpodError:
            continue
        reaped.append(container["Id"])
    return reaped
