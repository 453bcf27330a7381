"""The audit store's reserve: room for what a run records once it has started.

A run that has started must be able to record how it ended. Before it
starts, the free space of the store's file system (statvfs: blocks
available to unprivileged users, so root's reserved blocks are not
counted on) must cover RESERVE_BYTES plus twice its `started` record;
below that the run is refused, and says what to do.

RESERVE_BYTES (8 MiB) covers the largest `finished` record a run can
produce several times over: output head and tail, 64 KiB each per stream
(256 KiB of blobs), a network record bounded below 64 KiB, capped risk
findings, the digests and the index row — every page of which SQLite
writes twice (to the write-ahead log, then to the database at a
checkpoint) — and the small `incomplete` record that replaces it if it
cannot be written. The `started` record holds the argv, which only the
kernel bounds (ARG_MAX, and JSON escapes can grow it): hence twice its size
on top. An overlay run's layer is copied next to the store (workspaces/)
before its record is written: up to limits.workspace_writes more, counted
when the layer is kept on the store's file system. Shell recordings are
not counted.
"""

from __future__ import annotations

import os
from pathlib import Path

from vectraguard.audit.store import UNAVAILABLE_HINT, AuditUnavailable

RESERVE_BYTES = 8 * 1024 * 1024


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer can still use on `directory`'s file system."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def check(store: Path, started_bytes: int, layer_bytes: int = 0) -> None:
    """Refuse (AuditUnavailable, exit 125) unless `store`'s file system has
    room for the reserve, a `started` record of `started_bytes` bytes and
    `layer_bytes` of an overlay layer kept there before the record is written
    (limits.workspace_writes: else a sandbox could fill the disk with changes
    and leave its run unrecorded)."""
    need = RESERVE_BYTES + 2 * started_bytes + layer_bytes
    try:
        free = free_bytes(store.parent)
    except OSError as exc:
        raise AuditUnavailable(f"vectraguard: cannot tell the free space for the audit store {store}: "
                               f"{exc.strerror or exc}; nothing runs unrecorded",
                               hint=UNAVAILABLE_HINT, path=store, cause=str(exc)) from None
    if free < need:
        cause = f"{_mib(free)} free, below the {_mib(need)} a run's record needs" + (
            f", {_mib(layer_bytes)} of it for the overlay layer (limits.workspace_writes)" if layer_bytes else "")
        hint = UNAVAILABLE_HINT + (", or lower limits.workspace_writes (--set limits.workspace_writes=SIZE)"
                                   if layer_bytes else "")
        raise AuditUnavailable(
            f"vectraguard: the audit store {store} has too little room for a run's record ({cause}: a run that "
            "started must be able to record how it ended); nothing runs", hint=hint, path=store, cause=cause)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
