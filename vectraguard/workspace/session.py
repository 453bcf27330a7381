"""One overlay session's workspace, from before the sandbox exists to the
change set kept for review.

    open()      before the container is created: the layer record, the
                baseline of the real tree, the empty mount points
    mount(...)  after create, before the container is initialised (its
                user-id mapping is known then; rootful needs it)
    close()     after the container is removed, on every path: harvest the
                upper directory into the change set, take the mounts down

Rootful, the mounts are made here; rootless, through `podman unshare`
(helper.py). This module is the small interface `commands/run.py` uses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectraguard import errors, paths
from vectraguard.audit import record as audit_record
from vectraguard.runtime import unshare
from vectraguard.runtime.owner import owner_alive
from vectraguard.workspace import baseline, changeset, gitguard, layer, store

HELPER_TIMEOUT_S = 600  # harvesting a full 2 GiB layer hashes and copies it


@dataclass(frozen=True)
class Outcome:
    """What the session left for review."""

    session_id: str
    changes: int
    protected: int
    used: int  # bytes
    cap: int  # bytes
    cap_hit: bool

    def audit(self) -> dict[str, Any]:
        return {"mode": "overlay", "layer": self.session_id if self.changes else None, "changes": self.changes,
                "protected": self.protected, "used": self.used, "cap": self.cap, "cap_hit": self.cap_hit}


class OverlaySession:
    """The overlay workspace of one run."""

    def __init__(self, session_id: str, workspace: str, cap: int, protected: tuple[str, ...], *,
                 rootless: bool, sandbox_user: str, owner: str = "",
                 identity: tuple[int, int] | None = None) -> None:
        """`identity`: (device, inode) the workspace was checked as; the
        overlay's lower layer must be that directory (layer.mount)."""
        self.session_id, self.workspace, self.cap, self.protected = session_id, workspace, cap, protected
        self.identity = identity
        self.owner = owner
        self.rootless, self.sandbox_user = rootless, sandbox_user
        self.points = layer.Mountpoints(str(paths.runtime_dir() / "workspaces" / session_id))
        self.layer: store.Layer | None = None
        self.mounted = False

    @property
    def merged(self) -> str:
        """What the sandbox's workspace bind mount shows (the compiled spec's source)."""
        return self.points.merged

    def open(self) -> None:
        recover_stale(self.rootless)
        try:
            # (by path: a workspace renamed from under us fails here, or at the mount, which holds it)
            record = store.LayerRecord(self.session_id, self.workspace, audit_record.now(), store.RUNNING,
                                       self.protected, cap=self.cap,
                                       findings=tuple(gitguard.configured(self.workspace)), owner=self.owner)
            self.layer = store.create(record)
            baseline.save(self.layer.baseline_path, baseline.record(Path(self.workspace)))
            layer.prepare(self.points)
        except OSError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: cannot prepare the overlay workspace: {exc}") from None

    def mount(self, inspect: dict[str, Any]) -> None:
        """After `podman create`: `inspect` is the container's inspect document."""
        try:
            if self.rootless:
                self._helper("mount", self.workspace, str(self.cap),
                             *([f"{self.identity[0]}:{self.identity[1]}"] if self.identity else []))
            else:
                layer.mount(self.points, self.workspace, self.cap, rootless=False, shift=self._shift(inspect),
                            identity=self.identity)
        except OSError as exc:
            raise errors.RuntimeUnavailable(
                f"vectraguard: cannot mount the overlay workspace: {exc.strerror or exc}",
                hint="`vectraguard doctor` says what this host supports; --workspace ro or rw run without it") from None
        self.mounted = True

    def close(self) -> Outcome | None:
        """Harvest and unmount; None when the session changed nothing (its layer is dropped)."""
        if not self.mounted:  # the run ended before the sandbox could write anything (a failed
            # mount takes down what it made): only empty mount points remain
            shutil.rmtree(self.points.base, ignore_errors=True)
            if self.layer is not None:
                shutil.rmtree(self.layer.path, ignore_errors=True)
            return None
        assert self.layer is not None
        try:
            if self.rootless:
                answer = self._helper("finish", self.workspace, str(self.layer.path), str(self.cap))
            else:
                from vectraguard.workspace.helper import finish

                answer = finish(self.points, self.workspace, str(self.layer.path), self.cap, rootless=False)
        except (OSError, ValueError) as exc:
            where = self.points.upper if not self.rootless else f"{self.points.upper} (inside `podman unshare`)"
            raise errors.RuntimeUnavailable(f"vectraguard: the sandbox's workspace changes could not be read: "
                                            f"{getattr(exc, 'strerror', None) or exc}; they stay mounted at "
                                            f"{where} until the next reboot") from None
        used, cap_hit, count = int(answer["used"]), bool(answer["cap_hit"]), int(answer["changes"])
        if count == 0:
            shutil.rmtree(self.layer.path, ignore_errors=True)
            return Outcome(self.session_id, 0, 0, used, self.cap, cap_hit)
        # One write, findings included: a layer becomes applicable only once they are known
        # (if finding them fails, it stays `running`, which apply refuses).
        record, changes = self.layer.record(), self.layer.changes()
        try:
            found = self._found_after(record, changes)
        except (OSError, ValueError) as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: the change set of session {self.session_id} could not "
                                            f"be checked for what git would run ({exc}); it is kept but cannot "
                                            "be applied") from None
        record = self.layer.update(state=store.PENDING, used=used, cap_hit=cap_hit,
                                   findings=(*record.findings, *found))
        protected = sum(1 for c in changes if record.protection(c.path))
        return Outcome(self.session_id, count, protected, used, self.cap, cap_hit)

    def _found_after(self, record: store.LayerRecord, changes: list[changeset.Change]) -> list[tuple[str, str]]:
        """Git directories planted by the session, and refs it moved to commits that change protected paths."""
        assert self.layer is not None
        base = baseline.load(self.layer.baseline_path)
        after = {c.path: c.after for c in changes}

        def present(path: str) -> bool:
            """Is there anything at `path` after the session (a link counts: git follows it)?"""
            return after[path] != changeset.ABSENT if path in after else path in base

        return [*gitguard.planted_git_dirs(changes, present),
                *gitguard.forged_objects(changes, self.layer.blob, self.workspace),
                *gitguard.smuggled_commits(changes, self.layer.blob, self.workspace, record.protection)]

    def _shift(self, inspect: dict[str, Any]) -> layer.IdShift:
        owner = os.stat(self.workspace)
        uid, _, gid = self.sandbox_user.partition(":")
        mappings = inspect.get("HostConfig", {}).get("IDMappings") or {}
        return layer.IdShift(owner.st_uid, owner.st_gid, _host_id(mappings.get("UidMap"), int(uid)),
                             _host_id(mappings.get("GidMap"), int(gid or uid)))

    def _helper(self, command: str, *args: str) -> dict[str, Any]:
        """Run helper.py under `podman unshare`. OSError when it fails or
        overruns (then it and everything it started are killed)."""
        child = subprocess.Popen(unshare.helper_argv("vectraguard.workspace.helper", command, self.points.base, *args),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 cwd=unshare.HELPER_CWD, start_new_session=True)
        try:
            out, err = child.communicate(timeout=HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise OSError(0, f"the layer helper did not finish within {HELPER_TIMEOUT_S} s") from None
        if child.returncode != 0:
            reason = err.decode(errors="replace").strip().splitlines()
            raise OSError(0, reason[-1] if reason else f"podman unshare failed ({child.returncode})")
        try:
            return json.loads(out)  # type: ignore[no-any-return]
        except ValueError:
            raise OSError(0, "the layer helper gave no answer") from None


def recover_stale(rootless: bool) -> None:
    """Layers left `running` by a vectraguard that was killed: read what their
    sandbox wrote (still mounted until a reboot) into a reviewable change
    set, and take their mounts down; a layer whose mounts are gone is dropped."""
    for candidate in store.all_layers(strict=False):
        record = candidate.record()
        if record.state != store.RUNNING or not record.owner or owner_alive(record.owner) or \
                _sandbox_exists(record.session_id):
            continue  # still running, or its sandbox not yet reaped (it could still be writing)
        stale = OverlaySession(record.session_id, record.workspace, record.cap, record.protected, rootless=rootless,
                               sandbox_user="", owner=record.owner)
        stale.layer, stale.mounted = candidate, True
        try:
            stale.close()
        except errors.VGError as exc:
            from vectraguard import diag

            diag.warning(f"could not recover the layer of killed session {record.session_id}: {exc.message}")


def _sandbox_exists(session_id: str) -> bool:
    """Does a container of this session still exist (or can that not be known)?"""
    from vectraguard.sandbox.spec import LABEL_SESSION

    try:
        listed = subprocess.run(["podman", "ps", "-a", "-q", "--filter", f"label={LABEL_SESSION}={session_id}"],
                                capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return True
    return listed.returncode != 0 or bool(listed.stdout.strip())


def _host_id(mapping: list[str] | None, inside: int) -> int:
    """The host id of `inside` under Podman's "CONTAINER:HOST:SIZE" map; the
    sandbox must have one (an unmapped user could not write anything)."""
    for entry in mapping or ():
        container, host, size = (int(n) for n in entry.split(":"))
        if container <= inside < container + size:
            return host + inside - container
    raise OSError(0, f"the sandbox's user namespace does not map id {inside}")
