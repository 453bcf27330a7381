"""What the workspace was when a session started: one lstat per path.

`apply` compares each path it would write with this record and stops with a
conflict when the real tree changed since (edited, created, deleted or
replaced on the host while the sandbox ran — which overlayfs leaves
undefined). The walk never follows symlinks and does not cross into other
filesystems' mount points beneath the root (a bind mount there is not part
of the tree the overlay's lower layer shows).

Stored as gzip-compressed JSON: {"version": 1, "entries": {path: [kind,
mode, size, mtime_ns, ctime_ns, ino]}} with paths relative to the root
('' is the root itself).
"""

from __future__ import annotations

import gzip
import json
import os
import stat
from dataclasses import astuple, dataclass
from pathlib import Path

from vectraguard.workspace.changeset import DIRECTORY, FILE, SPECIAL, SYMLINK

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One path's identity: kind, permission bits, bytes, nanosecond times, inode."""

    kind: str
    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return DIRECTORY
    if stat.S_ISLNK(mode):
        return SYMLINK
    return SPECIAL


def entry_of(info: os.stat_result) -> Entry:
    return Entry(kind_of(info.st_mode), stat.S_IMODE(info.st_mode), info.st_size, info.st_mtime_ns,
                 info.st_ctime_ns, info.st_ino)


def record(root: Path) -> dict[str, Entry]:
    """Every path beneath `root` (and '' for root itself), unfollowed."""
    top = os.lstat(root)
    entries = {"": entry_of(top)}
    stack = [("", str(root))]
    while stack:
        relative, absolute = stack.pop()
        try:
            scan = os.scandir(absolute)
        except OSError:
            continue  # unreadable: its children stay unknown, so apply treats them as conflicts
        with scan:
            for item in scan:
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                path = f"{relative}/{item.name}" if relative else item.name
                entries[path] = entry_of(info)
                if stat.S_ISDIR(info.st_mode) and info.st_dev == top.st_dev:
                    stack.append((path, item.path))
    return entries


def current(root: Path, relative: str) -> Entry | None:
    """The path's entry now, without following any link on the way (None: absent)."""
    try:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        parts = relative.split("/") if relative else []
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                return None
            os.close(fd)
            fd = next_fd
        if not parts:
            return entry_of(os.fstat(fd))
        try:
            return entry_of(os.lstat(parts[-1], dir_fd=fd))
        except OSError:
            return None
    finally:
        os.close(fd)


def save(path: Path, entries: dict[str, Entry]) -> None:
    body = {"version": FORMAT_VERSION, "entries": {k: list(astuple(v)) for k, v in entries.items()}}
    partial = path.with_name(path.name + ".partial")
    with gzip.open(partial, "wt", compresslevel=1) as out:
        json.dump(body, out, separators=(",", ":"))
    partial.replace(path)


def load(path: Path) -> dict[str, Entry]:
    """ValueError if the file is not a baseline of this format."""
    with gzip.open(path, "rt") as source:
        body = json.load(source)
    if not isinstance(body, dict) or body.get("version") != FORMAT_VERSION:
        raise ValueError("not a baseline of this version")
    return {k: Entry(*v) for k, v in body["entries"].items()}
