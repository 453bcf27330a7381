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

import contextlib
import os
from pathlib import Path

from vectraguard.audit.store import UNAVAILABLE_HINT, AuditUnavailable

RESERVE_BYTES = 8 * 1024 * 1024
# Room held on the store's file system while runs go on: a file of this size
# (BALLAST_NAME beside the store) that a run deletes when its `finished`
# record finds the disk full (filled by the sandbox's writes, or anyone's),
# so the record of how it ended still fits; the next run that finds room puts
# it back. It counts towards the free space `check` asks for.
BALLAST_BYTES = 4 * 1024 * 1024
BALLAST_NAME = "audit.reserve"


def ballast(store: Path) -> Path:
    return store.parent / BALLAST_NAME


def ballast_bytes(store: Path) -> int:
    try:
        return ballast(store).stat().st_size
    except OSError:
        return 0


def hold(store: Path) -> None:
    """Put the reserve file in place if it is missing (allocated, not sparse); a
    file system without room for it is left alone (`check` refuses it anyway)."""
    path = ballast(store)
    if ballast_bytes(store) >= BALLAST_BYTES:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, BALLAST_BYTES)
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()


def release(store: Path) -> bool:
    """Free the reserve for a record that must be written now; whether there was one."""
    try:
        ballast(store).unlink()
        return True
    except OSError:
        return False


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
        free = free_bytes(store.parent) + ballast_bytes(store)  # the reserve file is room held for records
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
