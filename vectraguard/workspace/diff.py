"""What a person reads before applying: each change as a unified diff
between the workspace's file now and the layer's.

Text is UTF-8 without NUL bytes, up to MAX_TEXT bytes; anything else is
shown by size and SHA-256 (a file above MAX_TEXT is never read whole: the
layer's side is not read at all — its digest is the change set's, which
apply checks — and the workspace's is hashed in chunks, holes skipped).
Two texts are compared by GNU diff (diffutils, essential in Debian) on
temporary copies, with a timeout: difflib is quadratic on inputs a sandbox
can craft. When diff(1) is missing, fails or is too slow, the two sides are
shown by size and SHA-256 instead. difflib only ever compares a side with a
single line (a symlink) or none, where it is linear. Symlinks read as
`link → target`. Every line —
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
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vectraguard.output import printable
from vectraguard.workspace import beneath, store
from vectraguard.workspace.apply import PERMISSION_BITS, content_refusal
from vectraguard.workspace.sparse import file_digest
from vectraguard.workspace.changeset import ABSENT, DIRECTORY, FILE, SPECIAL, SYMLINK, Change

MAX_TEXT = 4 << 20  # larger files are shown by size and digest
DIFF_SECONDS = 10.0  # diff(1) of two MAX_TEXT files takes well under this, but for crafted input
NO_NEWLINE = "\\ No newline at end of file"
TYPE_BITS = {FILE: stat.S_IFREG, DIRECTORY: stat.S_IFDIR, SYMLINK: stat.S_IFLNK}


@dataclass(frozen=True)
class Side:
    """One side of a diff: what kind of thing, its mode, and its content as text or as a digest."""

    kind: str  # changeset kinds; ABSENT for /dev/null
    mode: int = 0
    text: bytes | None = None  # a file's content when it is text; a symlink's one line; else None
    size: int = 0
    sha256: str = ""
    note: str = ""

    @property
    def large(self) -> bool:
        return self.kind == FILE and self.size > MAX_TEXT


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
    if not (_textual(old) and _textual(new)):
        why = f"too large to diff (over {MAX_TEXT} bytes)" if old.large or new.large else ""
        yield _differ(old, new, a_name, b_name, why)
    elif old.kind == FILE and new.kind == FILE:
        if old.text != new.text:
            yield from _gnu_diff(old, new, a_name, b_name)
    else:  # one side is a symlink's line or nothing: difflib is linear there
        before, after = _lines(old), _lines(new)
        for line in difflib.unified_diff(before, after, a_name, b_name, lineterm=""):
            yield from (_escape(part) for part in line.split("\n"))


def _textual(side: Side) -> bool:
    return side.text is not None or side.kind in (ABSENT, DIRECTORY, SPECIAL)


def _lines(side: Side) -> list[str]:
    """The lines of a text side, the last one marked when the text does not end in a newline
    (as diff(1) does)."""
    if side.text is None:
        return []
    lines = side.text.decode("utf-8", "surrogateescape").split("\n")
    if lines[-1] == "":
        lines.pop()
    elif lines:
        lines[-1] += "\n" + NO_NEWLINE  # split back into two lines when printed
    return lines


def _gnu_diff(old: Side, new: Side, a_name: str, b_name: str) -> Iterator[str]:
    """diff -u of two texts, on private temporary copies, with fixed labels (our own header
    lines replace them), in the C locale, killed after DIFF_SECONDS."""
    program = shutil.which("diff")
    if program is None:
        yield _differ(old, new, a_name, b_name, "diff(1) is not installed to show how")
        return
    with tempfile.TemporaryDirectory(prefix="vectraguard-diff-") as scratch:
        before, after = os.path.join(scratch, "a"), os.path.join(scratch, "b")
        _write_new(before, old.text or b"")
        _write_new(after, new.text or b"")
        try:
            result = subprocess.run([program, "-u", "--text", "--label", "a", "--label", "b", before, after],
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=DIFF_SECONDS,
                                    env={"LC_ALL": "C"}, check=False)
        except subprocess.TimeoutExpired:
            yield _differ(old, new, a_name, b_name, "the diff was too slow to show")
            return
        except OSError as exc:
            yield _differ(old, new, a_name, b_name, f"diff(1) could not run ({exc.strerror})")
            return
    lines = result.stdout.decode("utf-8", "surrogateescape").split("\n")
    if result.returncode != 1 or lines[:2] != ["--- a", "+++ b"]:
        yield _differ(old, new, a_name, b_name, f"diff(1) failed (exit status {result.returncode})")
        return
    if lines[-1] == "":
        lines.pop()
    yield f"--- {a_name}"
    yield f"+++ {b_name}"
    yield from (_escape(line) for line in lines[2:])


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _differ(old: Side, new: Side, a_name: str, b_name: str, why: str) -> str:
    """One line for two sides not shown line by line: binary, too large, or diff(1) unable."""
    if why:
        return _escape(f"Files {a_name} and {b_name} differ, {why}: {_summary(old)} -> {_summary(new)}")
    return _escape(f"Binary files {a_name} and {b_name} differ: {_summary(old)} -> {_summary(new)}")


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
        return _link_side(target, mode)
    if stat.S_ISDIR(info.st_mode):
        return Side(DIRECTORY, mode)
    if not stat.S_ISREG(info.st_mode):
        return Side(SPECIAL, mode)
    fd = tree.open_file(path)
    if fd is None:
        return Side(FILE, mode, note="workspace side could not be read")
    try:
        return _file_side(fd, mode)
    finally:
        os.close(fd)


def _layer_side(layer: store.Layer, change: Change) -> Side:
    mode = change.mode & PERMISSION_BITS
    if change.after == SYMLINK:
        return _link_side(change.link, mode)
    if change.after != FILE:
        return Side(change.after, mode)
    try:
        fd = os.open(layer.blob(change.sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, ValueError):
        return Side(FILE, mode, size=change.size, sha256=change.sha256, note="the layer's content is missing")
    try:
        size = os.fstat(fd).st_size
        if size > MAX_TEXT:  # maybe sparse, its logical size far above the layer's cap: never read
            return Side(FILE, mode, size=size, sha256=change.sha256)
        return _file_side(fd, mode)
    finally:
        os.close(fd)


def _link_side(target: str, mode: int) -> Side:
    return Side(SYMLINK, mode, f"link → {target}".encode("utf-8", "surrogateescape"))


def _file_side(fd: int, mode: int) -> Side:
    """`fd`'s text if it is text of at most MAX_TEXT bytes, with its size and digest; a larger
    file's size and digest only (hashed in chunks, holes skipped)."""
    size = os.fstat(fd).st_size
    if size > MAX_TEXT:
        return Side(FILE, mode, size=size, sha256=file_digest(fd))
    data = bytearray()
    while len(data) <= MAX_TEXT and (chunk := os.read(fd, MAX_TEXT + 1 - len(data))):
        data += chunk
    if len(data) > MAX_TEXT:  # grew since fstat
        return Side(FILE, mode, size=len(data), sha256=file_digest(fd))
    content = bytes(data)
    return Side(FILE, mode, content if _is_text(content) else None, len(content),
                hashlib.sha256(content).hexdigest())


def _is_text(data: bytes) -> bool:
    """UTF-8 without NUL bytes."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
