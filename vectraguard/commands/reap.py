"""`vectraguard sandbox reap [--wait]`: remove the sandboxes of runs that have ended
(containers, pooled containers, and rootful the cgroups of lite sandboxes)."""

from __future__ import annotations

import argparse

from vectraguard.audit.run_audit import record_removal
from vectraguard.runtime import host, reaper, removal, service
from vectraguard.sandbox.spec import LABEL_SESSION


def main(args: argparse.Namespace) -> int:
    abandoned = removal.wait_for_pending() if args.wait else []
    client = service.connect(host.detect().oci_runtime)
    reaped = reaper.reap_orphans(client, lambda listed: record_removal(
        str((listed.get("Labels") or {}).get(LABEL_SESSION, "")), str(listed["Id"]), by="reaper"))
    from vectraguard.pool.reap import reap_pool

    reaped += reap_pool(client, lambda session, cid: record_removal(session, cid, by="reaper"))
    for cid in reaped:
        print(f"removed sandbox {cid[:12]}{' (its remover had stopped)' if cid in abandoned else ''}")
    facts = host.detect()
    if not facts.rootless:  # isolation lite's cgroups, left by a killed vectraguard (lite/cgroup.py)
        from vectraguard.lite import cgroup

        for group in cgroup.reap_stale(mode=facts.cgroup_mode, kill=True):
            print(f"removed the cgroup of an ended lite sandbox: {group}")
    return 0
