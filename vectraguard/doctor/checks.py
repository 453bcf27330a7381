"""Every check, in the order a reader fixes things: the engines first, the image last.

The checks only Podman's runs need go through engine_checks.scoped: when the default profile's runs
use Docker Engine (or no engine), they cannot fail doctor, and a host without Podman is not told to
install it (engine_checks.py)."""

from __future__ import annotations

from contextlib import ExitStack

from vectraguard.doctor import (
    engine_checks,
    host_checks,
    isolation_checks,
    podman_checks,
    policy_checks,
    tool_checks,
)
from vectraguard.doctor.context import gather
from vectraguard.doctor.finding import Finding


def run_all() -> list[Finding]:
    with ExitStack() as stack:
        ctx = gather(stack)
        pod = engine_checks.scoped(ctx, "podman")
        refused = policy_checks.refused_profiles(ctx)
        found: list[Finding | None] = [
            engine_checks.engine_choice(ctx),
            engine_checks.podman_absent(ctx),
            pod(podman_checks.podman(ctx)),
            host_checks.mode(ctx),
            pod(podman_checks.service(ctx)),
            pod(engine_checks.podman_engine(ctx)),
            host_checks.cgroups(ctx),
            pod(podman_checks.runtime_in_use(ctx)),
            *map(pod, podman_checks.oci_runtimes(ctx)),
            *engine_checks.docker(ctx),
            *(pod(f) if f.check == "isolation gvisor" else f for f in isolation_checks.levels_supported(ctx)),
            host_checks.profiles(ctx, policy_checks.refused_names(refused)),
            policy_checks.policy_file(ctx),
            *refused,
            policy_checks.run_here(ctx),
            host_checks.rlimits(ctx),
            host_checks.resource_limits(ctx),
            pod(host_checks.overlay_workspace(ctx)),
            host_checks.init(ctx),
            host_checks.entry(ctx),
            pod(host_checks.subordinate_ids(ctx)),
            pod(host_checks.net_tun(ctx)),
            pod(podman_checks.network(ctx)),
            pod(podman_checks.storage_driver(ctx)),
            tool_checks.nftables(),
            tool_checks.mmdebstrap(),
            pod(podman_checks.default_image(ctx)),
        ]
    return [finding for finding in found if finding is not None]
