"""Making pooled containers: created and initialised, waiting for a run.

A fill runs in the detached process that removes a run's container
(runtime/removal.py), after the run has returned; `vectraguard pool start`
runs one in the foreground. One fill per slot at a time (a lock); a fill
first discards the slot's containers of another key (the profile, the
policy or the directory's contents changed) and those idle too long.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from pathlib import Path
from typing import Any

from vectraguard import records
from vectraguard.paths import runtime_dir
from vectraguard.pool import store
from vectraguard.pool.plan import Plan
from vectraguard.runtime import oci
from vectraguard.runtime.libpod import Libpod, LibpodError
from vectraguard.runtime.owner import process_identity
from vectraguard.sandbox import entry
from vectraguard.sandbox.spec import (
    LABEL_OWNER,
    LABEL_POOL,
    LABEL_SESSION,
    ContainerSpec,
)


def fill(client: Libpod, spec: ContainerSpec, wanted: Plan) -> int:
    """Bring the slot's ready containers of `key` up to `size`; how many were made.
    Returns 0 at once when another fill of this slot is under way."""
    directory = store.ensure_dir()
    slot, key = wanted.slot, wanted.key
    lock = os.open(directory / f".{slot}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        have = 0
        for found, path in store.ready(slot):
            if found.key != key or store.expired(found):
                discard(client, found, path)
            else:
                have += 1
        made = 0
        for _ in range(max(0, wanted.size - have)):
            if make(client, spec, wanted) is None:
                break
            made += 1
        return made
    finally:
        os.close(lock)


def make(client: Libpod, spec: ContainerSpec, wanted: Plan) -> store.Entry | None:
    """One pooled container, published in the index; None when Podman refused
    (nothing is left behind then)."""
    name = f"pool-{secrets.token_hex(8)}"
    run_dir = entry.make_run_dir(runtime_dir() / "entries", name)
    hosts = runtime_dir() / "sessions" / f"{name}.hosts"
    hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    hosts.write_text(spec.render_hosts())
    hosts.chmod(0o644)  # readable inside the sandbox, whatever uid it maps to
    labels = {k: v for k, v in spec.labels.items() if k not in (LABEL_SESSION, LABEL_OWNER)}
    specgen = records.replace(spec, labels={**labels, LABEL_POOL: wanted.slot}).to_specgen(str(hosts), str(run_dir))
    cid = ""
    try:
        cid = client.create(specgen)
        client.init(cid)
        info = client.inspect(cid)
        oci.verify_runtime(info, spec.oci_runtime)
        state = info.get("State", {})
        init = process_identity(int(state.get("Pid") or 0)) if state.get("Status") == "initialized" else None
        if init is None:
            raise RuntimeError("not initialised")
        image_id = str(info.get("Image", ""))
        facts = {"Id": cid, "Image": image_id, "OCIRuntime": info.get("OCIRuntime"),
                 "State": {key: state.get(key) for key in ("Status", "Pid", "ConmonPid", "CgroupPath")}}
        images = _image_index(info)
        made = store.Entry(cid=cid, profile=wanted.profile, cwd=wanted.cwd, slot=wanted.slot, key=wanted.key,
                           image_id=image_id, run_dir=str(run_dir), hosts_file=str(hosts),
                           created=time.time(), idle=wanted.idle, facts=facts, init=init,
                           images_file=images, images_identity=store.file_identity(images) if images else [])
        store.add(made)
        return made
    except Exception as exc:  # noqa: BLE001 - a pool is an optimisation: a failed fill leaves runs cold
        from vectraguard import diag

        diag.debug(f"pool: could not make a sandbox: {exc}")
        if cid:
            try:
                client.remove(cid)
            except LibpodError:
                pass
        hosts.unlink(missing_ok=True)
        entry.remove_run_dir(Path(run_dir))
        return None


def _image_index(info: dict[str, Any]) -> str:
    """containers/storage's image index for the container's storage: GRAPHROOT/DRIVER-images/images.json,
    GRAPHROOT being three levels above the container's upper layer (GRAPHROOT/DRIVER/ID/diff); "" if absent."""
    driver = info.get("GraphDriver") or {}
    upper = str((driver.get("Data") or {}).get("UpperDir", ""))
    name = str(driver.get("Name", ""))
    if not upper.startswith("/") or not name.isidentifier():
        return ""
    index = Path(upper).parents[2] / f"{name}-images" / "images.json"
    return str(index) if index.is_file() else ""


def discard(client: Libpod, found: store.Entry, path: Path) -> bool:
    """Remove a ready container, unless a run claims it first."""
    if not store.take_for_removal(path):
        return False
    try:
        client.remove(found.cid)
    except LibpodError:
        pass  # the reaper finds it again by its label
    store.forget(found)
    return True
