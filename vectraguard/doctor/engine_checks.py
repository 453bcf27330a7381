"""Docker Engine, the second engine (runtime/docker/): found or not, and what it would give a sandbox."""

from __future__ import annotations

import shutil

from vectraguard import errors
from vectraguard.doctor.finding import Finding, ok, warn


def docker() -> Finding:
    """Its version, socket, rootless or not, user-namespace remapping, cgroup driver and OCI runtime."""
    from vectraguard.runtime.docker import daemon

    check = "docker engine"
    if not daemon.answers():
        return ok(check, "no Docker daemon answers (optional: `engine: docker` needs one)")
    try:
        facts = daemon.facts(daemon.connect(timeout=10))
    except errors.VGError as exc:
        return warn(check, " ".join(exc.lines()), "see `vectraguard doctor` after starting dockerd")
    described = (f"Docker {facts.version} at {facts.socket}, {'rootless' if facts.rootless else 'rootful'}, "
                 f"cgroup {facts.cgroup_driver} v{facts.cgroup_version}, runtime {facts.default_runtime}")
    if facts.rootless or facts.userns_remap:
        return ok(check, f"{described}, {'userns-remap on' if facts.userns_remap else 'its own user namespace'}")
    return warn(check, f"{described}, no userns-remap: sandboxes would run as the host's own uids, so runs on it "
                       "are refused unless a profile says engine.userns: shared",
                'start dockerd with --userns-remap=default (or "userns-remap": "default" in /etc/docker/daemon.json)')


def engine_auto() -> Finding:
    """Which engine `engine: auto` (the default) chooses here."""
    from vectraguard.runtime.docker import daemon

    if shutil.which("podman") is not None:
        return ok("engine (auto)", "Podman (installed)")
    if daemon.answers():
        return ok("engine (auto)", "Docker Engine (Podman is not installed)")
    return warn("engine (auto)", "neither Podman nor a Docker daemon", "install Podman (contrib/install.sh)")
