"""What judging a run looked at on the file system, so that a cached gate
decision can tell, without the judge, whether it still holds.

Judging reads files: the risk judge (risk/classify.py) reads the scripts a
line runs and expands `~` (through $HOME or the password database), and
binding an approval (approvals/script_files.py, bound_files.py) looks for
makefiles, resolves symbolic links and hashes the files a command runs.
Each of those looks goes through this module. Inside `watching()` each is
noted as [kind, argument, result] (a script's text as its SHA-256: JSON,
for the cache entry); `unchanged(notes)` looks again, with the same
functions, and compares. Outside `watching()` nothing is kept.

A look that gives two results during one judging (a file rewritten while
it was read twice), or more than MAX_NOTES looks, leaves the notes
incomplete: such a decision is not cached.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from vectraguard.digests import sha256_hex

MAX_NOTES = 256


class Notes:
    """The looks of one judging, in order, each once."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = {}  # canonical [kind, argument] -> the note
        self.complete = True

    def items(self) -> list[list[Any]]:
        return list(self.seen.values())

    def add(self, kind: str, argument: Any, result: Any) -> None:
        key = json.dumps([kind, argument])
        earlier = self.seen.get(key)
        if earlier is not None:
            self.complete = self.complete and earlier[2] == result
        elif len(self.seen) >= MAX_NOTES:
            self.complete = False
        else:
            self.seen[key] = [kind, argument, result]


# A context variable, not a global: another thread (or a nested watch) keeps its own notes.
_watching: contextvars.ContextVar[Notes | None] = contextvars.ContextVar("observed", default=None)


@contextlib.contextmanager
def watching() -> Iterator[Notes]:
    """Note every look made inside the block (in this thread)."""
    notes = Notes()
    token = _watching.set(notes)
    try:
        yield notes
    finally:
        _watching.reset(token)


def _look(kind: str, argument: Any) -> Any:
    """A look's result as JSON keeps it, noted when watching."""
    result = _LOOKS[kind](argument)
    _note(kind, argument, result)
    return result


def _note(kind: str, argument: Any, result: Any) -> None:
    notes = _watching.get()
    if notes is not None:
        notes.add(kind, argument, result)


# -- the looks ------------------------------------------------------------------------------------


def script_text(path: str, max_bytes: int) -> str | None:
    """A script's text, as the risk judge reads it: a file (symbolic links
    followed) of at most `max_bytes`, as UTF-8 with bad bytes replaced; None
    when it is not one or cannot be read."""
    text = _read_text(path, max_bytes)
    _note("text", [path, max_bytes], _fingerprint(text))
    return text


def exists(path: str) -> bool:
    return bool(_look("exists", path))


def realpath(path: str) -> str:
    return str(_look("realpath", path))


def expanduser(path: str) -> str:
    return str(_look("home", path))


def sha256(path: str) -> tuple[str | None, str]:
    """bound_files.sha256 (a file's digest, read safely), noted."""
    digest, why = _look("sha256", path)
    return digest, why


def _read_text(path: str, max_bytes: int) -> str | None:
    """Never more than the file says it holds, and never a file that says it
    holds nothing: the judge runs on the host, before any sandbox, and a
    script may name a kernel file (/proc/kmsg: size 0, a read that blocks
    until the kernel logs, and takes what it reads from the host's logger).
    A pseudo-file's text is the host's, not what the sandbox would see, and
    an empty script runs nothing: None (cannot be read) for both."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= max_bytes:
            return None
        data = b""
        while len(data) <= info.st_size and (chunk := os.read(fd, info.st_size + 1 - len(data))):
            data += chunk
        if len(data) > max_bytes:  # it grew while being read
            return None
        return data.decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _fingerprint(text: str | None) -> str | None:
    return None if text is None else sha256_hex(text.encode("utf-8", "surrogatepass"))


def _digest(path: str) -> list[str | None]:
    # Imported when used: bound_files notes its own looks here.
    from vectraguard.approvals.bound_files import sha256

    return list(sha256(path))


def _text_again(argument: Any) -> str | None:
    path, max_bytes = argument
    return _fingerprint(_read_text(str(path), int(max_bytes)))


_LOOKS: dict[str, Callable[[Any], Any]] = {
    "text": _text_again,
    "exists": lambda path: os.path.exists(path),
    "realpath": lambda path: os.path.realpath(path),
    "home": lambda path: os.path.expanduser(path),
    "sha256": _digest,
}


def _path_argument(note: list[Any]) -> bool:
    """A note's argument is a path (for "text": [path, byte limit]): never a number,
    which os.path would take for an open file descriptor."""
    kind, argument = note[0], note[1]
    if kind == "text":
        return isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str) \
            and type(argument[1]) is int
    return isinstance(argument, str)


def unchanged(notes: Any) -> bool:
    """Whether every look in `notes` (as `Notes.items` gave them, through
    JSON) gives the same result now; False for anything malformed."""
    if not isinstance(notes, list):
        return False
    for note in notes:
        if not (isinstance(note, list) and len(note) == 3 and note[0] in _LOOKS and _path_argument(note)):
            return False
        kind, argument, result = note
        try:
            if _LOOKS[kind](argument) != result:
                return False
        except (TypeError, ValueError, OSError):
            return False
    return True
