"""Which isolation levels (vectraguard/isolation/) this host can give, and why not."""

from __future__ import annotations

from vectraguard.doctor.context import Context
from vectraguard.doctor.finding import Finding, ok, warn
from vectraguard.isolation import gvisor, levels
from vectraguard.runtime.probe import first_line, oci_runtime_works, run_tool

PROBE_RLIMIT = 64


def levels_supported(ctx: Context) -> list[Finding]:
    """One finding per level: container (as the OCI runtime checks found it),
    gvisor (probed with a trivial container through its wrapper), lite."""
    return [
        ok("isolation container", f"{levels.PROTECTS['container']}: the default level"),
        _gvisor(ctx),
        warn("isolation lite", "not provided by this version of Vectra Guard: a profile asking for it is refused",
             "use isolation container or gvisor"),
    ]


def _gvisor(ctx: Context) -> Finding:
    check = "isolation gvisor"
    if ctx.facts.gvisor_dir is None:
        return warn(check, f"not available: {ctx.facts.why_no_gvisor}", "profiles asking for gvisor are refused "
                    "until it is installed (contrib/install.sh installs runsc and its wrappers)")
    version = first_line(run_tool([gvisor.RUNSC, "--version"])) or "runsc"
    limits = " (rootless: no cgroup limits; profiles must accept best-effort limits)" if ctx.facts.rootless else ""
    if ctx.image_id is None:
        return warn(check, f"{version}: installed, not probed: the default image {ctx.image_ref} is not available",
                    "see `default image` below, then run doctor again")
    wrapper = gvisor.runtime_for("none", ctx.facts.rootless, ctx.facts.gvisor_dir)
    result = oci_runtime_works(wrapper, ctx.image_id, nofile=PROBE_RLIMIT, nproc=PROBE_RLIMIT)
    if not result.ok:
        return warn(check, f"{version}: cannot start containers here: {result.reason()}",
                    "profiles asking for gvisor will fail to start; `podman run --runtime "
                    f"{wrapper} ...` shows the error")
    return ok(check, f"{version}: works{limits}; {levels.PROTECTS['gvisor']}; workspaces ro or none only "
              "(no overlay: `dev` and the agents need --workspace ro or isolation container)")
