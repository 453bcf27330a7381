"""Removing pooled containers nobody will use: idle too long, claimed by a
run that was killed, or not in the index at all (a fill that died).

Called after every run by its detached remover and by `vectraguard sandbox
reap`, like the reaper of killed runs (runtime/reaper.py). A container whose
removal is under way (its remover holds the lock) is left alone.
"""

from __future__ import annotations

from vectraguard.pool import store
from vectraguard.pool.fill import discard
from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.runtime.owner import owner_alive
from vectraguard.runtime.removal import pending_locked
from vectraguard.sandbox.spec import LABEL_POOL


def reap_pool(client: Libpod) -> list[str]:
    """Remove what the pool no longer needs; the container IDs removed."""
    removed = []
    known = set()
    for found, path in list(store.ready()):
        if store.expired(found) and discard(client, found, path):
            removed.append(found.cid)
        else:
            known.add(found.cid)
    for found, _path, owner in list(store.claimed()):
        if owner_alive(owner) or pending_locked(found.cid):
            known.add(found.cid)
            continue
        try:
            client.remove(found.cid)
        except LibpodError:
            known.add(found.cid)
            continue
        store.forget(found)
        removed.append(found.cid)
    for listed in client.list_labelled(LABEL_POOL):
        cid = str(listed.get("Id", ""))
        if cid in known or cid in removed or pending_locked(cid):
            continue
        try:
            client.remove(cid)
        except LibpodError:
            continue
        removed.append(cid)
    return removed
