"""The words a completion script asks for while the user types:
`vectraguard completion --list profiles|agents|sessions|recorded|running`,
with `--described` each as WORD<TAB>DESCRIPTION (fish shows the description
beside each candidate; without one it repeats the option's for every word).

A shell calls this at every Tab press, so it must be quick and quiet: it
reads (the profile directories, the audit store opened read-only), never
writes, and on any failure prints nothing rather than an error into the
user's command line — an empty list only means no candidates.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

KINDS = ("profiles", "agents", "sessions", "recorded", "running")
# Session ids offered, newest first: enough for any id someone still means to
# type, few enough that a Tab press stays instant on a store of years.
MAX_SESSIONS = 200
DESCRIPTION_CHARS = 60  # fish fits a candidate and its description on one line of a pager

# A candidate and what it is ("" when nothing is known).
Candidate = tuple[str, str]


def profiles() -> list[Candidate]:
    """Every profile name this directory can use: shipped, /etc, the user's,
    and the project's when its file is trusted (profiles.available); described by where it is defined."""
    from vectraguard.config import profiles as profile_files

    sources = _sources()
    where = {str(directory): label for directory, label in zip(
        sources.directories(), ("shipped profile", "system profile", "your profile"), strict=True)}
    return [(name, _where(files[-1], where)) for name, files in profile_files.available(sources).items()]


def agents() -> list[Candidate]:
    """The profiles that define an agent (an `agent` section: what `agent start` takes), with its command."""
    import shlex

    from vectraguard.config import profiles as profile_files
    from vectraguard.errors import VGError

    sources = _sources()
    found = []
    for name in profile_files.available(sources):
        try:
            agent = profile_files.resolve(name, [], sources).agent
        except (VGError, OSError):
            continue  # a broken profile is not offered: starting it would only be refused
        if agent is not None:
            found.append((name, f"agent: {shlex.join(agent.command)}" if agent.command else "agent"))
    return found


def sessions() -> list[Candidate]:
    """The newest recorded sessions, newest first (audit store, read-only)."""
    return _sessions(recorded=False)


def recorded() -> list[Candidate]:
    """The newest sessions with a terminal recording (what `logs replay` plays), newest first."""
    return _sessions(recorded=True)


def running() -> list[Candidate]:
    """This user's running sessions (what `stop` and `exec` take: sessions/running.py)."""
    import shlex

    from vectraguard.audit.store import open_reader
    from vectraguard.sessions.running import running as running_sessions

    store = open_reader()
    if store is None:
        return []
    try:
        return [(session.id, _described(session.started_at, session.profile, shlex.join(session.argv)))
                for session in running_sessions(store)]
    finally:
        store.close()


LISTS: dict[str, Callable[[], list[Candidate]]] = {"profiles": profiles, "agents": agents, "sessions": sessions,
                                                   "recorded": recorded, "running": running}


def words(kind: str, described: bool = False) -> list[str]:
    """The candidates of `kind` (one of KINDS), each `word` or, `described`, `word<TAB>description`;
    [] when they cannot be read."""
    try:
        candidates = LISTS[kind]()
    except Exception:  # noqa: BLE001 - a Tab press must never print a traceback into the command line
        return []
    if not described:
        return [word for word, _ in candidates]
    return [f"{word}\t{_one_line(text)}" if text else word for word, text in candidates]


def _sources() -> Any:
    from vectraguard.config import profiles as profile_files
    from vectraguard.errors import VGError

    try:
        return profile_files.Sources.for_directory(os.getcwd(), ignore_project=False)
    except (VGError, OSError):  # an untrusted or invalid project file: its profiles are not usable
        return profile_files.Sources()


def _where(path: str, labels: dict[str, str]) -> str:
    return labels.get(os.path.dirname(path), "project profile")


def _sessions(recorded: bool) -> list[Candidate]:
    from vectraguard.audit.store import open_reader

    store = open_reader()
    if store is None:
        return []
    try:
        return [(sid, _described(started, profile, command))
                for sid, started, profile, command in store.recent(MAX_SESSIONS, recorded=recorded)]
    finally:
        store.close()


def _described(started_at: str, profile: str, command: str) -> str:
    """"2026-12-01 15:13 dev: make test" (UTC, as stored)."""
    return f"{started_at[:16].replace('T', ' ')} {profile}: {command}"


def _one_line(text: str) -> str:
    """A description fish can show: no tabs or line breaks (a sandboxed command may hold any), bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= DESCRIPTION_CHARS else flat[:DESCRIPTION_CHARS - 1] + "…"
