"""Every check, in the order a reader fixes things: Podman first, the image last."""

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
        found: list[Finding | None] = [
            podman_checks.podman(ctx),
            host_checks.mode(ctx),
            podman_checks.service(ctx),
            host_checks.cgroups(ctx),
            podman_checks.runtime_in_use(ctx),
            *podman_checks.oci_runtimes(ctx),
            *isolation_checks.levels_supported(ctx),
            engine_checks.engine_auto(),
            engine_checks.docker(),
            host_checks.profiles(ctx),
            policy_checks.policy_file(ctx),
            *policy_checks.refused_profiles(ctx),
            policy_checks.run_here(ctx),
            host_checks.rlimits(ctx),
            host_checks.resource_limits(ctx),
            host_checks.overlay_workspace(ctx),
            host_checks.init(ctx),
            host_checks.entry(ctx),
            host_checks.subordinate_ids(ctx),
            host_checks.net_tun(ctx),
            podman_checks.network(ctx),
            tool_checks.nftables(),
            tool_checks.mmdebstrap(),
            podman_checks.default_image(ctx),
        ]
    return [finding for finding in found if finding is not None]
