"""The fully resolved profile: complete, typed, frozen, with provenance.

Raw layers may omit keys; by the time a profile is resolved every value is
set (the shipped `default` profile provides them all) and converted to its
unit. Conversion problems are located at the file:line that set the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from vectraguard import units
from vectraguard.config import upstream
from vectraguard.config.merge import Merged
from vectraguard.config.problems import Origin, Problem, raise_if_any
from vectraguard.records import record

T = TypeVar("T")


@record
class MountEntry:
    """A mount as a profile asks for it (before the mount rules check it)."""

    source: str
    target: str
    mode: str  # "ro" | "rw"
    origin: Origin


@record
class Limits:
    """Resource limits, in base units (CPUs, bytes, counts, seconds)."""

    cpus: float
    memory: int  # bytes; also the memory+swap cap
    pids: int
    nofile: int
    timeout: float  # seconds
    kill_grace: float  # seconds
    enforcement: str  # "strict" | "best-effort"
    workspace_writes: int = 2 << 30  # bytes an overlay workspace's layer may hold


@record
class Recipe:
    """What `image build --agent` adds to the default image's packages."""

    debian: tuple[str, ...]
    npm: tuple[str, ...]
    pip: tuple[str, ...]


@record
class Agent:
    """The `agent` section: present only in agent definitions."""

    command: tuple[str, ...]
    home: str  # "volume" | "tmpfs"
    recipe: Recipe


@record
class ResolvedProfile:
    """A profile with every layer applied, typed, with the provenance of each key."""

    name: str
    description: str
    image: str
    workspace_mode: str  # "ro" | "rw" | "overlay" | "none"
    workspace_target: str
    mounts: tuple[MountEntry, ...]
    tmp_size: int
    home_size: int
    noexec_tmpfs: bool
    env_allow: tuple[str, ...]
    env_set: Mapping[str, str]
    network_mode: str
    network_allow: tuple[str, ...]
    limits: Limits
    user: str
    seccomp: str
    provenance: Mapping[str, Origin]
    agent: Agent | None = None
    risk: Mapping[str, Any] | None = None  # the `risk` section as data: see vectraguard/risk/
    protected: tuple[str, ...] = ()  # filesystem.protected patterns (vectraguard/workspace/protected.py)
    git_writable: bool = False  # filesystem.git: writable (rw mode only)
    output_passthrough: str = "filtered"  # output.passthrough: "filtered" | "raw" (vectraguard/terminal/)
    # The egress settings (allowlist mode; trust_host_ca also in full): see vectraguard/config/upstream.py.
    network_max_connections: int = 256  # open at once through the proxy and forwarders
    network_upstream_proxy: str | None = None  # None (direct) | "environment" | http://[user:pass@]host:port
    network_no_proxy: tuple[str, ...] = ()  # host suffixes / CIDRs that bypass an upstream URL
    network_trust_host_ca: bool = False  # mount the host's CA bundle (vectraguard/network/host_ca.py)
    network_hosts_file: str | None = None  # absolute host path, hosts(5), read before DNS
    network_publish: tuple[str, ...] = ()  # [HOST_ADDR:]HOST_PORT:PORT each (network/publish_spec.py)
    pool: int = 0  # sandboxes kept initialised ahead of the runs (vectraguard/pool/)
    pool_idle: float = 300.0  # seconds a pooled sandbox may wait unclaimed
    isolation: str = "container"  # "container" | "gvisor" | "lite" (vectraguard/isolation/)
    # image.packages: `image` is then the variant built from them (images/variant.py),
    # image_base the default image they are added to (image.ref).
    image_packages: tuple[str, ...] = ()
    image_base: str = ""
    engine: str = "auto"  # "auto" | "podman" | "docker" (vectraguard/runtime/engine.py chooses for auto)
    engine_userns: str = "private"  # "private" | "shared" (Docker without userns-remap: runtime/docker/)


def as_dict(profile: ResolvedProfile) -> dict[str, Any]:
    """The canonical form, in profile-file keys and units, for `profile show`."""
    limits = profile.limits
    return {
        "description": profile.description,
        # The short form unless packages are named: the digest of every other profile stays what it was.
        "image": {"ref": profile.image_base, "packages": list(profile.image_packages)}
        if profile.image_packages else profile.image,
        "filesystem": {
            "workspace": {"mode": profile.workspace_mode, "target": profile.workspace_target},
            "mounts": [{"source": m.source, "target": m.target, "mode": m.mode} for m in profile.mounts],
            "tmp_size": units.format_size(profile.tmp_size),
            "home_size": units.format_size(profile.home_size),
            "noexec_tmpfs": profile.noexec_tmpfs,
            "protected": list(profile.protected),
            "git": "writable" if profile.git_writable else "read-only",
        },
        "env": {"allow": list(profile.env_allow), "set": dict(profile.env_set)},
        "network": {
            "mode": profile.network_mode, "allow": list(profile.network_allow),
            "max_connections": profile.network_max_connections,
            # Never the password: this dict is what `profile show` prints and the audit record keeps.
            "upstream_proxy": upstream.redact(profile.network_upstream_proxy),
            "no_proxy": list(profile.network_no_proxy), "trust_host_ca": profile.network_trust_host_ca,
            "hosts_file": profile.network_hosts_file,
            **({"publish": list(profile.network_publish)} if profile.network_publish else {}),
        },
        "limits": {
            "cpus": limits.cpus, "memory": units.format_size(limits.memory), "pids": limits.pids,
            "nofile": limits.nofile, "timeout": units.format_duration(limits.timeout),
            "kill_grace": units.format_duration(limits.kill_grace), "enforcement": limits.enforcement,
            "workspace_writes": units.format_size(limits.workspace_writes),
        },
        "security": {"user": profile.user, "seccomp": profile.seccomp},
        "output": {"passthrough": profile.output_passthrough},
        # Only when used: the digest of every profile without a pool stays what it was.
        **({"pool": profile.pool, "pool_idle": units.format_duration(profile.pool_idle)} if profile.pool else {}),
        # Likewise: a profile at the default level keeps its digest (and the approvals bound to it).
        **({"isolation": profile.isolation} if profile.isolation != "container" else {}),
        # And with the default engine: every profile that names none keeps its digest.
        **({"engine": {"name": profile.engine, "userns": profile.engine_userns}}
           if (profile.engine, profile.engine_userns) != ("auto", "private") else {}),
        **({"agent": _agent_dict(profile.agent)} if profile.agent else {}),
        **({"risk": dict(profile.risk)} if profile.risk else {}),
    }


def digest(profile: ResolvedProfile) -> str:
    """The resolved profile's identity: the audit record carries it, and a
    remembered approval is bound to it. Computed once a profile: a run
    asks twice (the gate, the `started` record), ~0.5 ms each."""
    known = _digests.get(id(profile))
    if known is not None and known[0] is profile:
        return known[1]
    import json

    from vectraguard.digests import sha256_hex

    canonical = {"name": profile.name, **as_dict(profile)}
    value = sha256_hex(json.dumps(canonical, sort_keys=True).encode())
    _digests[id(profile)] = (profile, value)  # the profile kept alive: its id is not reused meanwhile
    return value


# id(profile) -> (profile, its digest); a process resolves a handful of profiles.
_digests: dict[int, tuple[ResolvedProfile, str]] = {}


def remember_digest(profile: ResolvedProfile, value: str) -> None:
    """Take `value` as `profile`'s digest: one computed for the same resolution
    before (config/resolved_cache.py keeps it with the resolved data)."""
    _digests[id(profile)] = (profile, value)


def _agent_dict(agent: Agent) -> dict[str, Any]:
    recipe = agent.recipe
    return {"command": list(agent.command), "home": agent.home,
            "recipe": {"debian": list(recipe.debian), "npm": list(recipe.npm), "pip": list(recipe.pip)}}


class _Reader:
    """Reads typed values out of merged data, collecting located problems."""

    def __init__(self, merged: Merged) -> None:
        self.merged = merged
        self.problems: list[Problem] = []

    def origin(self, path: str) -> Origin:
        return self.merged.provenance.get(path, Origin("<built-in>"))

    def raw(self, path: str) -> Any:
        node: Any = self.merged.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                self.problems.append(Problem(Origin("<profiles>"), path, "no value set (the default profile must set it)"))
                return None
            node = node[part]
        return node

    def optional(self, path: str) -> Any:
        """The value at `path`, or None where it is absent (keys added after
        the default profile's first release, so older default layers still resolve)."""
        node: Any = self.merged.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def get(self, path: str, convert: Callable[[Any], T], fallback: T, *, optional: bool = False) -> T:
        value = self.optional(path) if optional else self.raw(path)
        if value is None:
            return fallback
        try:
            return convert(value)
        except ValueError as exc:
            self.problems.append(Problem(self.origin(path), path, str(exc)))
            return fallback


def _agent(section: dict[str, Any]) -> Agent:
    # Optional keys with their defaults here: `agent` is absent from the
    # default profile, which holds every other default (the schema checked types).
    recipe = section.get("recipe", {})
    return Agent(command=tuple(section.get("command", ())), home=section.get("home", "volume"),
                 recipe=Recipe(*(tuple(recipe.get(kind, ())) for kind in ("debian", "npm", "pip"))))


def build(name: str, merged: Merged) -> ResolvedProfile:
    r = _Reader(merged)
    limits = Limits(
        cpus=r.get("limits.cpus", units.parse_cpus, 1.0),
        memory=r.get("limits.memory", units.parse_size, 1),
        pids=r.get("limits.pids", lambda v: units.parse_count(v, what="processes", maximum=1 << 22), 1),
        nofile=r.get("limits.nofile", lambda v: units.parse_count(v, what="open files", maximum=1 << 20), 1),
        timeout=r.get("limits.timeout", units.parse_duration, 1.0),
        kill_grace=r.get("limits.kill_grace", units.parse_duration, 1.0),
        enforcement=r.get("limits.enforcement", str, "strict"),
        workspace_writes=r.get("limits.workspace_writes", _workspace_writes, 2 << 30),
    )
    mounts = tuple(
        MountEntry(m["source"], m["target"], m.get("mode", "ro"),
                   merged.provenance.get(f"filesystem.mounts[{m['target']}]") or r.origin("filesystem.mounts"))
        for m in r.get("filesystem.mounts", list, list[dict[str, str]]())
    )
    profile = ResolvedProfile(
        name=name,
        description=r.get("description", str, ""),
        **_image(r),
        workspace_mode=r.get("filesystem.workspace.mode", str, "ro"),
        workspace_target=r.get("filesystem.workspace.target", str, "/workspace"),
        mounts=mounts,
        tmp_size=r.get("filesystem.tmp_size", units.parse_size, 1),
        home_size=r.get("filesystem.home_size", units.parse_size, 1),
        noexec_tmpfs=r.get("filesystem.noexec_tmpfs", bool, False),
        env_allow=tuple(r.get("env.allow", list, [])),
        env_set=dict(r.get("env.set", dict, {})),
        network_mode=r.get("network.mode", str, "none"),
        # Fragments add to the list (profiles.with_fragments): each entry once, first place kept.
        network_allow=tuple(dict.fromkeys(r.get("network.allow", list, []))),
        limits=limits,
        user=r.get("security.user", str, "1000:1000"),
        seccomp=r.get("security.seccomp", str, "strict"),
        provenance=dict(merged.provenance),
        agent=_agent(merged.data["agent"]) if "agent" in merged.data else None,
        risk=merged.data.get("risk"),
        protected=tuple(r.get("filesystem.protected", list, [])),
        git_writable=r.get("filesystem.git", str, "read-only") == "writable",
        output_passthrough=r.get("output.passthrough", str, "filtered"),
        pool=r.get("pool", int, 0, optional=True),
        pool_idle=r.get("pool_idle", units.parse_duration, 300.0, optional=True),
        isolation=r.get("isolation", str, "container", optional=True),
        **_engine(r),
        **_egress(r),
    )
    r.problems += _risk_problems(r, merged.data.get("risk") or {})
    raise_if_any(r.problems, f"vectraguard: profile {name!r} has invalid values")
    return profile


def _image(r: _Reader) -> dict[str, Any]:
    """`image: REF`, or `image: {ref: REF, packages: [...]}` (merge.SHORTHANDS)."""
    value = r.raw("image")
    if not isinstance(value, dict):
        return {"image": r.get("image", str, "")}
    ref = r.get("image.ref", str, "")
    packages = value.get("packages") or []
    if not packages:
        return {"image": ref}
    from vectraguard.images import variant  # only for profiles that name packages

    try:
        checked = variant.checked_packages(packages)
    except ValueError as exc:
        r.problems.append(Problem(r.origin("image.packages"), "image.packages", str(exc)))
        return {"image": ref}
    try:
        image = variant.ref_for(ref, checked)
    except ValueError as exc:
        r.problems.append(Problem(r.origin("image.ref"), "image.ref", f"{exc} (image.packages is set)"))
        return {"image": ref}
    return {"image": image, "image_packages": checked, "image_base": ref}


def _engine(r: _Reader) -> dict[str, Any]:
    """`engine: NAME`, or `engine: {name: NAME, userns: private|shared}` (merge.SHORTHANDS; optional)."""
    value = r.optional("engine")
    if isinstance(value, str):
        return {"engine": value}
    return {"engine": r.get("engine.name", str, "auto", optional=True),
            "engine_userns": r.get("engine.userns", str, "private", optional=True)}


def _egress(r: _Reader) -> dict[str, Any]:
    """The network.* settings beyond mode and allow (all optional)."""
    proxy = r.get("network.upstream_proxy", upstream.check_upstream, None, optional=True)
    no_proxy: tuple[str, ...] = r.get("network.no_proxy", upstream.check_no_proxy, tuple[str, ...](), optional=True)
    if no_proxy and (proxy is None or proxy == upstream.ENVIRONMENT):
        r.problems.append(Problem(r.origin("network.no_proxy"), "network.no_proxy",
                                  "only applies with an upstream_proxy URL (`environment` uses the host's no_proxy)"))
    return {
        "network_max_connections": r.get("network.max_connections", int, 256, optional=True),
        "network_upstream_proxy": proxy,
        "network_no_proxy": no_proxy,
        "network_trust_host_ca": r.get("network.trust_host_ca", bool, False, optional=True),
        "network_hosts_file": r.get("network.hosts_file", str, None, optional=True),
        "network_publish": r.get("network.publish", _publish, tuple[str, ...](), optional=True),
    }


def _publish(value: Any) -> tuple[str, ...]:
    # Imported only when a profile publishes ports.
    from vectraguard.network.publish_spec import check_list

    return check_list(value)


def _workspace_writes(value: Any) -> int:
    size = units.parse_size(value)
    if size < (1 << 20):
        raise ValueError("must be at least 1Mi (the layer holds the overlay's own bookkeeping too)")
    return size


def _risk_problems(r: _Reader, risk: dict[str, Any]) -> list[Problem]:
    """What the schema cannot see: a duration that does not parse, a decision
    for a rule that does not exist (a typo there would silently decide nothing)."""
    from vectraguard.risk.names import (
        CLASSES,
        NETWORK_FULL,
        NETWORK_PUBLISH,
        NETWORK_WIDENED,
        OPAQUE_RULES,
    )

    problems = []
    remember_for = risk.get("remember_for")
    if remember_for is True:
        problems.append(Problem(r.origin("risk.remember_for"), "risk.remember_for", "use a duration (e.g. 24h) or false"))
    elif remember_for not in (None, False):
        try:
            units.parse_duration(remember_for)
        except ValueError as exc:
            problems.append(Problem(r.origin("risk.remember_for"), "risk.remember_for", str(exc)))
    known = {*CLASSES, NETWORK_FULL, NETWORK_WIDENED, NETWORK_PUBLISH, *OPAQUE_RULES, *(rule.get("id") for rule in risk.get("rules", []))}
    for key in risk.get("decisions") or {}:
        if key not in known:
            path = f"risk.decisions.{key}"
            problems.append(Problem(r.origin(path), path, "no class or rule has this name "
                                    f"(classes: {', '.join(CLASSES)}; rules: risk.rules ids)"))
    return problems
