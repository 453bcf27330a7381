"""Remembered approvals: "yes to exactly this, here, under exactly this profile, for a while".

An entry is bound to the exact argv, the working directory, the digest of
the resolved profile (any change to the profile, its rules or the flags
that shaped it makes a new digest) and each file the command runs, by path,
target and SHA-256 (approvals/bound_files.py: a rewritten, deleted or
swapped script asks again); and it expires. `vectraguard approvals
list|revoke` show and remove them. The file sits in Vectra Guard's data
directory (0700/0600), which no sandbox can mount, so nothing inside a
sandbox can approve itself.

Entries written before files were bound have no `files`: they load, and
hold only for a command that runs no file now — the binding they were
given then (none) is compared like any other, so an old yes to
`./deploy.sh` asks once more instead of vouching for whatever deploy.sh
holds today.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from vectraguard import paths, records, state_file
from vectraguard.approvals.bound_files import Binding, BoundFile, bind
from vectraguard.errors import ConfigError, UsageError

STORE_NAME = "approvals.json"
WHAT = "approvals store"
HINT = "inspect or remove it (every remembered approval is then forgotten)"


@records.record
class Remembered:
    """One remembered approval: what it is bound to, who gave it, until when."""

    id: str
    argv: tuple[str, ...]
    cwd: str
    profile: str
    profile_digest: str
    rules: tuple[str, ...]  # the findings approved, for the listing
    user: str
    created_at: str  # ISO 8601 UTC
    expires_at: float  # seconds since the epoch
    files: tuple[BoundFile, ...] = ()  # the files the command runs, as approved

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def same_run(self, argv: tuple[str, ...], cwd: str, digest: str) -> bool:
        """The same command, directory and profile (whatever its files hold now)."""
        return self.argv == argv and self.cwd == cwd and self.profile_digest == digest


def store_path() -> Path:
    return paths.data_dir() / STORE_NAME


def generation() -> str | None:
    """The store's state, for a cached gate decision's key (approvals/cached_gate.py):
    "sha256:" and the hex SHA-256 of its bytes, "absent" when there is no
    store, None when it cannot be read (then nothing is cached). Every grant,
    revocation and pruning writes other bytes (an entry's id is random), however
    close in time: unlike an mtime, whose tick can hold two writes, or an
    inode number, which a rewrite may reuse."""
    from vectraguard.digests import sha256_hex

    try:
        return "sha256:" + sha256_hex(store_path().read_bytes())
    except FileNotFoundError:
        return "absent"
    except OSError:
        return None


def load() -> list[Remembered]:
    raw = state_file.read(store_path(), WHAT, HINT) or []
    try:
        return [Remembered(**{**item, "argv": tuple(item["argv"]), "rules": tuple(item["rules"]),
                              "files": tuple(BoundFile(**f) for f in item.get("files", ()))}) for item in raw]
    except (TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"vectraguard: the {WHAT} {store_path()} is unreadable ({exc})", hint=HINT) from None


def find(argv: tuple[str, ...], cwd: str, digest: str, binding: Binding | None = None, *,
         now: float | None = None) -> Remembered | None:
    """The approval remembered for this run, if one holds: same argv, directory
    and profile digest, not expired, and bound to exactly the files the command
    runs now (`binding`; read here when not given, only if an entry is a candidate)."""
    moment = time.time() if now is None else now
    for entry in load():
        if not entry.same_run(argv, cwd, digest) or entry.expired(moment):
            continue
        binding = binding or bind(argv, cwd)
        if binding.matches(entry.files):
            return entry
    return None


def remember(argv: tuple[str, ...], cwd: str, profile: str, digest: str, rules: tuple[str, ...], user: str,
             created_at: str, seconds: float, files: tuple[BoundFile, ...] = ()) -> Remembered:
    """Keep a yes (replacing any earlier one for the same run); `files` as
    approved, from a complete binding (the caller checks)."""
    entry = Remembered(os.urandom(6).hex(), argv, cwd, profile, digest, rules, user, created_at,
                       time.time() + seconds, files)
    with state_file.locked(store_path(), WHAT):
        now = time.time()
        kept = [e for e in load() if not e.expired(now) and not e.same_run(argv, cwd, digest)]
        _save([*kept, entry])
    return entry


def revoke(prefixes: list[str], everything: bool = False) -> list[Remembered]:
    """Remove the entries with these ids (unique prefixes accepted), or all of them."""
    with state_file.locked(store_path(), WHAT):
        entries = load()
        if everything:
            chosen = entries
        else:
            chosen = []
            for prefix in prefixes:
                hits = [e for e in entries if e.id.startswith(prefix)]
                if len(hits) != 1:
                    problem = "matches no approval" if not hits else "matches more than one approval"
                    raise UsageError(f"vectraguard: approval id {prefix!r} {problem}",
                                     hint="`vectraguard approvals list` shows the ids")
                chosen.append(hits[0])
        if chosen:
            _save([e for e in entries if e not in chosen])
    return chosen


def _save(entries: list[Remembered]) -> None:
    state_file.write(store_path(), [_as_dict(e) for e in entries], WHAT)


def _as_dict(entry: Remembered) -> dict[str, object]:
    """`entry` as JSON-ready data, its bound files as objects too (what dataclasses.asdict gave)."""
    return {**records.as_dict(entry), "files": [records.as_dict(f) for f in entry.files]}
