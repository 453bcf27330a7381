"""Where overlay sessions' layers are kept, and what state each is in.

One directory per session under `$DATA/workspaces/SESSION/` (private, 0700,
never mountable into a sandbox: it is inside Vectra Guard's data
directory): `layer.json` (this record), `baseline.json.gz`, and once the run
ended `changes.json` + `blobs/`. States: `running` (the session has not been
harvested yet), `pending` (reviewable), `applied` (every change not held
back has been applied), `discarded` (content removed; the record stays
until `logs prune` drops the session).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vectraguard import errors, ids, paths
from vectraguard.workspace import changeset

RUNNING, PENDING, APPLIED, DISCARDED = "running", "pending", "applied", "discarded"
STATES = (RUNNING, PENDING, APPLIED, DISCARDED)


@dataclass(frozen=True)
class LayerRecord:
    """layer.json: the session's layer as recorded when it started, updated as it moves on."""

    session_id: str
    workspace: str  # the real workspace directory (absolute, resolved)
    created_at: str  # ISO 8601 UTC
    state: str
    protected: tuple[str, ...]  # the profile's filesystem.protected patterns for this session
    cap: int = 0  # limits.workspace_writes, bytes
    cap_hit: bool = False
    used: int = 0  # bytes the layer held when the run ended
    applied: tuple[str, ...] = ()  # paths applied so far
    history: tuple[dict[str, Any], ...] = field(default=())  # apply/discard events: who, when, what
    # Paths protected for this session beyond the patterns, each with why (workspace/gitguard.py):
    # what git's configuration names, planted git directories, refs moved to commits that
    # change protected paths. Each covers what is beneath it.
    findings: tuple[tuple[str, str], ...] = ()
    owner: str = ""  # "<pid>:<start time>" of the vectraguard run that made the layer

    def protection(self, path: str) -> str | None:
        """Why `path` is protected in this session (a pattern or a finding), or None."""
        from vectraguard.workspace.protected import why_protected

        return why_protected(path, self.protected, self.findings)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("protected", "applied", "history"):
            known[key] = tuple(known.get(key, ()))
        known["findings"] = tuple((str(p), str(r)) for p, r in known.get("findings", ()))
        record = cls(**known)
        if record.state not in STATES:
            raise ValueError(f"unknown state {record.state!r}")
        return record


def root() -> Path:
    return paths.layers_dir()


@dataclass(frozen=True)
class Layer:
    """One session's layer directory."""

    path: Path

    @property
    def session_id(self) -> str:
        return self.path.name

    @property
    def baseline_path(self) -> Path:
        return self.path / "baseline.json.gz"

    def record(self) -> LayerRecord:
        try:
            return LayerRecord.from_json(json.loads((self.path / "layer.json").read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise errors.ConfigError(f"vectraguard: the layer record {self.path / 'layer.json'} is unreadable "
                                     f"({exc})") from None

    def write(self, record: LayerRecord) -> None:
        partial = self.path / "layer.json.partial"
        partial.write_text(json.dumps(asdict(record), indent=1))
        partial.replace(self.path / "layer.json")

    def update(self, **changes: Any) -> LayerRecord:
        record = replace(self.record(), **changes)
        self.write(record)
        return record

    def changes(self) -> list[changeset.Change]:
        try:
            return changeset.load(self.path)
        except FileNotFoundError:
            raise errors.UsageError(f"vectraguard: session {self.session_id} has no change set yet "
                                    "(still running, or its run was killed before the layer was read)") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise errors.ConfigError(f"vectraguard: the change set of session {self.session_id} is unreadable "
                                     f"({exc})") from None

    def blob(self, sha256: str) -> Path:
        return changeset.blob_path(self.path, sha256)

    def drop_content(self) -> None:
        """Remove everything but the record (discard)."""
        for name in ("blobs", "changes.json", "baseline.json.gz"):
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)


def create(record: LayerRecord) -> Layer:
    base = root()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    layer = Layer(base / record.session_id)
    layer.path.mkdir(mode=0o700)
    (layer.path / "blobs").mkdir(mode=0o700)
    layer.write(record)
    return layer


def all_layers(*, strict: bool = True) -> list[Layer]:
    """Every layer directory, newest first; not `strict`: those whose record is unreadable are left out."""
    base = root()
    if not base.is_dir():
        return []
    dated = []
    for path in base.iterdir():
        if (path / "layer.json").is_file():
            try:
                dated.append((Layer(path).record().created_at, Layer(path)))
            except errors.ConfigError:
                if strict:
                    raise
    return [layer for _, layer in sorted(dated, key=lambda item: item[0], reverse=True)]


def find(given: str) -> Layer:
    """The layer of the session whose id starts or ends with `given` (vectraguard/ids.py);
    UsageError when none or several."""
    if not given or "/" in given or given.startswith("."):
        raise errors.UsageError(f"vectraguard: {given!r} is not a session id")
    base = root()
    names = [p.name for p in base.iterdir() if not p.name.startswith(".")] if base.is_dir() else []
    found = ids.one(given, ids.matching(given, names), what="workspace layer",
                    missing="no workspace layer for session", hint="`vectraguard changes --all` lists the layers kept")
    return Layer(base / found)


def latest_for(directory: str) -> Layer:
    """The newest layer whose workspace is `directory` or contains it."""
    for layer in all_layers():
        workspace = layer.record().workspace
        if directory == workspace or directory.startswith(workspace.rstrip("/") + "/"):
            return layer
    raise errors.UsageError(f"vectraguard: no workspace layer for {directory}",
                            hint="`vectraguard changes --all` lists the layers kept")


def remove(session_ids: list[str]) -> int:
    """Delete the layers of these sessions (logs prune); the number removed."""
    removed = 0
    for session_id in session_ids:
        target = root() / session_id
        if target.is_dir() and "/" not in session_id:
            shutil.rmtree(target, ignore_errors=True)
            removed += 1
    return removed
