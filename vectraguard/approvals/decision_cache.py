"""Cached gate decisions on disk: one small JSON file per key, in the user's
own cache directory ($XDG_CACHE_HOME/vectraguard/decisions).

A file is {"format": 1, "key": KEY, "cached_at": SECONDS, "until": SECONDS,
"notes": [[kind, argument, result], ...], "entries": [AUDIT ENTRY, ...]}:
the audit entries of the run's `started` record, the looks judging made
(approvals/observed.py), when it was judged and until when it may be reused
(seconds since the epoch). Its name is the key.

Like the validation cache (config/cache.py), the directory is ignored unless
it is private to the user (a directory of theirs that no one else can write),
and so is an entry that is not a regular file of theirs that only they can
write: nobody else can plant a decision. Entries are written atomically; a
missing, unreadable, oversized, corrupt or foreign entry is a miss, never an
error. At most MAX_ENTRIES are kept: storing one more prunes the oldest.
Writing is best effort: a cache that cannot be written only costs time.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from vectraguard import paths, records

FORMAT = 1
MAX_ENTRIES = 256
KEEP_AFTER_PRUNING = 192
MAX_ENTRY_BYTES = 256 * 1024


@records.record
class Entry:
    """One cached decision."""

    entries: tuple[dict[str, Any], ...]  # audit entries as settled ("user" and "at" are made fresh on reuse)
    notes: list[list[Any]]  # observed.Notes.items() of the judging
    cached_at: float  # when it was judged, seconds since the epoch
    until: float  # reusable before then, seconds since the epoch


def cache_dir() -> Path:
    """RuntimeError when there is no home directory to find it in."""
    return paths.cache_dir() / "decisions"


def lookup(key: str) -> Entry | None:
    """The entry stored under `key`, if there is a sound one of the user's own."""
    try:
        directory = cache_dir()
    except RuntimeError:  # no $HOME, no password entry: no cache
        return None
    if not _private_directory(directory):
        return None
    raw = _read_own(directory / f"{key}.json")
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        if not (isinstance(data, dict) and data.get("format") == FORMAT and data.get("key") == key):
            return None
        entries, notes = data["entries"], data["notes"]
        cached_at, until = float(data["cached_at"]), float(data["until"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries) and isinstance(notes, list)):
        return None
    return Entry(tuple(entries), notes, cached_at, until)


def store(key: str, entry: Entry) -> None:
    """Keep `entry` under `key` (replacing any), then prune; best effort."""
    import tempfile

    payload = json.dumps({"format": FORMAT, "key": key, "cached_at": entry.cached_at, "until": entry.until,
                          "notes": entry.notes, "entries": list(entry.entries)}).encode("utf-8", "surrogatepass")
    if len(payload) > MAX_ENTRY_BYTES:
        return
    try:
        directory = cache_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private_directory(directory):
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, directory / f"{key}.json")
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            return
        _prune(directory)
    except (OSError, RuntimeError):
        return


def _prune(directory: Path) -> None:
    """Down to KEEP_AFTER_PRUNING entries, oldest (by modification time) first,
    once there are more than MAX_ENTRIES."""
    with os.scandir(directory) as listing:
        found = [e for e in listing if e.name.endswith(".json") and e.is_file(follow_symlinks=False)]
    if len(found) <= MAX_ENTRIES:
        return
    aged = []
    for item in found:
        try:
            aged.append((item.stat(follow_symlinks=False).st_mtime_ns, item.path))
        except OSError:
            continue  # removed meanwhile (another run pruning)
    for _, path in sorted(aged)[:len(aged) - KEEP_AFTER_PRUNING]:
        try:
            os.unlink(path)
        except OSError:
            continue


def _private_directory(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _read_own(path: Path) -> bytes | None:
    """The file's bytes when it is a regular file of the user's that only
    they can write, of at most MAX_ENTRY_BYTES; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022 \
                or info.st_size > MAX_ENTRY_BYTES:
            return None
        return os.read(fd, MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
