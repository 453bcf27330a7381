"""The trust store: which project files the user has reviewed, by SHA-256.

A project file comes from a cloned repository — untrusted input. It takes
effect only once the user has run `vectraguard trust`, which records the
file's exact digest; any later edit changes the digest and so revokes the
trust. The store lives in Vectra Guard's own data directory, which no
sandbox can ever mount.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from vectraguard import paths
from vectraguard.errors import ConfigError

STORE_NAME = "trust.json"


@dataclass(frozen=True)
class TrustEntry:
    path: str
    sha256: str
    trusted_at: str


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def store_path() -> Path:
    return paths.data_dir() / STORE_NAME


def load() -> dict[str, TrustEntry]:
    path = store_path()
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Fail closed: an unreadable store trusts nothing, and says so.
        raise ConfigError(f"vectraguard: the trust store {path} is unreadable ({exc})",
                          hint=f"inspect or remove it, then trust your projects again") from None
    return {key: TrustEntry(key, value["sha256"], value.get("trusted_at", "")) for key, value in raw.items()}


def is_trusted(path: Path, content: bytes) -> bool:
    entry = load().get(str(path))
    return entry is not None and entry.sha256 == digest(content)


def trust(path: Path, content: bytes) -> TrustEntry:
    from datetime import datetime, timezone  # only `vectraguard trust` needs a clock

    entries = load()
    entry = TrustEntry(str(path), digest(content), datetime.now(timezone.utc).isoformat(timespec="seconds"))
    entries[str(path)] = entry
    _save(entries)
    return entry


def untrust(path: Path) -> bool:
    entries = load()
    found = entries.pop(str(path), None) is not None
    if found:
        _save(entries)
    return found


def _save(entries: dict[str, TrustEntry]) -> None:
    import tempfile  # not on the run path

    directory = store_path().parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    payload = {e.path: {"sha256": e.sha256, "trusted_at": e.trusted_at} for e in sorted(entries.values(), key=lambda e: e.path)}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".trust-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, store_path())
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"vectraguard: cannot write the trust store {store_path()}: {exc.strerror}") from None
