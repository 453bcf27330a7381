"""Compile a resolved profile and a run request into a ContainerSpec.

Pure: no I/O, no clock, no Podman. Everything the host contributes comes in
as HostFacts and already-canonical mounts, so the same inputs always give
the same spec (golden-file tests rely on it).
"""

from __future__ import annotations

import math
import posixpath

from vectraguard.config.resolved import ResolvedProfile
from vectraguard.errors import IsolationUnavailable, LimitNotEnforceable
from vectraguard.network import host_ca
from vectraguard.records import record
from vectraguard.runtime.host import HostFacts
from vectraguard.sandbox.mounts import Mount
from vectraguard.sandbox.request import RunRequest
from vectraguard.sandbox.spec import (
    LABEL_OWNER,
    LABEL_PROFILE,
    LABEL_SESSION,
    BindMount,
    ContainerSpec,
    Rlimit,
    TmpfsMount,
    VolumeMount,
)

SANDBOX_HOME = "/home/sandbox"
TMP_TARGET = "/tmp"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Proxy settings would point the sandbox at the host's network; the network
# policy decides what is reachable, never an inherited variable.
PROXY_VARIABLES = frozenset(
    name for base in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)
# Where the planted egress proxy listens, on the sandbox's own loopback.
PROXY_ADDRESS, PROXY_PORT = "127.0.0.1", 3128
PROXY_URL = f"http://{PROXY_ADDRESS}:{PROXY_PORT}"

# Seconds Podman waits beyond our own timeout before it kills a container
# whose Vectra Guard died without cleaning up.
BACKSTOP_MARGIN = 30


@record
class Compiled:
    """The container spec, and what the user must be told about it."""

    spec: ContainerSpec
    notices: tuple[str, ...]  # what the user must be told (best-effort limits)


def compile_spec(
    profile: ResolvedProfile,
    request: RunRequest,
    host: HostFacts,
    *,
    image: str,
    mounts: tuple[Mount, ...],
    seccomp_profile_path: str,
    overlay_source: str = "",
) -> Compiled:
    """`overlay_source`: where the overlay workspace will be mounted on the
    host (vectraguard/workspace/), bound in place of an `overlay` mount's
    read-only lower directory."""
    limits = profile.limits
    notices: list[str] = []
    cpus: float | None = limits.cpus
    memory: int | None = limits.memory
    pids: int | None = limits.pids
    level = isolation_runtime(profile, host)
    why_not_enforced = host.why_not_enforced or level.why_not_enforced
    if why_not_enforced:
        if limits.enforcement != "best-effort":
            raise LimitNotEnforceable(
                f"vectraguard: profile {profile.name!r} requires cpu, memory and pids limits, "
                f"but {why_not_enforced}",
                hint="run as root, use a host with cgroups v2 and delegated controllers, "
                "or accept best-effort limits: `limits.enforcement: best-effort` in a profile "
                "(include: [allow-best-effort-limits]) or --set limits.enforcement=best-effort",
            )
        cpus = memory = pids = None
        notices.append(
            f"limits are best-effort: {why_not_enforced}; "
            "processes are capped by RLIMIT_NPROC, memory and cpu are not capped"
        )
    elif pids is not None:
        pids = pids * level.pids_per_process + level.pids_base
    spec = ContainerSpec(
        image=image,
        command=request.argv,
        workdir=request.workdir_override or _workdir(profile, request),
        env=build_env(profile, request),
        labels={LABEL_SESSION: request.session_id, LABEL_OWNER: request.owner, LABEL_PROFILE: profile.name},
        hostname="sandbox",
        network=_podman_network(profile.network_mode, host),
        terminal=request.terminal,
        hosts=(("127.0.0.1", "localhost"), ("::1", "localhost"), ("127.0.1.1", "sandbox"),
               *((address, name) for name, address in _forwarded(profile))),
        binds=tuple(BindMount(overlay_source if m.overlay else m.source, m.target, m.read_only) for m in mounts),
        tmpfs=(TmpfsMount(TMP_TARGET, profile.tmp_size, noexec=profile.noexec_tmpfs),
               *(() if request.home_volume else (
                   TmpfsMount(SANDBOX_HOME, profile.home_size, mode="0700", user_owned=True,
                              noexec=profile.noexec_tmpfs),))),
        volumes=(VolumeMount(request.home_volume, SANDBOX_HOME, noexec=profile.noexec_tmpfs),)
        if request.home_volume else (),
        user=profile.user,
        private_userns=not host.rootless and level.private_userns,
        keep_id=runs_as_caller(host, mounts, profile.isolation),
        seccomp_profile_path=seccomp_profile_path,
        cpus=cpus,
        memory=memory,
        pids=pids,
        rlimits=(
            _rlimit("nofile", limits.nofile, host.nofile_hard),
            _rlimit("nproc", limits.pids, host.nproc_hard),
        ),
        backstop_timeout=math.ceil(limits.timeout + limits.kill_grace) + BACKSTOP_MARGIN,
        stop_grace=max(1, math.ceil(limits.kill_grace)),
        oci_runtime=level.oci_runtime,
        init_path=host.init_path,
        entry_path=host.entry_path if level.entry else None,
    )
    return Compiled(spec, tuple(notices))


@record
class LevelRuntime:
    """How the profile's isolation level runs on this host."""

    oci_runtime: str | None  # what Podman's service is given (None: its default)
    why_not_enforced: str  # "" or why cgroup limits cannot be applied at this level
    pids_per_process: int  # host tasks (in the pids cgroup) per process of the sandbox's own
    pids_base: int  # and those the level itself needs
    private_userns: bool = True  # rootful: Podman's user namespace of unprivileged ids (userns=auto)
    entry: bool = True  # the command through vectraguard-entry (and so pools), when it is installed


# runsc's own host threads and processes count against the container's pids
# cgroup: measured here (Debian's runsc 2022-12, ptrace platform), a sandbox
# with one process holds ~72 host tasks and each further process ~5.4 more
# (its ptrace stub and Sentry threads); below ~64 it hangs while starting.
# The cgroup limit is set so that the profile's number of processes fits:
# the sandbox's own RLIMIT_NPROC (rlimits: the profile's value) is what fails
# its forks (EAGAIN, as under runc; gVisor enforces it). When runsc itself
# cannot create a task, the whole sandbox ends (Go's fatal exit, status 2):
# seen here only with the sandbox's processes at its RLIMIT_NPROC exactly.
GVISOR_PIDS_PER_PROCESS, GVISOR_PIDS_BASE = 6, 128


def isolation_runtime(profile: ResolvedProfile, host: HostFacts) -> LevelRuntime:
    """The OCI runtime for the profile's `isolation`; IsolationUnavailable when this host cannot give it."""
    if profile.isolation == "container":
        return LevelRuntime(host.oci_runtime, "", 1, 0)
    where = profile.provenance.get("isolation")
    asked = f" (isolation set by {where})" if where is not None else ""
    if profile.isolation == "gvisor":
        if host.gvisor_dir is None:
            raise IsolationUnavailable(
                f"vectraguard: profile {profile.name!r} asks for isolation gvisor{asked}, which this host cannot "
                f"give: {host.why_no_gvisor}",
                hint="`vectraguard doctor` says which isolation levels this host supports")
        if profile.workspace_mode == "overlay":
            where_mode = profile.provenance.get("filesystem.workspace.mode")
            raise IsolationUnavailable(
                f"vectraguard: profile {profile.name!r} asks for isolation gvisor{asked} with an overlay workspace"
                f"{f' (set by {where_mode})' if where_mode is not None else ''}, which this version cannot give: "
                "the overlay layer is mounted for the sandbox's mapped ids, and a gVisor sandbox has none",
                hint="run it with --workspace ro or --workspace none, or at isolation container")
        from vectraguard.isolation import gvisor

        # userns=auto as at container: the sandbox's ids are a range of
        # unprivileged host ids, so its uid 1000 is not the host's uid 1000 for
        # the files it is given. runsc's Gofer then opens the mount sources as
        # an unmapped id: they must be reachable by others (commands/run.py
        # checks it first), hosts files live in a searchable directory
        # (paths.hosts_dir), and there is no vectraguard-entry (its command
        # directory is private to us), so no pool at this level.
        return LevelRuntime(gvisor.runtime_for(profile.network_mode, host.rootless, host.gvisor_dir),
                            "gVisor cannot use cgroups rootless (runsc --ignore-cgroups)" if host.rootless else "",
                            GVISOR_PIDS_PER_PROCESS, GVISOR_PIDS_BASE, entry=False)
    if profile.isolation == "lite":
        from vectraguard.lite import limits as lite

        refusal = host.why_no_lite or lite.what_lite_cannot_give(profile)
        if refusal:
            raise IsolationUnavailable(
                f"vectraguard: profile {profile.name!r} asks for isolation lite{asked}, which "
                f"{'this host' if host.why_no_lite else 'this version'} cannot give: {refusal}",
                hint="`vectraguard doctor` says which isolation levels this host supports; "
                     "isolation container gives every setting")
        return LevelRuntime(None, lite.why_not_enforced(host.rootless), 1, 0, private_userns=False)
    raise IsolationUnavailable(
        f"vectraguard: profile {profile.name!r} asks for isolation {profile.isolation}{asked}, which this "
        "version of Vectra Guard does not provide",
        hint="use isolation container, gvisor or lite (`vectraguard doctor` lists them)")


def runs_as_caller(host: HostFacts, mounts: tuple[Mount, ...], isolation: str = "container") -> bool:
    """Rootless, a read-write mount is only useful if the sandbox user is the
    caller (who owns the files): that is what Podman's keep-id maps. At
    isolation lite rootless, the sandbox user is always the caller (an
    unprivileged user namespace maps only its creator's id)."""
    return host.rootless and (isolation == "lite" or any(not m.read_only for m in mounts))


def _workdir(profile: ResolvedProfile, request: RunRequest) -> str:
    """The workspace target, or cwd's place in it when the workspace is a
    directory above cwd (an agent started in a repository's subdirectory)."""
    if profile.workspace_mode == "none":
        return SANDBOX_HOME
    relative = posixpath.relpath(request.cwd, request.workspace_source)
    if relative == "." or relative.startswith(".."):
        return profile.workspace_target
    return posixpath.join(profile.workspace_target, relative)


def _podman_network(mode: str, host: HostFacts) -> str:
    # allowlist keeps `none`: its only way out is what Vectra Guard plants.
    if mode != "full":
        return "none"
    return "slirp4netns" if host.rootless else "bridge"


def _forwarded(profile: ResolvedProfile) -> tuple[tuple[str, str], ...]:
    """Exact allowlisted hosts resolve, inside, to their own forwarder's address."""
    if profile.network_mode != "allowlist":
        return ()
    from vectraguard.network.allowlist import Allowlist, forwarded_hosts

    return tuple((name, address) for name, address, _ in forwarded_hosts(Allowlist.parse(profile.network_allow).entries)
                 if name != "localhost")  # always the sandbox's own


def _rlimit(name: str, wanted: int, hard: int) -> Rlimit:
    # Asking for more than the caller's hard limit makes the OCI runtime fail
    # with EPERM (setrlimit needs CAP_SYS_RESOURCE to raise it).
    value = wanted if hard < 0 else min(wanted, hard)
    return Rlimit(name, value, value)


def build_env(profile: ResolvedProfile, request: RunRequest) -> dict[str, str]:
    host_env = dict(request.host_env)
    env = {
        "PATH": SANDBOX_PATH,
        "HOME": SANDBOX_HOME,
        "TERM": host_env.get("TERM", "dumb"),
        "LANG": "C.UTF-8",
    }
    for name in profile.env_allow:
        # The host's PATH and HOME would point the sandbox at host places.
        if name in host_env and name not in PROXY_VARIABLES and name not in ("PATH", "HOME"):
            env[name] = host_env[name]
    env.update(profile.env_set)
    if profile.network_mode == "allowlist":
        # The only way out: the proxy Vectra Guard plants in the sandbox.
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[name] = PROXY_URL
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(name, None)
    if host_ca.wanted(profile.network_mode, profile.network_trust_host_ca):
        # The mount plan put the host's bundle there (or refused the run).
        env.update(dict.fromkeys(host_ca.CA_VARIABLES, host_ca.HOST_CA_TARGET))
    return env
