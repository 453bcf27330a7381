"""A cache of configuration files that already passed parsing and validation.

Parsing with ruamel.yaml and validating with jsonschema cost ~110 ms of
imports alone, more than a whole sandbox start. A file whose exact bytes were
validated before against the exact same schema by the same version of Vectra
Guard gives the same result, so the result is kept, keyed by a SHA-256 over
all three. Only *valid* results are cached: a bad file is re-examined (and
reported) every time. The cache lives in the user's own cache directory and
is ignored unless that directory is private to the user, so it cannot be
planted by someone else.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from vectraguard import __version__, paths
from vectraguard.digests import sha256_of


def cache_dir() -> Path:
    return paths.cache_dir() / "validated"


def cache_key(schema: bytes, content: bytes) -> str:
    parts = (__version__.encode(), schema, content)
    return sha256_of([piece for part in parts for piece in (len(part).to_bytes(8, "big"), part)])


def _private(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def lookup(key: str) -> tuple[Any, dict[str, int]] | None:
    directory = cache_dir()
    if not _private(directory):
        return None
    try:
        entry = json.loads((directory / f"{key}.json").read_bytes())
        return entry["data"], entry["lines"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(key: str, data: Any, lines: dict[str, int]) -> None:
    """Best effort: a cache that cannot be written only costs time."""
    import tempfile

    directory = cache_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(directory):
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump({"data": data, "lines": lines}, handle)
        os.replace(tmp, directory / f"{key}.json")
    except OSError:
        return
