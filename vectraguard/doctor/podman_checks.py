"""Checks of Podman: the program, its service, OCI runtimes, networks, the image."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from vectraguard.doctor.context import Context
from vectraguard.doctor.finding import Finding, fail, ok, warn
from vectraguard.images import recipe
from vectraguard.runtime import oci
from vectraguard.runtime.probe import (
    SYSTEM_PATH,
    first_line,
    oci_runtime_works,
    run_tool,
    system_binary,
)

INSTALL_HINT = "apt-get install podman runc (or run contrib/install.sh)"
# runsc is probed with the flags Vectra Guard gives it, by isolation_checks.py.
KNOWN_RUNTIMES = ("runc", "crun", "youki", "kata-runtime", "krun")
PROBE_RLIMIT = 64  # below any sane hard limit: the probe tests the runtime, not the limits


def podman(ctx: Context) -> Finding:
    result = ctx.podman_version
    if not result.found:
        return fail("podman", "not found in PATH", INSTALL_HINT)
    if not result.ok:
        return fail("podman", f"`podman version` failed: {result.reason()}", "run `podman version` to see why")
    try:
        version = json.loads(result.stdout)["Client"]["Version"]
    except (ValueError, KeyError, TypeError):
        version = "(version unknown)"
    return ok("podman", f"podman {version} at {shutil.which('podman')}")


def service(ctx: Context) -> Finding:
    if ctx.service_error is not None or ctx.client is None:
        error = ctx.service_error
        message = error.message.removeprefix("vectraguard: ") if error else "unreachable"
        return fail("podman service", message, (error.hint if error else "") or INSTALL_HINT)
    return ok("podman service", f"Podman {ctx.service_version.get('Version', '?')} answering at {ctx.service_socket}")


def runtime_in_use(ctx: Context) -> Finding:
    """What Podman really gives a container of ours (its inspect `OCIRuntime`),
    against what Vectra Guard chose: the service decides, not the request."""
    check = "oci runtime in use"
    chosen, got = ctx.facts.oci_runtime, ctx.container_runtime
    where = f"the service at {ctx.service_socket}"
    if got is None:
        return warn(check, f"not checked: {ctx.runtime_error}", "fix the findings above, then run doctor again")
    if chosen is None:
        return ok(check, f"containers get {got} from {where} (Podman's default: Vectra Guard picks none "
                  f"on cgroups {ctx.facts.cgroup_mode})")
    if not oci.same_runtime(got, chosen):
        return fail(check, f"containers get {got} from {where}, not {chosen}, which Vectra Guard chose for "
                    f"cgroups {ctx.facts.cgroup_mode}: every run is refused",
                    f"if $CONTAINER_HOST is set, point it at a service started with "
                    f"`podman --runtime {chosen} system service`, or unset it")
    return ok(check, f"containers get {got} from {where}, as chosen for cgroups {ctx.facts.cgroup_mode}")


def oci_runtimes(ctx: Context) -> list[Finding]:
    installed = [name for name in KNOWN_RUNTIMES if shutil.which(name, path=SYSTEM_PATH)]
    if not installed:
        return [fail("oci runtime", "none installed", "apt-get install runc (works with cgroups v1, hybrid and v2)")]
    # What containers really get; failing that, what would be asked for or the service's default.
    used = os.path.basename(ctx.container_runtime or ctx.facts.oci_runtime or _info(ctx, "host", "ociRuntime", "name") or "")
    if not ctx.podman_version.found:
        return [warn("oci runtimes", f"installed: {', '.join(installed)}; not probed: podman is not installed",
                     INSTALL_HINT)]
    if ctx.image_id is None:
        return [warn("oci runtimes", f"installed: {', '.join(installed)}; not probed: "
                     f"the default image {ctx.image_ref} is not available", "see `default image` below, "
                     "then run doctor again")]
    return [_probe(ctx, name, used) for name in installed]


def _probe(ctx: Context, name: str, used: str | None) -> Finding:
    check = f"oci runtime {name}"
    version = first_line(run_tool([system_binary(name), "--version"])) or name
    role = "used by Vectra Guard" if name == used else "not used"
    result = oci_runtime_works(name, ctx.image_id or ctx.image_ref, nofile=PROBE_RLIMIT, nproc=PROBE_RLIMIT)
    if result.ok:
        return ok(check, f"{version}: works ({role})")
    detail = f"{version}: cannot start containers here: {result.reason()}"
    if name == used:
        return fail(check, detail, "install runc (apt-get install runc): Vectra Guard picks it on cgroups v1 and hybrid")
    return warn(check, f"{detail} ({role})", f"nothing to do unless you want {name}: Vectra Guard uses {used}")


def network(ctx: Context) -> Finding:
    backend = _info(ctx, "host", "networkBackend") or "unknown"
    slirp = run_tool([system_binary("slirp4netns"), "--version"])
    pasta = shutil.which("pasta", path=SYSTEM_PATH)
    helpers = f"slirp4netns {first_line(slirp).removeprefix('slirp4netns version ') if slirp.ok else 'not installed'}; " \
              f"pasta {'at ' + pasta if pasta else 'not installed'}"
    detail = f"backend {backend}; {helpers}"
    if ctx.client is None:
        return warn("network", f"backend unknown (no Podman service); {helpers}", "fix the Podman service first")
    if ctx.facts.rootless and not (slirp.ok or pasta):
        return warn("network", detail + ": rootless sandboxes cannot have the `full` network",
                    "apt-get install slirp4netns (or passt, with Podman 4.4+)")
    return ok("network", detail)


def storage_driver(ctx: Context) -> Finding | None:
    """Podman's storage driver (`podman info`: store.graphDriverName). With `vfs` (rootless Podman's
    fallback when it found no usable overlay) every container's file tree is a full copy of its image:
    each run takes seconds (7.8 s for `run -- true` on a host where overlay takes 0.4 s) and every image
    takes its size again on disk. Fixed in containers-storage.conf(5)."""
    check = "storage driver"
    if ctx.client is None:
        return None  # `podman service` above says why
    driver = _info(ctx, "store", "graphDriverName") or "unknown"
    where = _info(ctx, "store", "graphRoot") or "Podman's storage"
    if driver != "vfs":
        return ok(check, f"{driver} ({where})")
    conf = "~/.config/containers/storage.conf" if ctx.facts.rootless else "/etc/containers/storage.conf"
    overlay = ("the kernel's rootless overlay (Linux 5.13+; nothing to install) or fuse-overlayfs "
               "(apt-get install fuse-overlayfs)") if ctx.facts.rootless else "the kernel's overlay"
    return warn(check, f"vfs ({where}): every sandbox copies its whole image, so each run takes seconds, "
                "and images take their size again on disk",
                f"use overlay: {overlay}; set driver = \"overlay\" under [storage] in {conf}, then "
                "`podman system reset` (it removes this user's images and containers; rebuild with "
                "`vectraguard image build`)")


def default_image(ctx: Context) -> Finding:
    check = "default image"
    if ctx.client is None:
        return warn(check, f"{ctx.image_ref}: not checked, no Podman service", "fix the Podman service first")
    if ctx.image_id:
        return ok(check, f"{ctx.image_ref} {ctx.image_id}")
    if ctx.image_ref.startswith(recipe.REPOSITORY + ":"):
        suite = ctx.image_ref.split(":", 1)[1]
        command = "vectraguard image build" + ("" if suite == recipe.DEFAULT_SUITE else f" --suite {suite}")
        return fail(check, f"{ctx.image_ref} is not built", f"build it: {command}")
    return fail(check, f"{ctx.image_ref} is not in Podman's storage", f"build or load {ctx.image_ref} (no registry is contacted)")


def _info(ctx: Context, *keys: str) -> Any:
    node: Any = ctx.info
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node
