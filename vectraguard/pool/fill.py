"""Making pooled containers: created and initialised, waiting for a run.

A fill runs in the detached process a run leaves behind (runtime/removal.py),
after the run has returned and before that process removes the run's own
container (so the next run finds one ready sooner); `vectraguard pool start`
runs one in the foreground. One fill per slot at a time (a lock); a fill
discards the slot's containers of another key (the profile, the policy or
the directory's contents changed) and those idle too long.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

from vectraguard import records
from vectraguard.paths import ensure_hosts_dir, runtime_dir
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

    One fill per slot at a time: a fill that finds another under way waits
    for it (up to LOCK_WAIT seconds, then gives up and makes nothing), and
    each fill counts again after every container it makes, so runs that
    claimed containers while it worked are made up for: back-to-back runs
    would otherwise find the pool empty (each run's remover refills once,
    and a remover that found the lock taken used to make nothing)."""
    directory = store.ensure_dir()
    lock = os.open(directory / f".{wanted.slot}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if not _lock(lock):
            return 0
        made = 0
        # Bounded: a claim per make could otherwise keep one remover filling forever.
        for _ in range(2 * wanted.size):
            if _ready_count(client, wanted) >= wanted.size or make(client, spec, wanted) is None:
                break
            made += 1
        return made
    finally:
        os.close(lock)


LOCK_WAIT = 30.0  # seconds: several fills of a few hundred ms each


def _lock(fd: int) -> bool:
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)  # detached or `pool start`: nobody waits on this process


def _ready_count(client: Libpod, wanted: Plan) -> int:
    """Ready containers of the slot with `wanted`'s key; the others (another
    key: the profile, policy or directory changed; idle too long) are discarded."""
    have = 0
    for found, path in store.ready(wanted.slot):
        if found.key != wanted.key or store.expired(found):
            discard(client, found, path)
        else:
            have += 1
    return have


def make(client: Libpod, spec: ContainerSpec, wanted: Plan) -> store.Entry | None:
    """One pooled container, published in the index; None when Podman refused
    (nothing is left behind then)."""
    name = f"pool-{os.urandom(8).hex()}"  # os.urandom: what secrets.token_hex reads, without its OpenSSL
    run_dir = entry.make_run_dir(runtime_dir() / "entries", name)
    hosts = ensure_hosts_dir() / f"{name}.hosts"
    hosts.write_text(spec.render_hosts())
    hosts.chmod(0o644)  # readable inside the sandbox, whatever uid it maps to
    labels = {k: v for k, v in spec.labels.items() if k not in (LABEL_SESSION, LABEL_OWNER)}
    specgen = records.replace(spec, labels={**labels, LABEL_POOL: wanted.slot}).to_specgen(str(hosts), str(run_dir))
    specgen["name"] = name  # what the index's `.filling` marker names until the container is published
    marker = store.begin_filling(name, process_identity(os.getpid()) or f"{os.getpid()}:0")
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
        store.end_filling(marker)
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
        store.end_filling(marker)
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
