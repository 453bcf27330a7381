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
        _lite(ctx),
    ]


def _lite(ctx: Context) -> Finding:
    """bubblewrap, the init and Landlock (lite/support.py), then a probe: an
    unprivileged user namespace made by the user a sandbox runs as."""
    import subprocess

    from vectraguard import errors
    from vectraguard.lite import plan, support

    check = "isolation lite"
    if ctx.facts.why_no_lite or support.landlock_abi() < 1:
        return warn(check, f"not available: {ctx.facts.why_no_lite or support.NO_LANDLOCK}",
                    "profiles asking for lite are refused")
    user: dict[str, object] = {}
    if not ctx.facts.rootless:
        try:
            uid, gid = plan.sandbox_user()
        except errors.VGError as exc:
            return warn(check, " ".join(exc.lines()), "profiles asking for lite are refused")
        user = {"user": uid, "group": gid, "extra_groups": []}
    try:
        probe = subprocess.run([support.BWRAP, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                               timeout=30, check=False, **user)  # type: ignore[call-overload]
        failed = probe.stderr.strip() if probe.returncode != 0 else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        failed = str(exc)
    if failed:
        return warn(check, f"bubblewrap cannot make a sandbox here: {failed}",
                    "unprivileged user namespaces must be allowed (sysctl kernel.unprivileged_userns_clone=1; on "
                    "Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile "
                    "for bwrap)")
    from vectraguard.images import unpacked_root as unpacked

    limits = " (rootless: no cgroup limits; profiles must accept best-effort limits)" if ctx.facts.rootless else ""
    if ctx.image_ref and unpacked.lookup(ctx.image_ref) is None:
        return warn(check, f"works, but the default image {ctx.image_ref} is not unpacked for it",
                    "`vectraguard image build` unpacks it")
    return ok(check, f"works (Landlock ABI {support.landlock_abi()}){limits}; {levels.PROTECTS['lite']}; workspaces ro, rw or none, network none or "
              "allowlist")


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
              "(no overlay: `dev` and the agents need --workspace ro or isolation container), from directories "
              "others can search")
