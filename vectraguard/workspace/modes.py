"""What a run does about its workspace beyond mounting it: the small
interface `commands/run.py` drives for the `overlay` and `rw` modes.

    open()                before the container exists
    after_create          the step after create, before the container is initialised
                          (overlay: its mount), or None when the mode needs none (rw):
                          an engine without that step (Docker) can run only the latter
    close() -> dict       after the container is removed, on every path:
                          what goes into the audit record's `workspace`
    report() -> [str]     lines for the user (stderr) once the run ended
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from vectraguard import errors
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.output import printable
from vectraguard.sandbox.held import Held


class WorkspaceMode(Protocol):
    """A workspace mode's part in one run."""

    @property
    def source(self) -> str:
        """What the sandbox's workspace bind mount shows instead of the real directory ("" for the real one)."""

    def open(self) -> None: ...

    @property
    def after_create(self) -> Callable[[dict[str, Any]], None] | None:
        """Called with the created container's inspect document before it is initialised; None: no such step."""


    def close(self) -> dict[str, Any]: ...

    def report(self) -> list[str]: ...


class Overlay:
    """`overlay`: writes land in a layer kept for review (session.py)."""

    def __init__(self, session_id: str, source: Held, profile: ResolvedProfile, rootless: bool,
                 owner: str) -> None:
        from vectraguard.workspace.session import OverlaySession

        self.session = OverlaySession(session_id, source.path, profile.limits.workspace_writes, profile.protected,
                                      rootless=rootless, sandbox_user=profile.user, owner=owner,
                                      identity=(source.device, source.inode))
        self.outcome: Any = None

    @property
    def source(self) -> str:
        return self.session.merged

    def open(self) -> None:
        self.session.open()

    @property
    def after_create(self) -> Callable[[dict[str, Any]], None] | None:
        return self.session.mount  # the overlay, mounted into the created container

    def close(self) -> dict[str, Any]:
        self.outcome = self.session.close()
        return self.outcome.audit() if self.outcome else {"mode": "overlay", "changes": 0}

    def report(self) -> list[str]:
        from vectraguard import units

        outcome = self.outcome
        if outcome is None:
            return []
        lines = []
        if outcome.cap_hit:
            lines.append(f"workspace writes reached the limit ({units.format_size(outcome.cap)}, "
                         "limits.workspace_writes): later writes failed with ENOSPC; what was written is kept")
        if outcome.changes == 0:
            from vectraguard import (
                diag,  # a notice: -q leaves it out (only errors, and what waits for review)
            )

            return lines + (["the sandbox changed nothing in the workspace"] if diag.notices_shown() else [])
        short = outcome.session_id[:12]
        return lines + [
            f"{outcome.changes} path(s) changed in the workspace ({outcome.protected} protected), kept for review "
            f"in session {short}:",
            f"  vectraguard changes {short}    vectraguard diff {short}",
            f"  vectraguard apply {short}      vectraguard discard {short}",
        ]


class ReadWrite:
    """`rw`: the sandbox writes the real tree; protected paths it created,
    changed or deleted are listed afterwards (a bind cannot guard what does
    not exist yet)."""

    source = ""  # the real directory itself

    def __init__(self, workspace: str, profile: ResolvedProfile) -> None:
        self.workspace, self.protected = Path(workspace), profile.protected
        self.before: dict[str, Any] = {}
        self.touched: list[str] = []
        self.record: Any = None

    def open(self) -> None:
        from vectraguard.workspace import baseline, gitguard, store

        # The same judgement of what is protected as an overlay session's (patterns + what git reads).
        try:
            self.record = store.LayerRecord("", str(self.workspace), "", store.RUNNING, self.protected,
                                            findings=tuple(gitguard.configured(str(self.workspace))))
            self.before = baseline.record(self.workspace)
        except OSError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: cannot read the workspace before the run: {exc}") from None

    after_create = None  # the bind of the real tree is the whole of it: nothing between create and start

    def close(self) -> dict[str, Any]:
        from vectraguard.workspace import baseline

        try:
            after = baseline.record(self.workspace)
        except OSError:
            after = {}
        changed = {p for p in set(self.before) | set(after) if p and self.before.get(p) != after.get(p)}
        self.touched = sorted(p for p in changed if self.record.protection(p))
        return {"mode": "rw", "protected_changed": self.touched}

    def report(self) -> list[str]:
        if not self.touched:
            return []
        shown = ", ".join(printable(p) for p in self.touched[:20])
        more = f" and {len(self.touched) - 20} more" if len(self.touched) > 20 else ""
        return [f"warning: the sandbox created, changed or deleted protected paths in the workspace (rw mode): "
                f"{shown}{more} — review them before git, direnv or your editor runs them"]


def for_run(mode: str, session_id: str, source: Held, profile: ResolvedProfile,
            rootless: bool, owner: str = "") -> WorkspaceMode | None:
    """The mode's part, or None for `ro` and `none`. `source`: the workspace
    directory, held open since it was checked (the overlay's lower layer must
    be that very directory). Refuses (before anything starts) an overlay this
    host cannot provide."""
    workspace = source.path
    if mode == "overlay":
        from vectraguard.workspace.layer import missing_support

        missing = missing_support(rootless)
        if missing:
            raise errors.RuntimeUnavailable(f"vectraguard: this host cannot provide an overlay workspace: {missing}",
                                            hint="use --workspace ro, or --workspace rw if you accept that the "
                                            "sandbox changes the real files")
        return Overlay(session_id, source, profile, rootless, owner)
    if mode == "rw":
        return ReadWrite(workspace, profile)
    return None
