"""The container engines (runtime/engine.py): which the default profile's runs use, each engine found
and what it would give a sandbox, and which findings only one engine's runs need.

A finding of an engine the default profile's runs do not use cannot make doctor fail: a failure
there is a warning that says so ("not needed: ..."), and the Podman-only checks of a host without
Podman are left out (one row says it is not installed and not needed). Which engine that is:
the default profile's `engine` as a run would choose it (auto: Podman when the `podman` program
is installed, else Docker when its socket answers), under the system policy's engine.allowed.
"""

from __future__ import annotations

from collections.abc import Callable

from vectraguard import errors
from vectraguard.doctor.context import DEFAULT_PROFILE, Context
from vectraguard.doctor.finding import FAIL, Finding, fail, ok, warn

NAMES = {"podman": "Podman", "docker": "Docker Engine", "": "no engine (isolation lite)"}
DOCKER_CHECK = "docker engine"


def needs(ctx: Context, engine: str) -> bool:
    """Whether the default profile's runs need `engine`; when no engine can be chosen, the one the profile
    names (auto: Podman, which doctor then reports as missing)."""
    if ctx.engine is not None:
        return ctx.engine == engine
    return ctx.engine_wanted == engine or (ctx.engine_wanted == "auto" and engine == "podman")


def _why_not(ctx: Context) -> str:
    return f"not needed: profile {DEFAULT_PROFILE} runs on {NAMES.get(ctx.engine or '', ctx.engine or '?')}"


def scoped(ctx: Context, engine: str) -> Callable[[Finding | None], Finding | None]:
    """A filter for the findings only `engine`'s runs need (above)."""
    def scope(finding: Finding | None) -> Finding | None:
        if finding is None or needs(ctx, engine):
            return finding
        if engine == "podman" and not ctx.podman_present:
            return None
        if finding.status == FAIL:
            return warn(finding.check, f"{finding.detail} ({_why_not(ctx)})", finding.hint)
        return finding
    return scope


def podman_absent(ctx: Context) -> Finding | None:
    """The one row for a host without Podman whose default profile does not need it."""
    if ctx.podman_present or needs(ctx, "podman"):
        return None
    return ok("podman", f"not installed ({_why_not(ctx)})")


def engine_choice(ctx: Context) -> Finding:
    """Which engine the default profile's `engine` chooses here."""
    check = f"engine ({ctx.engine_wanted})"
    if ctx.engine_error is not None:
        return fail(check, ctx.engine_error.message.removeprefix("vectraguard: "),
                    ctx.engine_error.hint or "install Podman (contrib/install.sh), or start Docker Engine "
                    "(contrib/install.sh --engine docker)")
    assert ctx.engine is not None
    if ctx.engine == "podman":
        why = "installed" if ctx.engine_wanted == "auto" else "as the profile says"
    elif ctx.engine == "docker":
        why = "Podman is not installed" if ctx.engine_wanted == "auto" else "as the profile says"
    else:
        why = f"profile {DEFAULT_PROFILE} runs at isolation lite"
    return ok(check, f"{NAMES[ctx.engine]} ({why}) for profile {DEFAULT_PROFILE}")


def podman_engine(ctx: Context) -> Finding | None:
    """Podman as the issue asks each engine to be reported: version, rootful/rootless, user namespaces,
    cgroup manager and version, OCI runtime (from `podman info` through the service)."""
    if not ctx.info:
        return None
    host = ctx.info.get("host") or {}
    security = host.get("security") or {}
    version = (ctx.info.get("version") or {}).get("Version") or ctx.service_version.get("Version", "?")
    rootless = bool(security.get("rootless"))
    userns = "the caller's subordinate ids" if rootless else "a user namespace of its own per sandbox (userns=auto)"
    runtime = ctx.container_runtime or (host.get("ociRuntime") or {}).get("name") or "?"
    return ok("podman engine", f"Podman {version}, {'rootless' if rootless else 'rootful'}, {userns}, cgroup "
              f"{host.get('cgroupManager', '?')} {host.get('cgroupVersion', '?')}, runtime {runtime}")


def docker(ctx: Context) -> list[Finding]:
    """Docker Engine: the daemon (version, socket, rootless or not, user-namespace remapping, cgroup driver,
    OCI runtime), and for the default profile's runs on it, the entry program and the image."""
    from vectraguard.runtime.docker import daemon

    needed = needs(ctx, "docker")
    if not ctx.docker_present:
        if needed:
            return [fail(DOCKER_CHECK, f"no Docker daemon answers at {_socket()}", daemon.START_HINT)]
        return [ok(DOCKER_CHECK, "no Docker daemon answers (optional: `engine: docker` needs one)")]
    try:
        client = daemon.connect(timeout=10)
        facts = daemon.facts(client)
    except errors.VGError as exc:
        failure = fail if needed else warn
        return [failure(DOCKER_CHECK, " ".join(exc.lines()), "see `vectraguard doctor` after starting dockerd")]
    scope = scoped(ctx, "docker")
    described = (f"Docker {facts.version} (API {facts.api_version}) at {facts.socket}, "
                 f"{'rootless' if facts.rootless else 'rootful'}, cgroup {facts.cgroup_driver} "
                 f"v{facts.cgroup_version}, runtime {facts.default_runtime}")
    found = [_userns(ctx, described, facts.rootless, facts.userns_remap)]
    if needed:
        found += [_entry(ctx), _image(ctx, client)]
    return [shown for finding in found if (shown := scope(finding)) is not None]


def _userns(ctx: Context, described: str, rootless: bool, remap: bool) -> Finding:
    from vectraguard.runtime.docker.admit import USERNS_FIX

    if rootless or remap:
        return ok(DOCKER_CHECK, f"{described}, {'userns-remap on' if remap else 'its own user namespace'}")
    profile = ctx.default_profile
    detail = f"{described}, no userns-remap: sandboxes would run as the host's own uids"
    if profile is not None and profile.engine_userns == "shared" and needs(ctx, "docker"):
        return warn(DOCKER_CHECK, f"{detail}; profile {DEFAULT_PROFILE} accepts it (engine.userns: shared)",
                    USERNS_FIX.split(", or accept")[0])
    return fail(DOCKER_CHECK, f"{detail}, so runs on it are refused unless a profile says engine.userns: shared",
                USERNS_FIX)


def _entry(ctx: Context) -> Finding:
    from pathlib import Path

    from vectraguard.sandbox import entry

    check = "docker entry program"
    path = ctx.facts.entry_path
    try:
        current = path is not None and entry.BACKSTOP_PROTOCOL in Path(path).read_bytes()
    except OSError:
        current = False
    if current:
        return ok(check, f"{path}: waits for the start and kills the command at the run's backstop")
    return fail(check, f"{path or 'vectraguard-entry'} is " + ("an older version" if path else "not installed")
                + ": every run on Docker Engine is refused", "reinstall Vectra Guard: contrib/install.sh --engine docker")


def _image(ctx: Context, client: object) -> Finding:
    from vectraguard.images import recipe
    from vectraguard.runtime.docker.api import Docker, DockerError

    check = "docker default image"
    assert isinstance(client, Docker)
    try:
        return ok(check, f"{ctx.image_ref} sha256:{client.image_id(ctx.image_ref)}")
    except DockerError as exc:
        if exc.status != 404:
            return fail(check, f"{ctx.image_ref}: Docker answered {exc.message}", "see dockerd's log")
    except errors.VGError as exc:
        return fail(check, f"{ctx.image_ref}: {exc.message.removeprefix('vectraguard: ')}", "see dockerd's log")
    if ctx.image_ref.startswith(recipe.REPOSITORY + ":"):
        suite = ctx.image_ref.split(":", 1)[1]
        command = "vectraguard image build --engine docker" + ("" if suite == recipe.DEFAULT_SUITE else f" --suite {suite}")
        return fail(check, f"{ctx.image_ref} is not in Docker's storage", f"build it: {command}")
    return fail(check, f"{ctx.image_ref} is not in Docker's storage", f"load {ctx.image_ref} into Docker "
                "(no registry is contacted)")


def _socket() -> str:
    from vectraguard.runtime.docker import daemon

    try:
        return daemon.socket_path()
    except errors.VGError:
        return "DOCKER_HOST"
