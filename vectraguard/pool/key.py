"""Which pooled container a run may take.

A pooled container was created earlier, from an earlier run's compiled
spec. A run may take it only if this run's spec would have made the very
same container: the key is a SHA-256 over the spec Podman was given
(with the run's own parts — its session label, owner, and the per-container
file paths — left out: the command, environment and working directory reach
the container through vectraguard-entry, not through the spec), what was
baked into the container when it was made (its /etc/hosts, the seccomp
filter's bytes, the identity of the init and entry programs), the identity
(device, inode) of every bind-mounted source as held now, and Vectra
Guard's version. So a change of profile,
policy, flags, image name, mount plan, working directory, or a workspace
replaced by another directory at the same path, is a different key. The
image a name stands for is checked separately when a container is claimed
(its ID against the name's current one: claim.py).

The slot is what a run asks the pool for before knowing whether the pool
still fits: the profile's name and the directory. A fill for a slot
discards the slot's containers of another key (the profile changed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from vectraguard import __version__
from vectraguard.digests import sha256_hex
from vectraguard.sandbox.held import Expected
from vectraguard.sandbox.spec import LABEL_OWNER, LABEL_SESSION, ContainerSpec

HOSTS_PLACEHOLDER = "<hosts>"
RUN_DIR_PLACEHOLDER = "<run-dir>"


def pool_key(spec: ContainerSpec, expected: Iterable[Expected]) -> str:
    """64 hex digits; see the module's docstring for what it covers."""
    specgen = spec.to_specgen(HOSTS_PLACEHOLDER, RUN_DIR_PLACEHOLDER)
    specgen["labels"] = {k: v for k, v in specgen["labels"].items() if k not in (LABEL_SESSION, LABEL_OWNER)}
    sources = [(item.target, item.held.device, item.held.inode) if item.held else (item.target, None, None)
               for item in expected]
    with open(spec.seccomp_profile_path, "rb") as handle:  # Podman reads it at create: the filter is baked in
        seccomp = sha256_hex(handle.read())
    document = {"version": __version__, "specgen": specgen, "sources": sources,
                # Made when the container was: its /etc/hosts, and the programs mounted into it.
                "hosts": spec.render_hosts(), "seccomp": seccomp,
                "programs": [_identity(path) for path in (spec.entry_path, spec.init_path)]}
    return sha256_hex(json.dumps(document, sort_keys=True).encode())


def _identity(path: str | None) -> list[int] | None:
    if path is None:
        return None
    info = os.stat(path)
    return [info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size]


def slot(profile_name: str, cwd: str) -> str:
    """16 hex digits naming (profile, directory) for this user."""
    return sha256_hex(json.dumps([profile_name, cwd]).encode())[:16]
