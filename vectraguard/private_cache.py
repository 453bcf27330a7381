"""A user's private cache of derived results, each checked whole before use.

Entries live in a directory below the user's cache directory
(paths.cache_dir(), e.g. ~/.cache/vectraguard/resolved) that must be a
directory of this user's that no one else can enter (0700); each entry is a
regular file of this user's, mode 0600, written atomically (a temporary
file, then rename(2)). A file is: the hex SHA-256 of its body, a newline,
the body (JSON). A directory or file that is anyone else's or open to
others, a symbolic link, a short or corrupt file, a body whose checksum or
JSON is wrong: each reads as no entry (`read` returns None), never as data.
Whoever can write there is this user already; the checks keep out what
other users could plant and what a crash or a full disk left.

What an entry was derived from is for its user to check (`identity` gives
the stat fields that change with a file's content; `racy` says when a
file changed too recently for its timestamps to tell one version from the
next, as git's "racily clean" entries).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

from vectraguard import paths
from vectraguard.digests import sha256_hex

MAX_ENTRY_BYTES = 8 << 20
# A file changed less than this long (seconds) before an entry was made may
# change again without its mtime and ctime moving (the kernel's file times
# have a clock tick's granularity): such an entry is not kept.
RACY_S = 2.0

Identity = list[int]  # [st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns, st_mode, st_uid]


def directory(name: str) -> Path:
    """The cache directory `name` (not created)."""
    return paths.cache_dir() / name


def identity(path: str, *, follow: bool = True) -> Identity | None:
    """The stat fields that change whenever `path`'s content, type, owner or
    mode does (rename(2) of another file onto it gives another inode); None
    when it does not exist or cannot be examined."""
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except (OSError, ValueError):
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode, info.st_uid]


def racy(found: Identity | None, now_ns: int | None = None) -> bool:
    """Whether a file with this identity changed within RACY_S of `now_ns` (default: now)."""
    if found is None:
        return False
    now_ns = time.time_ns() if now_ns is None else now_ns
    return max(found[3], found[4]) > now_ns - int(RACY_S * 1e9)


def _checksum(body: bytes) -> str:
    """Hex SHA-256 of `body`: OpenSSL's when `hashlib` is loaded already (the
    fork server has it; ~6x faster on an entry of ~100 KiB), else the built-in
    one (digests.py: loading OpenSSL costs more than it saves here)."""
    hashlib = sys.modules.get("hashlib")
    return str(hashlib.sha256(body).hexdigest()) if hashlib is not None else sha256_hex(body)


def _private_dir(where: Path) -> bool:
    try:
        info = os.lstat(where)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def read(where: Path, name: str) -> Any:
    """The body of entry `name` in `where`, or None (absent, foreign, open to others, corrupt)."""
    if not _private_dir(where):
        return None
    try:
        fd = os.open(where / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077
                or info.st_size > MAX_ENTRY_BYTES):
            return None
        data = os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    checksum, newline, body = data.partition(b"\n")
    if not newline or len(checksum) != 64 or _checksum(body) != checksum.decode("ascii", "replace"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def write(where: Path, name: str, value: Any) -> None:
    """Keep `value` (JSON-able) as entry `name`; best effort: a cache that
    cannot be written (no space, a directory not ours) only costs time."""
    try:
        body = json.dumps(value, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private_dir(where):
            return
        temporary = where / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_checksum(body).encode() + b"\n" + body)
            os.replace(temporary, where / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError:
        return

