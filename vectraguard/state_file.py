"""Small JSON files of Vectra Guard's own state (trust, approvals): private,
replaced atomically, read fail-closed.

They live in the data directory (0700), which no sandbox may mount. A
writer holds an exclusive lock on a sibling `.lock` file for its whole
read-modify-write, so two concurrent `vectraguard` processes cannot lose
each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vectraguard.errors import ConfigError


def read(path: Path, what: str, hint: str) -> Any:
    """The file's JSON, None when it does not exist; ConfigError when unreadable."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"vectraguard: the {what} {path} is unreadable ({exc})", hint=hint) from None


@contextlib.contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"vectraguard: cannot write the {what} {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write(path: Path, payload: Any, what: str) -> None:
    """Replace the file with `payload` (call inside `locked`)."""
    import tempfile  # only writers need it

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    except OSError as exc:
        raise ConfigError(f"vectraguard: cannot write the {what} {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"vectraguard: cannot write the {what} {path}: {exc.strerror}") from None
