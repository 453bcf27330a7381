"""The audit side of `vectraguard check`: one `checked` record per decision.

An agent on the host asks through its hook before each shell command, and
an `allow` lets that command run unsandboxed: what was allowed, asked or
denied is therefore on the same hash-chained store as runs, each decision
its own session (status `checked/allow|ask|deny`, exit status 0, 1, 2 as
check's). The record is committed before the decision is given: if it
cannot be written, there is no decision (exit 125, the hook denies).

Secrets: the environment values the command line gives (`--env`, `--set
env...`) are redacted from the command, the findings and the reason, as a
run's record redacts them (record.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vectraguard.audit import exact, record
from vectraguard.audit.store import AuditUnavailable, open_store


@dataclass(frozen=True)
class Checked:
    """One decision of `vectraguard check`, as it is recorded."""

    agent: str | None
    hook_session: str | None
    command: str | tuple[str, ...]  # a command line, or an argv
    cwd: str
    profile: str
    profile_digest: str
    decision: str  # allow, ask or deny
    exit_status: int
    findings: list[dict[str, Any]]
    remembered: dict[str, Any] | None
    reason: str


def record_checked(checked: Checked, env_flags: Sequence[str], set_flags: Sequence[str],
                   host_env: Mapping[str, str] = os.environ, *, session_id: str | None = None,
                   verb: str = "check") -> str:
    """Commit `checked` to the audit store; returns its session id (`session_id`,
    else a new one). Raises AuditUnavailable, saying that no decision is given
    (by `verb`), when it cannot be written."""
    secrets = record.env_of_flags(env_flags, host_env, set_flags)
    command: str | list[str]
    if isinstance(checked.command, str):
        [command] = record.redact([checked.command], secrets)
        shown = command
    else:
        command = record.redact(list(checked.command), secrets)
        shown = exact.index_line(command)
    [reason] = record.redact([checked.reason], secrets)
    findings = [{**f, "matched": record.redact([f["matched"]], secrets)[0]} for f in checked.findings]
    session_id, at = session_id or record.new_session_id(), record.now()
    body = record.checked(session_id, agent=checked.agent, hook_session=checked.hook_session,
                          profile=checked.profile, profile_digest=checked.profile_digest, command=command,
                          cwd=checked.cwd, decision=checked.decision, exit_status=checked.exit_status,
                          findings=findings, remembered=checked.remembered, reason=reason, at=at)
    user, _ = record.who()
    index = {"id": session_id, "started_at": at, "ended_at": at, "agent": checked.agent, "user": user,
             "profile": checked.profile, "command": shown[:record.COMMAND_COLUMN], "status": body["status"],
             "exit_status": checked.exit_status}
    try:
        store = open_store()
        try:
            store.append(session_id, "checked", body, index)
        finally:
            store.close()
    except AuditUnavailable as exc:
        consequence = ", so an agent's hook denies" if verb == "check" else "; nothing was generated"
        raise AuditUnavailable(
            f"vectraguard {verb}: no decision is given unrecorded, and the audit store {exc.path} cannot be written "
            f"({exc.cause}){consequence}", hint=exc.hint, path=exc.path, cause=exc.cause) from None
    return session_id
