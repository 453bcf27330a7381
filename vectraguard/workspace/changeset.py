"""The change set of one overlay session: what the sandbox changed in the
workspace, as data Vectra Guard owns.

After a run the overlay's upper directory (whiteouts, opaque directories,
copied-up files) is read once by `harvest` into this form and the overlay
is taken down; everything later (`changes`, `diff`, `apply`) reads only
this, never overlay metadata. Paths are relative to the workspace root,
'/'-separated, without '.', '..' or empty components; entries are sorted
by path, parents before children.

Stored as `changes.json` ({"version": 1, "entries": [...]}) beside a
`blobs/` directory holding each regular file's content under its SHA-256.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1

# What an entry is, in the layer ("after") and in the baseline ("before").
FILE, DIRECTORY, SYMLINK, SPECIAL, ABSENT = "file", "dir", "symlink", "special", "none"
KINDS = (FILE, DIRECTORY, SYMLINK, SPECIAL, ABSENT)

# What happened to the path.
ADDED, MODIFIED, DELETED, TYPE_CHANGED = "added", "modified", "deleted", "type-changed"
ACTIONS = (ADDED, MODIFIED, DELETED, TYPE_CHANGED)


@dataclass(frozen=True)
class Change:
    """One changed path.

    `after` is what the layer holds (ABSENT for a deletion); `before` what
    the workspace held when the session started (ABSENT for an addition).
    `mode` is the layer's permission bits (st_mode & 0o7777, setuid and
    setgid included as the sandbox set them: apply drops them). `size` is in
    bytes (a symlink: its target's length). `sha256` is the hex digest of a
    file's content (its blob's name) or of a symlink's target; "" otherwise.
    """

    path: str
    action: str
    after: str
    before: str
    mode: int = 0
    size: int = 0
    sha256: str = ""
    link: str = ""  # a symlink's target, as written in the layer

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        change = cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
        if change.action not in ACTIONS or change.after not in KINDS or change.before not in KINDS:
            raise ValueError(f"{change.path!r}: unknown action or kind")
        check_relative(change.path)
        return change


def check_relative(path: str) -> str:
    """`path` if it is a clean relative path; ValueError otherwise."""
    parts = path.split("/")
    # `in` on the list, not a generator: at C speed, since a path can have thousands of parts.
    if not path or path.startswith("/") or "" in parts or "." in parts or ".." in parts or "\0" in path:
        raise ValueError(f"{path!r} is not a clean relative path")
    return path


def save(directory: Path, changes: list[Change]) -> None:
    """Write changes.json atomically (blobs are written by the harvest first)."""
    body = {"version": FORMAT_VERSION, "entries": [asdict(c) for c in sorted(changes, key=lambda c: c.path)]}
    partial = directory / "changes.json.partial"
    partial.write_text(json.dumps(body, indent=0))
    partial.replace(directory / "changes.json")


def load(directory: Path) -> list[Change]:
    """The stored entries; ValueError if the file is not a change set of this format."""
    body = json.loads((directory / "changes.json").read_text())
    if not isinstance(body, dict) or body.get("version") != FORMAT_VERSION:
        raise ValueError("not a change set of this version")
    return [Change.from_json(entry) for entry in body["entries"]]


def blob_path(directory: Path, sha256: str) -> Path:
    return directory / "blobs" / sha256
