"""`vectraguard sandbox reap [--wait]`: remove the sandboxes of runs that have ended
(containers, pooled containers, and rootful the cgroups of lite sandboxes), with the
files each session left (runtime/session_files.py).

Every engine there is: Podman when the `podman` program is installed (its API
service, Vectra Guard's own, is started if needed, as for a run), and Docker
Engine when its socket answers (runtime/docker/daemon.py); a Docker daemon is
never started, and one that is not there is no error: its sandboxes, if any,
wait for it. Once every engine that may hold sandboxes has listed them, the
files of sessions that have none (a run killed before its sandbox was made)
go too.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Any

from vectraguard import diag
from vectraguard.audit.run_audit import record_removal
from vectraguard.runtime import host, reaper, removal, session_files
from vectraguard.sandbox.spec import LABEL_SESSION

# What one engine's reaping gives: the IDs removed, and the sessions of the sandboxes left
# (None: they could not be listed, so no session's files may be taken for an orphan's).
Reaped = tuple[list[str], set[str] | None]


def main(args: argparse.Namespace) -> int:
    abandoned = removal.wait_for_pending() if args.wait else []
    reaped: list[str] = []
    live: set[str] | None = set()
    for engine in (_reap_podman, _reap_docker):
        ids, sessions = engine()
        reaped += ids
        live = None if live is None or sessions is None else live | sessions
    for cid in reaped:
        print(f"removed sandbox {cid[:12]}{' (its remover had stopped)' if cid in abandoned else ''}")
    if live is not None:
        # A note, not a removed sandbox (stdout lists those): files only, of runs long gone.
        for session in session_files.sweep(live):
            diag.notice(f"vectraguard: removed the files of session {session} (its run ended before its "
                        "sandbox was made)")
    facts = host.detect()
    if not facts.rootless:  # isolation lite's cgroups, left by a killed vectraguard (lite/cgroup.py)
        from vectraguard.lite import cgroup

        for group in cgroup.reap_stale(mode=facts.cgroup_mode, kill=True):
            print(f"removed the cgroup of an ended lite sandbox: {group}")
    return 0


def _recorded(listed: dict[str, Any]) -> None:
    record_removal(str((listed.get("Labels") or {}).get(LABEL_SESSION, "")), str(listed["Id"]), by="reaper")


def _reap_podman() -> Reaped:
    if shutil.which("podman") is None:
        return [], set()
    from vectraguard.pool.reap import reap_pool
    from vectraguard.runtime import service

    client = service.connect(host.detect().oci_runtime)
    reaped = reaper.reap_orphans(client, _recorded)
    reaped += reap_pool(client, lambda session, cid: record_removal(session, cid, by="reaper"))
    return reaped, _sessions(client)


def _reap_docker() -> Reaped:
    from pathlib import Path

    from vectraguard.errors import RuntimeUnavailable
    from vectraguard.runtime.docker import daemon

    if not daemon.answers(timeout=5.0):  # a busy daemon; one that is not there fails at once
        try:
            path = daemon.socket_path()
            # One this user cannot open holds no sandbox of theirs.
            there = Path(path).exists() and os.access(path, os.R_OK | os.W_OK)
        except RuntimeUnavailable:  # a DOCKER_HOST that is not a local socket: no sandbox of ours there
            there = False
        return [], None if there else set()  # a socket that does not answer may have sandboxes behind it
    client = daemon.connect()
    return reaper.reap_orphans(client, _recorded), _sessions(client)


def _sessions(client: reaper.Engine) -> set[str]:
    return {str((listed.get("Labels") or {}).get(LABEL_SESSION, "")) for listed in client.list_labelled(LABEL_SESSION)}
