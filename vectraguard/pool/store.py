"""The pool's index: one small file per pooled container, in this user's
private runtime directory (`pool/`).

    NAME.OWNER.filling              being made by the fill OWNER (pid-starttime), under the
                                    container name NAME; written before Podman is asked
    SLOT.KEY.CID.ready              made and initialised, free to take
    SLOT.KEY.CID.OWNER.claimed      taken by the run OWNER (pid-starttime)
    .NAME.removing                  a .ready or .claimed being removed (idle, another key, a dead run)

A run claims a container by renaming its `.ready` file to `.claimed`:
rename(2) is atomic, so of two runs that try the same one, exactly one
succeeds; the other gets ENOENT and tries the next or runs cold. The file
holds the container's facts as JSON (Entry). Nothing in it is trusted
beyond this user's own directory (0700, checked).

So that the reaper (reap.py) can tell a pooled container nobody will use
from one being made, claimed or run, every container is in the index from
before Podman makes it (`.filling`) until after Podman has removed it, and
every change of the index holds `.index.lock` shared while the reaper
reads the index whole holding it exclusive (`snapshot`): a container
Podman listed before that read and that the read does not show is no
one's.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vectraguard.paths import ensure_private_dir, runtime_dir
from vectraguard.records import as_dict, record

READY, CLAIMED, FILLING = ".ready", ".claimed", ".filling"
INDEX_LOCK = ".index.lock"


@record
class Entry:
    """One pooled container."""

    cid: str
    profile: str  # the profile's name
    cwd: str  # the directory of the runs it is for
    slot: str  # key.slot(): profile and directory
    key: str  # key.pool_key(): what it was made of
    image_id: str  # the image it was created from (sha256 hex)
    run_dir: str  # host directory of its command file (sandbox/entry.py)
    hosts_file: str  # host file mounted at its /etc/hosts
    created: float  # time.time() when it was ready
    idle: float  # seconds it may wait unclaimed before the reaper removes it
    # What Podman said of it once initialised (the inspect fields a run needs:
    # runtime/session.py), and its init's identity (PID:STARTTIME), by which a
    # run knows without asking Podman again that it is still that container.
    facts: Any = None  # dict[str, Any]
    init: str = ""
    # Podman's image index (containers/storage's <driver>-images/images.json) and
    # its identity when the container was made: unchanged, no image was added,
    # removed or re-tagged since, so the name still stands for `image_id`.
    images_file: str = ""
    images_identity: Any = None  # list[int]


def pool_dir() -> Path:
    return runtime_dir() / "pool"


def _ready_name(entry: Entry) -> str:
    return f"{entry.slot}.{entry.key}.{entry.cid}{READY}"


def ensure_dir() -> Path:
    directory = pool_dir()
    ensure_private_dir(directory.parent)
    ensure_private_dir(directory)
    return directory


@contextmanager
def changing(exclusive: bool = False) -> Iterator[None]:
    """Hold the index lock: shared to change the index (a rename, a write, an unlink: microseconds),
    exclusive to read it whole (snapshot). flock(2); released when the descriptor closes."""
    fd = os.open(ensure_dir() / INDEX_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def begin_filling(name: str, owner: str) -> Path:
    """Say that the process `owner` (pid:starttime) is about to have Podman make the container `name`;
    the marker goes (end_filling) once it is published ready or removed."""
    marker = ensure_dir() / f"{name}.{owner.replace(':', '-')}{FILLING}"
    with changing():
        marker.write_text("")
    return marker


def end_filling(marker: Path) -> None:
    with changing():
        marker.unlink(missing_ok=True)


def forget_fills(names: set[str]) -> None:
    """Drop the `.filling` markers of these container names (their fillers died; reap.py)."""
    directory = pool_dir()
    with changing():
        for marker in directory.glob(f"*{FILLING}"):
            if marker.name.partition(".")[0] in names:
                marker.unlink(missing_ok=True)


def add(entry: Entry) -> None:
    """Publish a ready container (written whole, then renamed into place)."""
    directory = ensure_dir()
    temporary = directory / f".{entry.cid}.new"
    temporary.write_text(json.dumps(as_dict(entry)))
    with changing():
        os.rename(temporary, directory / _ready_name(entry))


class Snapshot:
    """The index as one exclusive read saw it: the container IDs it names in any state, and the
    names of containers being made with their filler (pid:starttime)."""

    def __init__(self, cids: set[str], filling: dict[str, str]) -> None:
        self.cids, self.filling = cids, filling


def snapshot() -> Snapshot:
    """Read the whole index at once (no change can happen while it is read)."""
    cids: set[str] = set()
    filling: dict[str, str] = {}
    directory = pool_dir()
    with changing(exclusive=True):
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        for name in names:
            if name.endswith(FILLING):
                container, _, owner = name[: -len(FILLING)].partition(".")
                filling[container] = owner.replace("-", ":", 1)
            elif name.endswith((READY, CLAIMED, ".removing")):
                found = _read(directory / name)
                if found is not None:
                    cids.add(found.cid)
    return Snapshot(cids, filling)


def _read(path: Path) -> Entry | None:
    try:
        return Entry(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def claim(slot: str, key: str, owner: str, session: str = "-") -> tuple[Entry, Path] | None:
    """Take a ready container of this slot and key for the run `owner` of
    `session` (both in the claim file's name: the reaper records the removal
    of a killed run's container in its session), the newest first; (its
    entry, its claim file) or None when there is none."""
    directory = pool_dir()
    prefix = f"{slot}.{key}."
    try:
        names = [name for name in os.listdir(directory) if name.startswith(prefix) and name.endswith(READY)]
    except OSError:
        return None
    owner_part = owner.replace(":", "-")
    session = session if session.isalnum() else "-"
    for name in sorted(names, key=lambda n: _mtime(directory / n), reverse=True):
        claimed = directory / f"{name[:-len(READY)]}.{owner_part}.{session}{CLAIMED}"
        try:
            with changing():
                os.rename(directory / name, claimed)
        except OSError:
            continue  # another run took it first
        entry = _read(claimed)
        if entry is not None:
            return entry, claimed
        claimed.unlink(missing_ok=True)
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def ready(slot: str | None = None) -> Iterator[tuple[Entry, Path]]:
    """Every ready container (of `slot`, if given)."""
    yield from _listed(READY, slot)


def claimed() -> Iterator[tuple[Entry, Path, str, str]]:
    """Every claimed container, with its claim file, its owner (pid:starttime)
    and the session that claimed it ("-": unknown)."""
    for entry, path in _listed(CLAIMED, None):
        owner, session = path.name[: -len(CLAIMED)].rsplit(".", 2)[-2:]
        pid, _, started = owner.partition("-")
        if pid.isdigit() and started.isdigit():  # a name in another format is no owner to judge dead
            yield entry, path, f"{pid}:{started}", session


def referenced_files() -> set[str]:
    """Every host file and directory an indexed pooled container uses (its command directory, its hosts file)."""
    used: set[str] = set()
    for suffix in (READY, CLAIMED, ".removing"):
        for entry, _ in _listed(suffix, None):
            used.update((entry.run_dir, entry.hosts_file))
    return used


def _listed(suffix: str, slot: str | None) -> Iterator[tuple[Entry, Path]]:
    directory = pool_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.endswith(suffix) and (slot is None or name.startswith(f"{slot}.")):
            entry = _read(directory / name)
            if entry is not None:
                yield entry, directory / name


def take_for_removal(path: Path) -> bool:
    """Take a ready entry out of the pool so that no run claims it; False when a run took it first."""
    try:
        with changing():
            os.rename(path, path.with_name(f".{path.name}.removing"))
        return True
    except OSError:
        return False


def take_claimed_for_removal(path: Path) -> Path | None:
    """Take a dead run's claim file for removing its container, so that of two reapers only one removes
    and records it; the taken file's new path, None when another took it first."""
    taken = path.with_name(f".{path.name}.removing")
    try:
        with changing():
            os.rename(path, taken)
        return taken
    except OSError:
        return None


def forget(entry: Entry) -> None:
    """Drop every index file and host file of `entry` (its container is gone)."""
    from vectraguard.sandbox import entry as entry_files

    directory = pool_dir()
    try:
        names = [n for n in os.listdir(directory) if entry.cid in n]
    except OSError:
        names = []
    with changing():
        for name in names:
            (directory / name).unlink(missing_ok=True)
    Path(entry.hosts_file).unlink(missing_ok=True)
    entry_files.remove_run_dir(Path(entry.run_dir))


def expired(entry: Entry, now: float | None = None) -> bool:
    return (now if now is not None else time.time()) - entry.created > entry.idle


def _size_file(slot: str) -> Path:
    return pool_dir() / f"{slot}.size"


def set_size(slot: str, size: int, idle: float) -> None:
    """Keep `size` ready for this slot (`vectraguard pool start`), whatever the profile says; 0 forgets it."""
    path = _size_file(slot)
    if size <= 0:
        path.unlink(missing_ok=True)
        return
    ensure_dir()
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"size": size, "idle": idle}))
    os.rename(temporary, path)


def size_of(slot: str) -> tuple[int, float] | None:
    """(size, idle seconds) set by `pool start` for this slot, if any."""
    try:
        data = json.loads(_size_file(slot).read_text())
        return int(data["size"]), float(data["idle"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def file_identity(path: str) -> list[int]:
    """[device, inode, mtime_ns, size] of `path`; [] when it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return []
    return [info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size]
