"""The files a sandbox's session keeps on the host while it runs, named by its session ID.

One place names them, for the runtimes that make them (runtime/session.py for
Podman, runtime/docker/runtime.py) and for what removes them after a
`vectraguard` that was killed (runtime/reaper.py: the next run of either
engine, `vectraguard sandbox reap`):

- NAME.hosts in paths.hosts_dir(): the sandbox's /etc/hosts (every engine);
- NAME.resolv.conf beside it: the empty /etc/resolv.conf of a Docker sandbox
  with no network (runtime/docker/spec.py);
- entries/NAME/ in the runtime directory: vectraguard-entry's command file,
  an exec's files and, on Docker, the start FIFO (sandbox/entry.py). The
  command file holds the sandbox's environment, which must not outlive it.

NAME is the session ID (the container's io.vectraguard.session label), or the
process ID when a spec has none. A `vectraguard` killed after making them and
before its container existed leaves files no container names: `sweep` (run by
`vectraguard sandbox reap` once every engine has listed its sandboxes) removes
those older than SWEEP_AFTER_S. Pooled containers' files (pool-*) are the
pool's (pool/reap.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from vectraguard.paths import hosts_dir, runtime_dir

HOSTS_SUFFIX = ".hosts"
RESOLV_SUFFIX = ".resolv.conf"
# Files are made just before their container is created (milliseconds): an hour without one is an orphan.
SWEEP_AFTER_S = 3600.0


def hosts_path(name: str) -> Path:
    return hosts_dir() / f"{name}{HOSTS_SUFFIX}"


def resolv_path(name: str) -> Path:
    return hosts_dir() / f"{name}{RESOLV_SUFFIX}"


def entries_dir() -> Path:
    """The parent of every session's command directory."""
    return runtime_dir() / "entries"


def forget(session: str) -> None:
    """Remove every file above of `session` (a session ID: letters and digits only, else nothing is done);
    what is gone already is fine."""
    if not session.isalnum():
        return
    from vectraguard.sandbox import entry

    for path in (hosts_path(session), resolv_path(session)):
        path.unlink(missing_ok=True)
    run_dir = entries_dir() / session
    if run_dir.is_dir() and not run_dir.is_symlink():
        entry.remove_run_dir(run_dir)


def sweep(live: Iterable[str], older_than_s: float = SWEEP_AFTER_S) -> list[str]:
    """Remove the files of sessions not in `live` (the session IDs of every sandbox that exists, in every
    engine) whose files are older than `older_than_s` seconds; the session IDs whose files went."""
    keep = set(live)
    now = time.time()
    found: dict[str, float] = {}  # session -> newest mtime of its files
    places = [(hosts_dir(), (HOSTS_SUFFIX, RESOLV_SUFFIX)), (entries_dir(), ("",))]
    for directory, suffixes in places:
        try:
            names = [entry.name for entry in directory.iterdir()]
        except OSError:
            continue
        for name in names:
            for suffix in suffixes:
                session = name.removesuffix(suffix) if suffix else name
                if (not suffix or name.endswith(suffix)) and session.isalnum():
                    try:
                        changed = (directory / name).lstat().st_mtime
                    except OSError:
                        continue
                    found[session] = max(found.get(session, 0.0), changed)
                    break
    swept = [session for session, changed in sorted(found.items())
             if session not in keep and now - changed > older_than_s]
    for session in swept:
        forget(session)
    return swept
