"""The words a completion script asks for while the user types:
`vectraguard completion --list profiles|sessions|running`.

A shell calls this at every Tab press, so it must be quick and quiet: it
reads (the profile directories, the audit store opened read-only), never
writes, and on any failure prints nothing rather than an error into the
user's command line — an empty list only means no candidates.
"""

from __future__ import annotations

import os
from collections.abc import Callable

KINDS = ("profiles", "sessions", "running")
# Session ids offered, newest first: enough for any id someone still means to
# type, few enough that a Tab press stays instant on a store of years.
MAX_SESSIONS = 200


def profiles() -> list[str]:
    """Every profile name this directory can use: shipped, /etc, the user's,
    and the project's when its file is trusted (profiles.available)."""
    from vectraguard.config import profiles as profile_files
    from vectraguard.errors import VGError

    try:
        sources = profile_files.Sources.for_directory(os.getcwd(), ignore_project=False)
    except (VGError, OSError):  # an untrusted or invalid project file: its profiles are not usable
        sources = profile_files.Sources()
    return list(profile_files.available(sources))


def sessions() -> list[str]:
    """The ids of the newest recorded sessions, newest first (audit store, read-only)."""
    from vectraguard.audit.store import open_reader

    store = open_reader()
    if store is None:
        return []
    try:
        return store.recent_ids(MAX_SESSIONS)
    finally:
        store.close()


def running() -> list[str]:
    """The ids of this user's running sessions (what `stop` and `exec` take: sessions/running.py)."""
    from vectraguard.audit.store import open_reader
    from vectraguard.sessions.running import running as running_sessions

    store = open_reader()
    if store is None:
        return []
    try:
        return [session.id for session in running_sessions(store)]
    finally:
        store.close()


LISTS: dict[str, Callable[[], list[str]]] = {"profiles": profiles, "sessions": sessions, "running": running}


def words(kind: str) -> list[str]:
    """The candidates of `kind` (one of KINDS); [] when they cannot be read."""
    try:
        return LISTS[kind]()
    except Exception:  # noqa: BLE001 - a Tab press must never print a traceback into the command line
        return []
