"""The Podman runtime (isolation `container` and `gvisor`): a SandboxRuntime
(runtime/interface.py) over Podman's REST API.

A session is created, initialised, checked and started by session.py
(run_session), possibly from a pooled container (vectraguard/pool/); the
stopped container is removed after the outcome is recorded, in a detached
process (removal.py), which refills the pool first and then reaps what
killed runs left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vectraguard.runtime import service
from vectraguard.runtime.interface import SessionRequest
from vectraguard.runtime.outcome import RunResult
from vectraguard.runtime.session import Claimed, run_session


class PodmanRuntime:
    """One run's Podman side. `isolation`: the profile's level (where the host
    sees the sandbox's mounts depends on it: isolation/views.py); `pool`: a
    pool/plan.py plan for this run, or None."""

    name = "podman"

    def __init__(self, isolation: str, rootless: bool, cgroup_mode: str, pool: Any, owner: str) -> None:
        self.isolation, self.rootless, self.cgroup_mode = isolation, rootless, cgroup_mode
        self.pool_plan, self.owner = pool, owner
        self.client: Any = None
        self.spec: Any = None
        self.claimed: Any = None

    def run(self, request: SessionRequest) -> RunResult:
        spec = self.spec = request.spec
        self.client = service.connect(spec.oci_runtime)  # the isolation level's runtime (compile.isolation_runtime)
        session_id = _session_of(spec)
        if self.pool_plan is not None:
            from vectraguard.pool import use

            self.claimed = use.take(self.client, spec, self.pool_plan, self.owner, session_id)
        claimed = self.claimed
        return run_session(self.client, spec, timeout=request.timeout, kill_grace=request.kill_grace,
                           stdin_fd=request.stdin_fd, sink=request.sink, cgroup_mode=self.cgroup_mode,
                           before_start=self._checked(request), tty_fd=request.tty_fd,
                           after_create=request.after_create, leave_container=True,
                           claimed=Claimed(claimed.cid, claimed.run_dir, claimed.facts or {}, claimed.init)
                           if claimed is not None else None)

    def _checked(self, request: SessionRequest) -> Callable[[dict[str, Any]], None]:
        def check(inspect: dict[str, Any]) -> None:
            from vectraguard.isolation.views import mount_view
            from vectraguard.runtime.before_start import show

            view = mount_view(self.isolation, inspect)  # which process shows the sandbox's mounts
            show(request, view.pid, view.checked_options, int(inspect["State"]["Pid"]), self.rootless)

        return check

    def release(self, result: RunResult, session_id: str) -> None:
        """The stopped container goes after we return (removal.py): the pool,
        if the run uses one, is refilled first; the removal, and that of any
        sandbox a killed run left, is recorded; the pooled container's entry
        is forgotten and the pool pruned."""
        from vectraguard.audit.run_audit import record_removal
        from vectraguard.runtime import removal

        client, spec, plan, claimed = self.client, self.spec, self.pool_plan, self.claimed

        def refill() -> None:
            from vectraguard.pool import use

            use.refill(client, spec, plan)

        def then() -> None:  # in the detached process: what it imports is off the run's path
            from vectraguard.pool.reap import reap_pool
            from vectraguard.runtime import reaper
            from vectraguard.sandbox.spec import LABEL_SESSION

            if claimed is not None:
                from vectraguard.pool import use

                use.forget(claimed)
            reaper.reap_orphans(client, lambda listed: record_removal(
                str((listed.get("Labels") or {}).get(LABEL_SESSION, "")), str(listed["Id"]), by="reaper"))
            reap_pool(client, lambda session, cid: record_removal(session, cid, by="reaper"))

        removal.remove_later(client, result.container_id,
                             lambda cid, error: record_removal(session_id, cid, error), then,
                             first=refill if plan is not None else None)


def _session_of(spec: Any) -> str:
    from vectraguard.sandbox.spec import LABEL_SESSION

    return str(spec.labels.get(LABEL_SESSION, ""))
