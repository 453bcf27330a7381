"""The facts doctor gathers once: several checks read each of them.

Gathering never raises for an expected failure: a missing Podman or an
invalid profile is recorded here and reported by the check it belongs to.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vectraguard.config import policy as system_policy
from vectraguard.config import profiles as profile_files
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.errors import VGError
from vectraguard.images import importer, recipe
from vectraguard.runtime import host, oci, service
from vectraguard.runtime.podman_api import client_for
from vectraguard.runtime.probe import ToolResult, run_tool

if TYPE_CHECKING:
    from podman import PodmanClient

DEFAULT_PROFILE = "default"


@dataclass
class Context:
    facts: host.HostFacts
    podman_version: ToolResult  # `podman version --format json`
    client: PodmanClient | None = None  # None: the service is unreachable
    service_socket: str = ""
    service_error: VGError | None = None
    service_version: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # `podman info` through the service
    profiles: dict[str, ResolvedProfile] = field(default_factory=dict)
    profile_errors: dict[str, VGError] = field(default_factory=dict)
    policy: system_policy.Policy | None = None  # None: no policy file, or an invalid one (policy_error)
    policy_error: VGError | None = None
    image_ref: str = ""  # the default profile's image
    image_id: str | None = None
    # `OCIRuntime` of a container created through the service (oci.runtime_given);
    # None with runtime_error set when it could not be asked, or Podman did not say.
    container_runtime: str | None = None
    runtime_error: str = ""
    # The engines (runtime/engine.py): which are here, and which the default profile's `engine`
    # (auto | podman | docker) chooses under the system policy: "podman", "docker", "" (isolation
    # lite: none), or None when the choice is refused (engine_error).
    podman_present: bool = False  # the `podman` program in PATH, as `engine: auto` asks
    docker_present: bool = False  # a Docker daemon's socket answers
    engine_wanted: str = "auto"
    engine: str | None = None
    engine_error: VGError | None = None

    @property
    def default_profile(self) -> ResolvedProfile | None:
        return self.profiles.get(DEFAULT_PROFILE)


def gather(stack: ExitStack) -> Context:
    """Collect everything; the Podman client is closed when `stack` closes."""
    ctx = Context(facts=host.detect(), podman_version=run_tool(["podman", "version", "--format", "json"]))
    _resolve_profiles(ctx)
    try:
        ctx.policy = system_policy.load()
    except VGError as exc:
        ctx.policy_error = exc
    profile = ctx.default_profile
    ctx.image_ref = profile.image if profile else recipe.image_ref(recipe.DEFAULT_SUITE)
    _choose_engine(ctx)
    if ctx.podman_present:
        _ask_service(ctx, stack)
        _ask_runtime(ctx)
    else:  # nothing is started: a host without Podman gets no private service of ours either
        ctx.service_error = VGError("vectraguard: podman is not installed", hint="apt-get install podman runc "
                                    "(or run contrib/install.sh)")
        ctx.runtime_error = "podman is not installed"
    return ctx


def _choose_engine(ctx: Context) -> None:
    import shutil

    from vectraguard.runtime import engine
    from vectraguard.runtime.docker import daemon

    ctx.podman_present = shutil.which("podman") is not None
    ctx.docker_present = daemon.answers()
    profile = ctx.default_profile
    if profile is None:  # reported by the profiles check
        ctx.engine_error = VGError(f"vectraguard: profile {DEFAULT_PROFILE} does not resolve")
        return
    ctx.engine_wanted = profile.engine
    try:
        ctx.engine = engine.choose(profile, ctx.policy)
    except VGError as exc:
        ctx.engine_error = exc


def _resolve_profiles(ctx: Context) -> None:
    try:
        names = list(profile_files.available(profile_files.Sources()))
    except VGError as exc:
        ctx.profile_errors["*"] = exc
        return
    for name in names:
        try:
            ctx.profiles[name] = profile_files.resolve(name, [])
        except VGError as exc:
            ctx.profile_errors[name] = exc


def _ask_service(ctx: Context, stack: ExitStack) -> None:
    import requests
    from podman.errors import PodmanError

    try:
        ctx.service_socket = service.connect(ctx.facts.oci_runtime).socket_path  # starts our private service if none answers
        client = stack.enter_context(client_for(ctx.service_socket, timeout=30))
        ctx.service_version = client.version()
        ctx.client = client
        ctx.info = client.info()
        ctx.image_id = importer.existing_id(client, ctx.image_ref)
    except VGError as exc:
        ctx.service_error = ctx.service_error or exc
    except (requests.RequestException, PodmanError) as exc:
        ctx.service_error = VGError(f"vectraguard: the Podman service did not answer: {exc}")
    except OSError as exc:  # e.g. our runtime directory cannot be created
        ctx.service_error = VGError(f"vectraguard: cannot start the Podman service: {exc}")


def _ask_runtime(ctx: Context) -> None:
    """Which OCI runtime a container of ours really gets: the service decides,
    whatever a create request asks for (see runtime/oci.py)."""
    from vectraguard.runtime.libpod import Libpod, LibpodError

    if ctx.client is None or ctx.image_id is None:
        ctx.runtime_error = "no Podman service" if ctx.client is None else f"the default image {ctx.image_ref} is not available"
        return
    try:
        ctx.container_runtime = oci.runtime_given(Libpod(ctx.service_socket), ctx.image_id, ctx.facts.oci_runtime)
    except LibpodError as exc:
        ctx.runtime_error = f"Podman refused a trivial container: {exc.message}"
    except VGError as exc:
        ctx.runtime_error = exc.message.removeprefix("vectraguard: ")
    else:
        if ctx.container_runtime is None:
            ctx.runtime_error = "Podman's inspect of a container names no OCIRuntime"
