"""The trust store: which project files the user has reviewed, by SHA-256.

A project file comes from a cloned repository — untrusted input. It takes
effect only once the user has run `vectraguard trust`, which records the
file's exact digest; any later edit changes the digest and so revokes the
trust. The store lives in Vectra Guard's own data directory, which no
sandbox can ever mount.
"""

from __future__ import annotations

from pathlib import Path

from vectraguard import paths, state_file
from vectraguard.digests import sha256_hex
from vectraguard.records import record

STORE_NAME = "trust.json"
WHAT = "trust store"


@record
class TrustEntry:
    """A trusted project file: its path, the digest trusted, and when."""

    path: str
    sha256: str
    trusted_at: str


def digest(content: bytes) -> str:
    return sha256_hex(content)


def store_path() -> Path:
    return paths.data_dir() / STORE_NAME


def load() -> dict[str, TrustEntry]:
    # Fail closed: an unreadable store trusts nothing, and says so.
    raw = state_file.read(store_path(), WHAT, "inspect or remove it, then trust your projects again") or {}
    return {key: TrustEntry(key, value["sha256"], value.get("trusted_at", "")) for key, value in raw.items()}


def is_trusted(path: Path, content: bytes) -> bool:
    entry = load().get(str(path))
    return entry is not None and entry.sha256 == digest(content)


def trust(path: Path, content: bytes) -> TrustEntry:
    from datetime import datetime, timezone  # only `vectraguard trust` needs a clock

    entry = TrustEntry(str(path), digest(content), datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with state_file.locked(store_path(), WHAT):
        entries = load()
        entries[str(path)] = entry
        _save(entries)
    return entry


def untrust(path: Path) -> bool:
    with state_file.locked(store_path(), WHAT):
        entries = load()
        found = entries.pop(str(path), None) is not None
        if found:
            _save(entries)
    return found


def _save(entries: dict[str, TrustEntry]) -> None:
    payload = {e.path: {"sha256": e.sha256, "trusted_at": e.trusted_at} for e in sorted(entries.values(), key=lambda e: e.path)}
    state_file.write(store_path(), payload, WHAT)
