"""What a run does with the pool: take a container from it, and have it
refilled after returning (whether it may use one at all: plan.py)."""

from __future__ import annotations

from vectraguard.pool import store
from vectraguard.pool.plan import Plan
from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.sandbox.spec import ContainerSpec


def take(client: Libpod, spec: ContainerSpec, wanted: Plan, owner: str, session: str = "-") -> store.Entry | None:
    """A ready container for this run, claimed for `owner`; None when there is
    none, or the image its name stands for has changed since (then that
    container is removed). Podman is asked for the image's ID only when its
    image index changed since the container was made (store.Entry)."""
    got = store.claim(wanted.slot, wanted.key, owner, session)
    if got is None:
        return None
    found, _path = got
    if found.images_file and list(found.images_identity or ()) == store.file_identity(found.images_file):
        return found  # no image added, removed or re-tagged since it was made
    try:
        current = client.image_id(spec.image)
    except LibpodError:
        current = ""
    if current and current == found.image_id:
        return found
    drop(client, found)
    return None


def drop(client: Libpod, found: store.Entry) -> None:
    """Remove a claimed container that will not run."""
    try:
        client.remove(found.cid)
    except LibpodError:
        pass  # reaped later by its label
    store.forget(found)


def refill(client: Libpod, spec: ContainerSpec, wanted: Plan) -> None:
    """In the detached process a run leaves, before its container is removed:
    bring the pool back to the size still wanted (plan.still_wanted)."""
    from vectraguard import records
    from vectraguard.pool.fill import fill
    from vectraguard.pool.plan import still_wanted

    size = still_wanted(wanted)
    if size > 0:
        fill(client, spec, records.replace(wanted, size=size))


def forget(used: store.Entry | None) -> None:
    """Once a pooled run's container is gone: its index entry goes too."""
    if used is not None:
        store.forget(used)
