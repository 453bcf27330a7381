"""A small JSON note of what the last `image build` produced.

Kept beside Vectra Guard's other private data so that a later reader (a
person, `doctor`, the audit) can tell which packages and suite an image ID
stands for without opening the image.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vectraguard import paths


@dataclass(frozen=True)
class BuildRecord:
    ref: str
    id: str  # "sha256:<hex>"
    built_at: str  # ISO 8601, UTC
    suite: str
    mirror: str | None  # None: mmdebstrap's default
    packages: list[str]
    recipe: str | None = None  # a variant's recipe digest (variant.py), which names its image
    extra: list[str] = field(default_factory=list)  # a variant's packages beyond the default ones


def record_path(name: str) -> Path:
    return paths.data_dir() / "images" / f"{name}.json"


def write_record(name: str, record: BuildRecord) -> Path:
    """Replace the record atomically: a reader sees the old one or the new one."""
    path = record_path(name)
    private_dirs(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp files are 0600
            json.dump(asdict(record), out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def private_dirs(directory: Path) -> None:
    # The data dir will also hold the audit store: nobody else may list it.
    for path in (directory.parent, directory):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
