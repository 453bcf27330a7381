"""The container of a running session, found by its session label.

A session's container carries `io.vectraguard.session=ID` and
`io.vectraguard.owner=PID:STARTTIME` (sandbox/spec.py); a pooled one gets
them when a run claims it. Only a container whose owner label is the
session's recorded owner is taken for it: a label alone is anyone's to set
on a container of their own making.
"""

from __future__ import annotations

from typing import Any

from vectraguard.runtime.control import SessionControl
from vectraguard.sandbox.spec import LABEL_OWNER, LABEL_SESSION
from vectraguard.sessions.running import RunningSession


def by_session(control: SessionControl, sessions: list[RunningSession]) -> dict[str, dict[str, Any]]:
    """Session id -> its running container's listing entry (the engine's /containers/json), among
    `sessions` (those `control`'s engine runs)."""
    owners = {session.id: session.owner for session in sessions}
    found: dict[str, dict[str, Any]] = {}
    for container in control.list_labelled(LABEL_SESSION):
        labels = container.get("Labels") or {}
        session = str(labels.get(LABEL_SESSION, ""))
        if session in owners and labels.get(LABEL_OWNER) == owners[session] and container.get("State") == "running":
            found[session] = container
    return found
