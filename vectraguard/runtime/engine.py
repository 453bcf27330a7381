"""Which container engine runs a sandbox: the profile's `engine`, under the system policy's `engine.allowed`.

`auto` (the default) is Podman when the `podman` program is installed, else
Docker Engine when its API socket answers (runtime/docker/daemon.py): a host
with both keeps Podman, the engine every isolation level is built for. An
explicit `podman` or `docker` is used or refused, never replaced by the
other. Isolation `lite` runs without an engine: a profile that names one
for it is refused rather than silently not using it; `gvisor` runs on
Podman only in this version (Docker would need runsc registered in the
daemon's own configuration, which Vectra Guard cannot check per run).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from vectraguard import errors
from vectraguard.config.policy import Policy
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.runtime.interface import SandboxRuntime

ENGINES = ("podman", "docker")


def choose(profile: ResolvedProfile, policy: Policy | None) -> str:
    """"podman" or "docker" ("" for isolation lite, which uses none); PolicyError, IsolationUnavailable or
    RuntimeUnavailable (exit 125) when the choice is refused or nothing can run it."""
    where = profile.provenance.get("engine.name") or profile.provenance.get("engine") or Origin("<built-in>")
    if profile.isolation == "lite":
        if profile.engine != "auto":
            raise errors.IsolationUnavailable(
                f"vectraguard: {where}: engine {profile.engine} with isolation lite, which runs without a "
                "container engine", hint="leave engine at auto for isolation lite, or use isolation container")
        return ""
    allowed = tuple(policy.get("engine.allowed") or ENGINES) if policy is not None else ENGINES
    if profile.engine == "auto":
        chosen = _automatic(allowed)
    else:
        chosen = profile.engine
    if chosen not in allowed:
        assert policy is not None
        raise errors.PolicyError(f"vectraguard: engine {chosen} is not allowed on this host; refused by "
                                 f"{policy.rule('engine.allowed')}", hint=f"use --engine {allowed[0]}")
    if chosen == "docker" and profile.isolation == "gvisor":
        raise errors.IsolationUnavailable(
            f"vectraguard: profile {profile.name!r} asks for isolation gvisor on Docker Engine, which this version "
            "runs on Podman only", hint="use --engine podman, or isolation container")
    return chosen


def for_images(wanted: str) -> str:
    """The engine `image build --engine WANTED` builds for ("auto": as a run's auto chooses), under the
    system policy's engine.allowed."""
    from vectraguard.config import policy as policies

    system = policies.load()
    allowed = tuple(system.get("engine.allowed") or ENGINES) if system is not None else ENGINES
    chosen = _automatic(allowed) if wanted == "auto" else wanted
    if chosen not in allowed:
        assert system is not None
        raise errors.PolicyError(f"vectraguard: engine {chosen} is not allowed on this host; refused by "
                                 f"{system.rule('engine.allowed')}")
    return chosen


def _automatic(allowed: tuple[str, ...]) -> str:
    if "podman" in allowed and shutil.which("podman") is not None:
        return "podman"
    if "docker" in allowed:
        from vectraguard.runtime.docker import daemon

        if daemon.answers():
            return "docker"
    raise errors.RuntimeUnavailable(
        "vectraguard: no container engine to run the sandbox: "
        + ("podman is not installed" if "podman" in allowed else "the policy allows docker only")
        + ("; Docker Engine's socket does not answer" if "docker" in allowed else ""),
        hint="install Podman (contrib/install.sh), or start Docker Engine; `vectraguard doctor` says more")


def admit(engine: str, profile: ResolvedProfile, spec: Any) -> Any:
    """What `engine` learns before the run is recorded, refusing there what it cannot give (errors.VGError):
    Docker's plan (runtime/docker/admit.py); None for Podman, which needs nothing more."""
    if engine != "docker":
        return None
    from vectraguard.runtime.docker.admit import admit as docker_admit

    return docker_admit(profile, spec)


def described(admitted: Any, spec: Any) -> dict[str, Any] | None:
    """What the engine will be sent, for the `started` record (sessions/snapshot.py), when it is not
    Podman's SpecGenerator (None: the record renders that itself)."""
    return None if admitted is None else admitted.described(spec)


def runtime(engine: str, profile: ResolvedProfile, facts: Any, owner: str,
            pool_plan: Callable[[], Any], admitted: Any = None) -> SandboxRuntime:
    """The SandboxRuntime (runtime/interface.py) of `engine` for this run; `pool_plan()` gives the Podman
    runtime its pool plan (Docker keeps no pools in this version); `admitted`: what admit() gave."""
    if engine == "docker":
        from vectraguard.runtime.docker.runtime import DockerRuntime

        return DockerRuntime(profile, facts, owner, admitted)
    from vectraguard.runtime.podman_runtime import PodmanRuntime

    return PodmanRuntime(profile.isolation, facts.rootless, facts.cgroup_mode, pool_plan(), owner)
