"""The trust store: which versions of project files the user has reviewed, by SHA-256.

A project file comes from a cloned repository — untrusted input. It takes
effect only once the user has run `vectraguard trust`, which records the
file's exact digest; any later edit changes the digest and so revokes the
trust. As in direnv, trust is per (file, content hash): every version
trusted in a directory stays trusted there (up to MAX_VERSIONS, the oldest
forgotten first), so switching branches back to a version reviewed before
needs no new `trust`, while a version never trusted refuses.

The store lives in Vectra Guard's own data directory, which no sandbox can
ever mount: `trust.json` (path -> versions, oldest first; small, read by every
run) and `trusted/SHA256`, the content of each trusted version, so that the
next `trust` can show what changed since. `untrust` forgets every version of
that file, contents included.
"""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path
from typing import Any

from vectraguard import paths, state_file
from vectraguard.digests import sha256_hex
from vectraguard.errors import ConfigError
from vectraguard.records import record

STORE_NAME = "trust.json"
CONTENTS_DIR = "trusted"
WHAT = "trust store"
MAX_VERSIONS = 8  # per file: enough for a few branches, bounded all the same


@record
class TrustedVersion:
    """One version of a project file the user trusted: its digest, and when (ISO 8601, UTC)."""

    sha256: str
    trusted_at: str


@record
class TrustEntry:
    """A project file's trusted versions, oldest first; the last is the one trusted last."""

    path: str
    versions: tuple[TrustedVersion, ...]

    @property
    def sha256(self) -> str:
        return self.versions[-1].sha256

    @property
    def trusted_at(self) -> str:
        return self.versions[-1].trusted_at

    def holds(self, sha256: str) -> bool:
        return any(version.sha256 == sha256 for version in self.versions)


def digest(content: bytes) -> str:
    return sha256_hex(content)


def store_path() -> Path:
    return paths.data_dir() / STORE_NAME


def contents_dir() -> Path:
    return paths.data_dir() / CONTENTS_DIR


def load() -> dict[str, TrustEntry]:
    # Fail closed: an unreadable store trusts nothing, and says so.
    hint = "inspect or remove it, then trust your projects again"
    raw = state_file.read(store_path(), WHAT, hint)
    try:
        if raw is None:
            return {}
        if not isinstance(raw, dict):  # `[]` too: taken for empty, the next `trust` dropped every kept content
            raise TypeError(f"a JSON object was expected, not {type(raw).__name__}")
        return {key: TrustEntry(key, _versions(value)) for key, value in raw.items()}
    except (AttributeError, KeyError, TypeError) as exc:  # valid JSON, not a trust store's shape
        raise ConfigError(f"vectraguard: the {WHAT} {store_path()} is unreadable (not a trust store: "
                          f"{exc.__class__.__name__} {exc})", hint=hint) from None


def _versions(value: dict[str, Any]) -> tuple[TrustedVersion, ...]:
    if "versions" in value:
        versions = tuple(_version(v) for v in value["versions"])
    else:
        versions = (_version(value),)  # a store written before versions
    if not versions:
        raise KeyError("versions")
    return versions


def _version(value: dict[str, Any]) -> TrustedVersion:
    sha256, trusted_at = value["sha256"], value.get("trusted_at", "")
    if not isinstance(sha256, str) or not isinstance(trusted_at, str):
        raise TypeError("sha256 and trusted_at must be strings")
    return TrustedVersion(sha256, trusted_at)


def is_trusted(path: Path, content: bytes) -> bool:
    entry = load().get(str(path))
    return entry is not None and entry.holds(digest(content))


def trusted_content(sha256: str) -> bytes | None:
    """The content of a trusted version, if it is still kept (None: not kept, or unreadable)."""
    if not all(c in "0123456789abcdef" for c in sha256) or len(sha256) != 64:
        return None
    try:
        content = (contents_dir() / sha256).read_bytes()
    except OSError:
        return None
    return content if digest(content) == sha256 else None  # a damaged copy shows nothing rather than a lie


def trust(path: Path, content: bytes) -> TrustEntry:
    """Trust this version of `path` (it becomes the last trusted one)."""
    from datetime import datetime  # only `vectraguard trust` needs a clock

    version = TrustedVersion(digest(content), datetime.now(UTC).isoformat(timespec="seconds"))
    with state_file.locked(store_path(), WHAT):
        entries = load()
        old = entries.get(str(path))
        kept = tuple(v for v in (old.versions if old else ()) if v.sha256 != version.sha256)
        entry = TrustEntry(str(path), (*kept, version)[-MAX_VERSIONS:])
        entries[str(path)] = entry
        _keep_content(version.sha256, content)
        _save(entries)
        _drop_unreferenced(entries)
    return entry


def untrust(path: Path) -> bool:
    """Forget every trusted version of `path`; False if none was trusted."""
    with state_file.locked(store_path(), WHAT):
        entries = load()
        found = entries.pop(str(path), None) is not None
        if found:
            _save(entries)
            _drop_unreferenced(entries)
    return found


def _keep_content(sha256: str, content: bytes) -> None:
    directory = contents_dir()
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / sha256
    if target.exists():
        return
    tmp = directory / f".{sha256}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, target)


def _drop_unreferenced(entries: dict[str, TrustEntry]) -> None:
    """Contents no entry names any more go (the store stays bounded)."""
    wanted = {v.sha256 for entry in entries.values() for v in entry.versions}
    directory = contents_dir()
    if not directory.is_dir():
        return
    for item in directory.iterdir():
        if item.name not in wanted:
            item.unlink(missing_ok=True)


def _save(entries: dict[str, TrustEntry]) -> None:
    payload = {e.path: {"versions": [{"sha256": v.sha256, "trusted_at": v.trusted_at} for v in e.versions]}
               for e in sorted(entries.values(), key=lambda e: e.path)}
    state_file.write(store_path(), payload, WHAT)
