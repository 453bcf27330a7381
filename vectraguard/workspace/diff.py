"""What a person reads before applying: each change as a unified diff
between the workspace's file now and the layer's.

Text is UTF-8 without NUL bytes, up to MAX_TEXT bytes; anything else is
shown by size and SHA-256. Symlinks read as `link → target`. Every line —
file names and file contents alike, both chosen by whatever ran in the
sandbox — is escaped (output.printable): a file can hold terminal escape
sequences, and a diff must not let them drive the reader's terminal. Tabs
are kept as they are (they cannot), so indented code stays readable. The
workspace side is read through beneath.Tree: never through a link.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vectraguard.output import printable
from vectraguard.workspace import beneath, store
from vectraguard.workspace.apply import PERMISSION_BITS, content_refusal
from vectraguard.workspace.changeset import ABSENT, DIRECTORY, FILE, SPECIAL, SYMLINK, Change

MAX_TEXT = 4 << 20  # larger files are shown by size and digest
CHUNK = 1 << 20
NO_NEWLINE = "\\ No newline at end of file"
TYPE_BITS = {FILE: stat.S_IFREG, DIRECTORY: stat.S_IFDIR, SYMLINK: stat.S_IFLNK}


@dataclass(frozen=True)
class Side:
    """One side of a diff: what kind of thing, its mode, and its content as lines or as a digest."""

    kind: str  # changeset kinds; ABSENT for /dev/null
    mode: int = 0
    lines: tuple[str, ...] | None = None  # text (a symlink: one line); None: binary or none
    size: int = 0
    sha256: str = ""
    note: str = ""


def render(layer: store.Layer, changes: Sequence[Change]) -> Iterator[str]:
    """The diff of each change, as lines ready to print."""
    record = layer.record()
    with beneath.Tree(record.workspace) as tree:
        for change in changes:
            yield from _change(tree, layer, record, change)


def _change(tree: beneath.Tree, layer: store.Layer, record: store.LayerRecord, change: Change) -> Iterator[str]:
    old, new = _workspace_side(tree, change.path), _layer_side(layer, change)
    name = change.path
    yield _escape(f"diff --vectraguard a/{name} b/{name}")
    pattern = record.protection(name)
    if pattern:
        yield _escape(f"# protected ({pattern}): applied only when named with --include-protected")
    refusal = content_refusal(change, layer)
    if refusal:
        yield _escape(f"# refused: {refusal} (never applied)")
    for side in (old, new):
        if side.note:
            yield _escape(f"# {side.note}")
    yield from _mode_lines(old, new, change)
    yield from _content_lines(old, new, name)


def _mode_lines(old: Side, new: Side, change: Change) -> Iterator[str]:
    if change.after != ABSENT and change.mode & ~PERMISSION_BITS & 0o7777:
        yield f"# the layer's mode {change.mode:04o} has setuid, setgid or sticky bits: apply drops them"
    if old.kind == ABSENT and new.kind != ABSENT:
        yield f"new {_noun(new.kind)} mode {_mode(new)}"
    elif new.kind == ABSENT and old.kind != ABSENT:
        yield f"deleted {_noun(old.kind)} mode {_mode(old)}"
    elif old.kind != new.kind:
        yield f"deleted {_noun(old.kind)} mode {_mode(old)}"
        yield f"new {_noun(new.kind)} mode {_mode(new)}"
    elif old.mode != new.mode and old.kind != SYMLINK:
        yield f"old mode {_mode(old)}"
        yield f"new mode {_mode(new)}"


def _noun(kind: str) -> str:
    return {DIRECTORY: "directory", SYMLINK: "symlink", SPECIAL: "special file"}.get(kind, "file")


def _mode(side: Side) -> str:
    return f"{TYPE_BITS.get(side.kind, 0) | side.mode:06o}"


def _content_lines(old: Side, new: Side, name: str) -> Iterator[str]:
    if old.kind in (DIRECTORY, SPECIAL) and new.kind in (DIRECTORY, SPECIAL, ABSENT):
        return
    if new.kind in (DIRECTORY, SPECIAL) and old.kind == ABSENT:
        return
    # Escaped first: a newline in a name must not end the header line early.
    a_name = f"a/{printable(name)}" if old.kind != ABSENT else "/dev/null"
    b_name = f"b/{printable(name)}" if new.kind != ABSENT else "/dev/null"
    if _textual(old) and _textual(new):
        before, after = list(old.lines or ()), list(new.lines or ())
        for line in difflib.unified_diff(before, after, a_name, b_name, lineterm=""):
            yield from (_escape(part) for part in line.split("\n"))
        return
    yield _escape(f"Binary files {a_name} and {b_name} differ: {_summary(old)} -> {_summary(new)}")


def _textual(side: Side) -> bool:
    return side.lines is not None or side.kind in (ABSENT, DIRECTORY, SPECIAL)


def _summary(side: Side) -> str:
    if side.kind == ABSENT:
        return "none"
    if side.kind != FILE:
        return _noun(side.kind)
    return f"{side.size} bytes, sha256 {side.sha256 or 'unknown'}"


def _escape(line: str) -> str:
    return "\t".join(printable(part) for part in line.split("\t"))


# -- the two sides ------------------------------------------------------------------------

def _workspace_side(tree: beneath.Tree, path: str) -> Side:
    try:
        info = tree.lstat(path)
    except beneath.Unreachable as exc:
        return Side(ABSENT, note=f"workspace side not read: {exc.path} {exc.reason}")
    if info is None:
        return Side(ABSENT)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        fd, name = tree.parent(path)
        target = os.readlink(name, dir_fd=fd) if fd is not None else "?"
        return Side(SYMLINK, mode, (f"link → {target}",))
    if stat.S_ISDIR(info.st_mode):
        return Side(DIRECTORY, mode)
    if not stat.S_ISREG(info.st_mode):
        return Side(SPECIAL, mode)
    fd = tree.open_file(path)
    if fd is None:
        return Side(FILE, mode, note="workspace side could not be read")
    return _file_side(fd, mode)


def _layer_side(layer: store.Layer, change: Change) -> Side:
    if change.after == SYMLINK:
        return Side(SYMLINK, change.mode & PERMISSION_BITS, (f"link → {change.link}",))
    if change.after != FILE:
        return Side(change.after, change.mode & PERMISSION_BITS)
    try:
        fd = os.open(layer.blob(change.sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, ValueError):
        return Side(FILE, change.mode & PERMISSION_BITS, size=change.size, sha256=change.sha256,
                    note="the layer's content is missing")
    return _file_side(fd, change.mode & PERMISSION_BITS)


def _file_side(fd: int, mode: int) -> Side:
    """Read (and close) `fd`: its text if it is text, else its size and digest."""
    digest, size, head = hashlib.sha256(), 0, bytearray()
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if len(head) <= MAX_TEXT:
                head += chunk
    finally:
        os.close(fd)
    lines = _text_lines(bytes(head)) if size <= MAX_TEXT else None
    return Side(FILE, mode, lines, size, digest.hexdigest())


def _text_lines(data: bytes) -> tuple[str, ...] | None:
    """The lines, the last one marked when the text does not end in a newline
    (as diff(1) does); None for binary content."""
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    elif lines:
        lines[-1] += "\n" + NO_NEWLINE  # split back into two lines when printed
    return tuple(lines)
