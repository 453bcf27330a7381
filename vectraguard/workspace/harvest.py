"""Read an overlay's upper directory into a change set (changeset.py).

Runs once, after the sandbox is gone (nothing writes the layer any more),
as the user who owns the layer (rootless: under `podman unshare`). The
upper directory is sandbox-made data: it is walked without following links,
files are opened O_NOFOLLOW, and only the overlay's own attributes in the
namespace this mount used (`xattr_prefix`) are believed — an attribute the
sandbox wrote through the overlay is stored escaped by the kernel, and one
in the other namespace is just a file attribute, not overlay metadata.

What the upper directory holds, and what it means (overlayfs.rst):
- a character device 0:0 — a whiteout: the lower path is deleted;
- a directory with `<prefix>opaque` = "y" — the lower directory's
  contents are hidden: every baseline path under it not in the upper
  directory is deleted (a directory made where a whiteout was, e.g. by
  `rm -rf d; mkdir d`, is opaque; so is everything beneath it);
- anything else — added, modified or type-changed against the baseline
  (a file whose content and mode equal the lower file's is a copy-up
  without a change, e.g. after chmod back or touch, and is not listed).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from vectraguard.workspace import baseline as baseline_mod
from vectraguard.workspace.changeset import (
    ABSENT, ADDED, DELETED, DIRECTORY, FILE, MODIFIED, SPECIAL, SYMLINK, TYPE_CHANGED, Change, save,
)

CHUNK = 1 << 20


def harvest(upper: Path, lower: Path, layer_dir: Path, base: dict[str, baseline_mod.Entry],
            prefix: str) -> list[Change]:
    """Store the blobs, write changes.json into `layer_dir`, return the entries."""
    changes: dict[str, Change] = {}
    blobs = layer_dir / "blobs"
    blobs.mkdir(mode=0o700, exist_ok=True)
    stack = [""]
    while stack:
        relative = stack.pop()
        with os.scandir(upper / relative if relative else upper) as entries:
            for item in entries:
                path = f"{relative}/{item.name}" if relative else item.name
                info = item.stat(follow_symlinks=False)
                if _is_whiteout(info):
                    _delete_tree(changes, base, path)
                    continue
                before = base.get(path)
                # Present in the layer: not deleted, whatever an opaque parent said (entries
                # equal to the lower ones are then no change at all).
                changes.pop(path, None)
                if stat.S_ISDIR(info.st_mode):
                    _directory(changes, base, path, info, before, _opaque(item.path, prefix))
                    stack.append(path)
                else:
                    change = _leaf(item.path, lower / path, path, info, before, blobs)
                    if change is not None:
                        if before is not None and before.kind == DIRECTORY:
                            _delete_tree(changes, base, path, keep_top=True)
                        changes[path] = change
    result = sorted(changes.values(), key=lambda c: c.path)
    save(layer_dir, result)
    return result


def _is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _opaque(path: str, prefix: str) -> bool:
    try:
        return os.getxattr(path, prefix + "opaque", follow_symlinks=False) == b"y"
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


def _leaf(upper_path: str, lower_path: Path, path: str, info: os.stat_result,
          before: baseline_mod.Entry | None, blobs: Path) -> Change | None:
    mode = stat.S_IMODE(info.st_mode)
    kind = baseline_mod.kind_of(info.st_mode)
    if kind == FILE:
        sha, size = _store_blob(upper_path, blobs)
        if before is not None and before.kind == FILE and before.mode == mode and _sha_of(lower_path) == sha:
            return None
        return Change(path, _action(before, FILE), FILE, before.kind if before else ABSENT, mode, size, sha)
    if kind == SYMLINK:
        target = os.readlink(upper_path)
        sha = hashlib.sha256(os.fsencode(target)).hexdigest()
        if before is not None and before.kind == SYMLINK and _link_of(lower_path) == target:
            return None
        return Change(path, _action(before, SYMLINK), SYMLINK, before.kind if before else ABSENT, mode,
                      len(os.fsencode(target)), sha, target)
    return Change(path, _action(before, SPECIAL), SPECIAL, before.kind if before else ABSENT, mode)


def _action(before: baseline_mod.Entry | None, after: str) -> str:
    if before is None:
        return ADDED
    return MODIFIED if before.kind == after else TYPE_CHANGED


def _store_blob(path: str, blobs: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    partial = blobs / f".partial-{os.getpid()}"
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as source, open(partial, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    os.chmod(partial, 0o600)
    sha = digest.hexdigest()
    partial.replace(blobs / sha)
    return sha, size


def _sha_of(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _link_of(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None
