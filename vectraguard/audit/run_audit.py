"""The audit side of one `vectraguard run`: refused, started, finished.

Kept apart from the run command so that the command reads as the pipeline
of DESIGN §1 and this module alone decides what goes into the record.
"""

from __future__ import annotations

import time
from typing import Any

from vectraguard.audit import exact, record, reserve
from vectraguard.audit.capture import OutputCapture
from vectraguard.audit.record import COMMAND_COLUMN
from vectraguard.audit.store import (
    SCHEMA_VERSION,
    UNAVAILABLE_HINT,
    AuditStore,
    AuditUnavailable,
    canonical,
    open_store,
)
from vectraguard.config.resolved import ResolvedProfile, as_dict, digest
from vectraguard.runtime.owner import acting_for_client, owner_alive
from vectraguard.sandbox.mounts import Mount


class RunAudit:
    """The audit record of one run, written as it happens."""

    def __init__(self, store: AuditStore, session_id: str, agent: str | None, argv: list[str], cwd: str,
                 owner: str, started_at: str = "", _started_clock: float = 0.0,
                 approvals: list[dict[str, Any]] | None = None, secrets: dict[str, str] | None = None) -> None:
        self.store = store
        self.session_id = session_id
        self.agent = agent
        self.argv = argv
        self.cwd = cwd
        self.owner = owner
        self.started_at = started_at
        self._started_clock = _started_clock
        self.approvals: list[dict[str, Any]] = [] if approvals is None else approvals
        # The values the record must not repeat (see record.py): the sandbox's
        # environment once known, kept for the reason `finished` records.
        self.secrets: dict[str, str] = {} if secrets is None else secrets
        # The run's own words before `--` (its options), kept redacted in the
        # `sandbox` snapshot: `exec` judges a command as this run would (commands/exec.py).
        self.options: list[str] = []

    @classmethod
    def open(cls, session_id: str, agent: str | None, argv: list[str], cwd: str, owner: str) -> RunAudit:
        """Open the store (fail closed) and close out sessions of dead runs."""
        store = open_store()
        store.mark_incomplete(owner_alive, record.now())
        return cls(store, session_id, agent, argv, cwd, owner)

    def check_reserve(self, layer_bytes: int = 0) -> None:
        """Refuse a run the store could not record the end of (reserve.py)."""
        reserve.check(self.store.path, len(canonical({"argv": self.argv, "cwd": self.cwd}).encode()), layer_bytes)
        reserve.hold(self.store.path)

    def _index(self, status: str, profile: str | None, at: str) -> dict[str, Any]:
        user, _ = record.who()
        return {"id": self.session_id, "started_at": at, "agent": self.agent, "user": user, "profile": profile,
                "command": exact.index_line(self.argv)[:COMMAND_COLUMN], "status": status, "owner": self.owner}

    def refused(self, profile: str | None, reason: str, approvals: tuple[dict[str, Any], ...] = (),
                env: dict[str, str] | None = None) -> None:
        """`env`: what the run's flags would have put in the sandbox's environment;
        its values are redacted from argv, the reason and the findings."""
        at = record.now()
        self.secrets = {**self.secrets, **(env or {})}
        self.argv = record.redact(self.argv, self.secrets)
        [reason] = record.redact([reason], self.secrets)
        body = record.refused(self.session_id, agent=self.agent, profile=profile, argv=self.argv, cwd=self.cwd,
                              reason=reason, at=at, approvals=self._redacted(approvals, self.secrets))
        self.store.append(self.session_id, "refused", body,
                          {**self._index("refused", profile, at), "ended_at": at, "exit_status": 125})

    def started(self, profile: ResolvedProfile, mounts: tuple[Mount, ...], env: dict[str, str], image: str,
                approvals: tuple[dict[str, Any], ...] = (), spec: Any = None, engine: str = "podman",
                sent: dict[str, Any] | None = None) -> None:
        """`env` is the sandbox's environment: only its names are recorded, and
        any of its values that appear in argv are redacted there (and in the
        listing index, and in what the risk findings quote), so a secret
        passed both ways is not kept either. The approval decisions are in
        this record, committed before the sandbox exists, and again in
        `finished`. `spec`: the compiled ContainerSpec, kept with the profile for
        `vectraguard inspect` (sessions/snapshot.py); `sent`: what the engine will be sent when it is
        not Podman's SpecGenerator (runtime/engine.py described), recorded in its place."""
        from vectraguard.sessions.snapshot import snapshot

        self.started_at, self._started_clock = record.now(), time.monotonic()
        self.secrets = {**self.secrets, **env}
        self.argv = record.redact(self.argv, self.secrets)
        self.approvals = self._redacted(approvals, self.secrets)
        env_names = sorted(env)
        canonical = as_dict(profile)
        body = record.started(
            self.session_id, agent=self.agent, profile=profile.name,
            profile_digest=digest(profile), argv=self.argv, cwd=self.cwd,
            mounts=[{"source": m.source, "target": m.target, "read_only": m.read_only, **({"overlay": True} if m.overlay else {})}
                    for m in mounts],
            network=canonical["network"], env_names=env_names, image=image, owner=self.owner, at=self.started_at,
            approvals=self.approvals, isolation=profile.isolation, forkserver=acting_for_client(),
            sandbox=None if spec is None else snapshot(profile.name, canonical, spec, self.secrets, self.options, sent),
            engine=engine)
        self.store.append(self.session_id, "started", body, self._index("started", profile.name, self.started_at))

    @staticmethod
    def _redacted(approvals: tuple[dict[str, Any], ...], env: dict[str, str]) -> list[dict[str, Any]]:
        return [{**entry, "findings": [{**f, "matched": record.redact([f["matched"]], env)[0]}
                                       for f in entry.get("findings", [])]} for entry in approvals]

    def finished(self, status: str, exit_status: int, reason: str, image_id: str,
                 capture: OutputCapture | None, network: dict[str, Any] | None = None,
                 recording: dict[str, Any] | None = None, workspace: dict[str, Any] | None = None,
                 undelivered: dict[str, dict[str, Any]] | None = None,
                 container: dict[str, Any] | None = None) -> str | None:
        """Record how the run ended. The run has happened: a store that cannot
        take this record (it filled up during the run) does not raise; the
        session is marked `incomplete` with the reason and the exit status
        instead, or — when even that cannot be written — left `started` for
        the next run to mark (mark_incomplete). Returns what the user must be
        told then, else None."""
        at = record.now()
        [reason] = record.redact([reason], self.secrets)  # an error message may quote a value
        duration_ms = int((time.monotonic() - self._started_clock) * 1000)
        body = record.finished(self.session_id, status=status, exit_status=exit_status, reason=reason,
                               image_id=image_id, started_at=self.started_at, at=at, duration_ms=duration_ms,
                               capture=capture, network=network, approvals=self.approvals, recording=recording,
                               workspace=workspace, undelivered=undelivered, container=container)
        outputs = ({name: (bytes(capture.streams[fd].head), bytes(capture.streams[fd].tail))
                    for name, fd in (("stdout", 1), ("stderr", 2))} if capture else None)
        index = {"status": status, "exit_status": exit_status, "ended_at": at, "duration_ms": duration_ms}
        try:
            self.store.append(self.session_id, "finished", body, index, outputs)
            return None
        except AuditUnavailable as exc:
            if not reserve.release(self.store.path):  # the disk filled during the run: the reserve pays for the record
                return self._incomplete(status, exit_status, exc)
            try:
                self.store.append(self.session_id, "finished", body, index, outputs)
            except AuditUnavailable as again:
                return self._incomplete(status, exit_status, again)
            return (f"vectraguard: warning: the audit store {self.store.path}'s file system filled up during the run "
                    f"({exc.cause}); its reserve was used to record it; {UNAVAILABLE_HINT}")

    def _incomplete(self, status: str, exit_status: int, failure: AuditUnavailable) -> str:
        """The small record that says the full one could not be written."""
        at = record.now()
        reason = (f"the finished record could not be written ({failure.cause}); the run ended {status} "
                  f"with exit status {exit_status}")
        body = {"version": SCHEMA_VERSION, "session": self.session_id, "at": at, "status": "incomplete",
                "reason": reason, "exit_status": exit_status}
        told = (f"vectraguard: warning: the audit store {failure.path} could not take this run's record "
                f"({failure.cause})")
        try:
            self.store.append(self.session_id, "incomplete", body,
                              {"status": "incomplete", "exit_status": exit_status, "ended_at": at})
        except AuditUnavailable:
            return (f"{told}; session {self.session_id} stays 'started' until the next run marks it incomplete "
                    f"(its exit status, {exit_status}, and output are not recorded); {UNAVAILABLE_HINT}")
        return (f"{told}: session {self.session_id} is recorded incomplete, with exit status {exit_status} "
                f"(its output is not recorded); {UNAVAILABLE_HINT}")


def record_removal(session_id: str, container_id: str, error: str = "", by: str = "vectraguard") -> None:
    """A `removed` event in the session's record: its container is gone (`by`
    the run's own detached remover, or the `reaper` after a killed run), or
    could not be removed (`error`; the reaper will try again). It adds to
    the record and leaves the session's status alone. Called in a detached
    process, after the run has returned: it never raises (a store that
    cannot take it loses only this note)."""
    try:
        store = open_store()
    except Exception:  # noqa: BLE001 - see above
        return
    try:
        body: dict[str, Any] = {"version": SCHEMA_VERSION, "session": session_id, "at": record.now(),
                                "container_id": container_id, "by": by}
        if error:
            body["error"] = error
        # Only into a session this store has: the reaper removes the sandboxes of
        # every killed run, whichever store (VECTRAGUARD_DATA_DIR) recorded it.
        store.append(session_id, "removed", body, index={}, known_session=True)
    except Exception:  # noqa: BLE001 - see above
        pass
    finally:
        store.close()
