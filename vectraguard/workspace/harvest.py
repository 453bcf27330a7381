"""Read an overlay's upper directory into a change set (changeset.py).

Runs once, after the sandbox is gone (nothing writes the layer any more),
as the user who owns the layer (rootless: under `podman unshare`). The
upper directory is sandbox-made data: it is walked through directory file
descriptors (no path is ever re-resolved, so no depth or PATH_MAX limit and
no link is followed), files are opened O_NOFOLLOW, and only the overlay's
own attributes in the namespace this mount used (`xattr_prefix`) are
believed — an attribute the sandbox wrote through the overlay is stored
escaped by the kernel, and one in the other namespace is just a file
attribute, not overlay metadata.

What the upper directory holds, and what it means (overlayfs.rst):
- a character device 0:0 — a whiteout: the lower path is deleted;
- a directory with `<prefix>opaque` = "y" — the lower directory's
  contents are hidden: every baseline path under it not in the upper
  directory is deleted (a directory made where a whiteout was, e.g. by
  `rm -rf d; mkdir d`, is opaque; so is everything beneath it);
- anything else — added, modified or type-changed against the baseline
  (a file whose content and mode equal the lower file's is a copy-up
  without a change, e.g. after chmod back or touch, and is not listed).

Blobs are copied sparse (holes stay holes), so what the layer stores on
disk is bounded by what the tmpfs held. A file's *logical* size is not
bounded by the cap (a sparse file), so content is kept only while the
logical sizes kept add up to at most `budget` bytes; beyond it an entry is
listed with no content (sha256 "") and can never be applied.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from vectraguard.workspace import baseline as baseline_mod
from vectraguard.workspace import sparse
from vectraguard.workspace.changeset import (
    ABSENT, ADDED, DELETED, DIRECTORY, FILE, MODIFIED, SPECIAL, SYMLINK, TYPE_CHANGED, Change, save,
)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_OPEN_DIRS = 64  # directory fds kept open while walking; deeper ones are reopened from an ancestor


@dataclass
class _Frame:
    """A directory being walked: its entries not yet visited, and its fd while open."""

    path: str
    names: list[str]
    fd: int | None = None


@dataclass
class _Walk:
    upper_fd: int
    frames: list[_Frame] = field(default_factory=list)

    def fd_of(self, index: int) -> int:
        """The frame's directory fd, reopened from the nearest open ancestor if it was closed."""
        frame = self.frames[index]
        if frame.fd is not None:
            return frame.fd
        start = max((i for i in range(index) if self.frames[i].fd is not None), default=-1)
        fd: int = self.upper_fd if start < 0 else self.frames[start].fd  # type: ignore[assignment]
        base = "" if start < 0 else self.frames[start].path
        rest = frame.path[len(base):].lstrip("/")
        owned = False  # the ancestor's fd stays with its frame
        for part in rest.split("/") if rest else ():
            next_fd = os.open(part, DIR_FLAGS, dir_fd=fd)
            if owned:
                os.close(fd)
            fd, owned = next_fd, True
        frame.fd = fd if owned else os.dup(fd)
        self._bound()
        return fd

    def push(self, path: str, fd: int) -> None:
        with os.scandir(fd) as entries:
            names = sorted((entry.name for entry in entries), reverse=True)
        self.frames.append(_Frame(path, names, fd))
        self._bound()

    def pop(self) -> None:
        frame = self.frames.pop()
        if frame.fd is not None:
            os.close(frame.fd)

    def _bound(self) -> None:
        open_frames = [f for f in self.frames if f.fd is not None]
        for frame in open_frames[:max(0, len(open_frames) - MAX_OPEN_DIRS)]:
            os.close(frame.fd)  # type: ignore[arg-type]
            frame.fd = None


def harvest(upper: Path, lower: Path, layer_dir: Path, base: dict[str, baseline_mod.Entry],
            prefix: str, budget: int) -> list[Change]:
    """Store the blobs, write changes.json into `layer_dir`, return the entries.
    `budget`: the logical bytes of content kept at most (the layer's cap)."""
    changes: dict[str, Change] = {}
    blobs = layer_dir / "blobs"
    blobs.mkdir(mode=0o700, exist_ok=True)
    upper_fd = os.open(upper, DIR_FLAGS)
    walk = _Walk(upper_fd)
    left = [budget]
    try:
        walk.push("", os.dup(upper_fd))
        while walk.frames:
            frame = walk.frames[-1]
            if not frame.names:
                walk.pop()
                continue
            name = frame.names.pop()
            parent_fd = walk.fd_of(len(walk.frames) - 1)
            path = f"{frame.path}/{name}" if frame.path else name
            _visit(walk, parent_fd, name, path, lower, base, changes, blobs, prefix, left)
    finally:
        while walk.frames:
            walk.pop()
        os.close(upper_fd)
    result = sorted(changes.values(), key=lambda c: c.path)
    save(layer_dir, result)
    return result


def _visit(walk: _Walk, parent_fd: int, name: str, path: str, lower: Path, base: dict[str, baseline_mod.Entry],
           changes: dict[str, Change], blobs: Path, prefix: str, left: list[int]) -> None:
    info = os.lstat(name, dir_fd=parent_fd)
    if _is_whiteout(info):
        _delete_tree(changes, base, path)
        return
    before = base.get(path)
    # Present in the layer: not deleted, whatever an opaque parent said (entries
    # equal to the lower ones are then no change at all).
    changes.pop(path, None)
    if stat.S_ISDIR(info.st_mode):
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        try:
            _directory(changes, base, path, info, before, _opaque(fd, prefix))
            walk.push(path, fd)
        except BaseException:
            os.close(fd)
            raise
        return
    change = _leaf(parent_fd, name, lower / path, path, info, before, blobs, left)
    if change is not None:
        if before is not None and before.kind == DIRECTORY:
            _delete_tree(changes, base, path, keep_top=True)
        changes[path] = change


def _is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _opaque(fd: int, prefix: str) -> bool:
    try:
        return os.getxattr(fd, prefix + "opaque") == b"y"
    except OSError:
        return False


def _delete_tree(changes: dict[str, Change], base: dict[str, baseline_mod.Entry], path: str,
                 keep_top: bool = False) -> None:
    """Every baseline path at or under `path` is deleted (none: created and removed in the session)."""
    top = base.get(path)
    if top is None:
        return
    if not keep_top:
        changes[path] = Change(path, DELETED, ABSENT, top.kind)
    if top.kind == DIRECTORY:
        below = path + "/"
        for candidate, entry in base.items():
            if candidate.startswith(below):
                changes[candidate] = Change(candidate, DELETED, ABSENT, entry.kind)


def _directory(changes: dict[str, Change], base: dict[str, baseline_mod.Entry], path: str, info: os.stat_result,
               before: baseline_mod.Entry | None, opaque: bool) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if before is None:
        changes[path] = Change(path, ADDED, DIRECTORY, ABSENT, mode)
        return
    if before.kind != DIRECTORY:
        changes[path] = Change(path, TYPE_CHANGED, DIRECTORY, before.kind, mode)
        return
    if mode != before.mode:
        changes[path] = Change(path, MODIFIED, DIRECTORY, DIRECTORY, mode)
    if opaque:
        # Children that reappear in the upper directory replace these entries as the walk reaches them.
        _delete_tree(changes, base, path, keep_top=True)


def _leaf(parent_fd: int, name: str, lower_path: Path, path: str, info: os.stat_result,
          before: baseline_mod.Entry | None, blobs: Path, left: list[int]) -> Change | None:
    mode = stat.S_IMODE(info.st_mode)
    kind = baseline_mod.kind_of(info.st_mode)
    before_kind = before.kind if before else ABSENT
    if kind == FILE:
        if info.st_size > left[0]:  # a sparse file past the budget: listed, never applied
            return Change(path, _action(before, FILE), FILE, before_kind, mode, info.st_size, "")
        left[0] -= info.st_size
        sha, size = _store_blob(parent_fd, name, blobs)
        if before is not None and before.kind == FILE and before.mode == mode and _sha_of(lower_path) == sha:
            return None
        return Change(path, _action(before, FILE), FILE, before_kind, mode, size, sha)
    if kind == SYMLINK:
        target = os.readlink(name, dir_fd=parent_fd)
        sha = hashlib.sha256(os.fsencode(target)).hexdigest()
        if before is not None and before.kind == SYMLINK and _link_of(lower_path) == target:
            return None
        return Change(path, _action(before, SYMLINK), SYMLINK, before_kind, mode, len(os.fsencode(target)), sha,
                      target)
    return Change(path, _action(before, SPECIAL), SPECIAL, before_kind, mode)


def _action(before: baseline_mod.Entry | None, after: str) -> str:
    if before is None:
        return ADDED
    return MODIFIED if before.kind == after else TYPE_CHANGED


def _store_blob(parent_fd: int, name: str, blobs: Path) -> tuple[str, int]:
    """Copy the file into blobs/ under its SHA-256, holes kept as holes; (sha256, logical size)."""
    partial = blobs / f".partial-{os.getpid()}"
    source = os.open(name, FILE_FLAGS, dir_fd=parent_fd)
    try:
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            sha, size = sparse.copy(source, out)
        finally:
            os.close(out)
        partial.replace(blobs / sha)
        return sha, size
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.close(source)


def _sha_of(path: Path) -> str:
    try:
        fd = os.open(path, FILE_FLAGS)
    except OSError:
        return ""
    try:
        return sparse.file_digest(fd)
    finally:
        os.close(fd)


def _link_of(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None
