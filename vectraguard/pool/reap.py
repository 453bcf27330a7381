"""Removing pooled containers nobody will use: idle too long, claimed by a
run that was killed, or not in the index at all (a fill that died).

Called after every run by its detached remover and by `vectraguard sandbox
reap`, like the reaper of killed runs (runtime/reaper.py). A container whose
removal is under way (its remover holds the lock) is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vectraguard.pool import store
from vectraguard.pool.fill import discard
from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.runtime.owner import owner_alive
from vectraguard.runtime.removal import pending_locked
from vectraguard.sandbox.spec import LABEL_POOL

# (session that claimed it or "-", container ID) -> None: records the removal of a killed run's pooled container.
OnReaped = Callable[[str, str], None]
ORPHAN_FILES_AFTER_S = 120.0  # a fill under way has made its files but not yet indexed them


def reap_pool(client: Libpod, on_reaped: OnReaped | None = None) -> list[str]:
    """Remove what the pool no longer needs; the container IDs removed.

    Podman's list comes first, the index is read after it, whole, under its
    lock (store.snapshot): a container is in the index from before it is
    made until after it is removed, so one listed that the index does not
    show is no one's — never one being made, published or claimed
    meanwhile by another process (an outside attack found runs killed by
    the reaper of a run that had read the index first)."""
    listed = client.list_labelled(LABEL_POOL)
    removed = []
    for found, path in list(store.ready()):
        if store.expired(found) and discard(client, found, path):
            removed.append(found.cid)
    for found, path, owner, session in list(store.claimed()):
        if owner_alive(owner) or pending_locked(found.cid):
            continue
        taken = store.take_claimed_for_removal(path)
        if taken is None:
            continue  # another reaper has it: one removal, one record
        try:
            client.remove(found.cid)
        except LibpodError:
            taken.rename(path)  # tried again next time
            continue
        store.forget(found)
        removed.append(found.cid)
        if on_reaped is not None and session != "-":
            on_reaped(session, found.cid)
    index = store.snapshot()
    dead_fills = {name for name, filler in index.filling.items() if not owner_alive(filler)}
    for container in listed:
        cid = str(container.get("Id", ""))
        names = {str(n).lstrip("/") for n in container.get("Names") or ()}
        being_made = any(name in index.filling and name not in dead_fills for name in names)
        if cid in removed or cid in index.cids or being_made or pending_locked(cid):
            continue
        try:
            client.remove(cid)
        except LibpodError:
            continue
        removed.append(cid)
    store.forget_fills(dead_fills)
    _sweep_files()
    return removed


def _sweep_files() -> None:
    """Command directories and hosts files of pooled containers no index entry names
    (a fill or a `pool start` that was killed): they may hold a run's environment."""
    from vectraguard.paths import hosts_dir, runtime_dir
    from vectraguard.sandbox import entry

    used = store.referenced_files()
    now = time.time()
    for directory, pattern in ((runtime_dir() / "entries", "pool-*"), (hosts_dir(), "pool-*.hosts")):
        for path in directory.glob(pattern):
            try:
                old = now - path.lstat().st_mtime > ORPHAN_FILES_AFTER_S
            except OSError:
                continue
            if str(path) in used or not old:
                continue
            if path.is_dir():
                entry.remove_run_dir(path)
            else:
                path.unlink(missing_ok=True)
