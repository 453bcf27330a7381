"""Whether Docker Engine can give this run, decided before anything is recorded or created.

`admit()` runs in `vectraguard run`'s prepare step (commands/run.py), so
every refusal here is a `refused` record and nothing of the sandbox exists.
The compiled ContainerSpec (sandbox/spec.py), field by field, on Docker:

- image, command, workdir, env, labels, hostname, hosts, terminal: given
  (spec.py; the command, its environment and directory through the entry's
  command file; a workdir the sandbox lacks is refused after the start, before
  the command runs, as Podman refuses it: runtime.py).
- network: `none` given; the full network is Docker's bridge (runtime.py
  refuses a daemon without one).
- binds: given read-only or not; an `overlay` workspace is refused here:
  its overlay is mounted into the created container by Podman's runtime
  (SessionRequest.after_create), which Docker has no step for (`rw` needs
  no such step: it is given). An image VOLUME below a bind, or above any
  mount, is refused here (_refuse_volumes_across_mounts).
- tmpfs: given. volumes (an agent's kept $HOME): refused here.
- user: given. private_userns: the daemon's one remap range (refused
  without it unless `engine.userns: shared`); keep_id (rootless: the
  sandbox user is the caller, so it may write the caller's files): refused
  here, Docker has no such mapping.
- seccomp, limits, rlimits, stop_grace, init: given.
- backstop_timeout: Docker has no timeout of its own; the entry program
  kills the command then (`--await SECONDS`, spec.py), which ends the
  container; the next run removes it.
- oci_runtime: Podman's service's choice (gVisor is refused by
  runtime/engine.py); Docker runs its default runtime.
- entry_path: required, with `--await SECONDS`.

Costs: the daemon's facts (GET /_ping, GET /info, ~9 ms, which the runtime
then reuses) and the image's config (GET /images/NAME/json, ~2 ms) for its
VOLUME paths.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectraguard import diag, errors
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.runtime.docker.daemon import DaemonFacts
from vectraguard.sandbox import entry
from vectraguard.sandbox.spec import ContainerSpec

USERNS_FIX = ('start dockerd with --userns-remap=default (or "userns-remap": "default" in '
              "/etc/docker/daemon.json), or accept the same uids with engine.userns: shared in the profile")
REINSTALL = "reinstall Vectra Guard (contrib/install.sh), or use --engine podman"
# What the record says in place of the session's own paths (sessions/snapshot.py says the same for Podman).
HOSTS_FILE = "<the session's hosts file>"
RUN_DIR = "<the session's command directory>"
RESOLV_FILE = "<an empty file>"


@dataclass(frozen=True)
class DockerPlan:
    """What the run needs of the daemon, learnt once in prepare and used by the runtime (runtime.py)."""

    client: Any  # runtime/docker/api.Docker, connected
    facts: DaemonFacts
    userns: dict[str, Any]  # as recorded: {"mode": "remap", "uid": first, "gid": first, "size": n} | {"mode": "shared"} ...
    image_volumes: tuple[str, ...]  # the image's VOLUME paths, sorted
    cgroup_mounts: tuple[str, ...]  # /sys/fs/cgroup/NAME mount points a container gets (this host's hierarchies)

    def body(self, spec: ContainerSpec, hosts_file: str, run_dir: str, resolv_file: str,
             seccomp: str | None = None) -> dict[str, Any]:
        """The create body (spec.py) of this run."""
        from vectraguard.runtime.docker.spec import create_body

        return create_body(spec, hosts_file=hosts_file, run_dir=run_dir, resolv_file=resolv_file,
                           image_volumes=self.image_volumes, cgroup_mounts=self.cgroup_mounts, seccomp=seccomp)

    def described(self, spec: ContainerSpec) -> dict[str, Any]:
        """What the `started` record keeps (sessions/snapshot.py): the create body as it will be sent, the
        session's paths named, the seccomp profile by path and SHA-256 (its JSON is sent), and the user
        namespace as it is (Docker's body has no field for it: the daemon decides)."""
        path = spec.seccomp_profile_path
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return {"create": self.body(spec, HOSTS_FILE, RUN_DIR, RESOLV_FILE, seccomp=f"<{path} sha256:{digest}>"),
                "userns": self.userns}


def admit(profile: ResolvedProfile, spec: ContainerSpec) -> DockerPlan:
    """The plan, or the refusal (errors.VGError, exit 125) of what Docker cannot give (above)."""
    from vectraguard.runtime.docker import daemon
    from vectraguard.runtime.docker.api import DockerError

    _refuse_what_docker_lacks(profile, spec)
    client = daemon.connect()
    facts = daemon.facts(client)
    userns = _userns(profile, facts)
    if spec.network != "none":
        _check_bridge(client)
    try:
        config = client.image_inspect(spec.image).get("Config") or {}
    except DockerError as exc:
        if exc.status != 404:
            raise errors.RuntimeUnavailable(f"vectraguard: Docker Engine could not describe the image "
                                            f"{spec.image}: {exc.message}") from None
        config = {}  # the create says so, with the image hint (commands/run.py)
    volumes = tuple(sorted(str(path) for path in (config.get("Volumes") or {})))
    _refuse_volumes_across_mounts(spec, volumes)
    return DockerPlan(client, facts, userns, volumes, cgroup_mounts())


def _refuse_what_docker_lacks(profile: ResolvedProfile, spec: ContainerSpec) -> None:
    def refuse(what: str, key: str, hint: str) -> None:
        where = profile.provenance.get(key) or Origin("<built-in>")
        raise errors.IsolationUnavailable(f"vectraguard: {where}: {what}, which Docker Engine cannot give; "
                                          "nothing ran", hint=hint)

    if profile.workspace_mode == "overlay":
        refuse("workspace mode overlay (a copy-on-write layer mounted into the created container)",
               "filesystem.workspace.mode", "use --engine podman for --workspace overlay, or --workspace ro / rw")
    if spec.volumes:
        refuse("an agent's kept $HOME (a named volume)", "agent.home",
               "use --engine podman for this agent, or agent.home: tmpfs")
    if spec.keep_id:
        refuse("a rootless writable mount as the caller's own uid (Podman's keep-id)", "filesystem.workspace.mode",
               "use --engine podman, or a read-only workspace")
    if spec.entry_path is None:
        raise errors.RuntimeUnavailable("vectraguard: Docker Engine runs sandboxes through vectraguard-entry, "
                                        "which is not installed; nothing ran", hint=REINSTALL)
    if entry.BACKSTOP_PROTOCOL not in Path(spec.entry_path).read_bytes():
        raise errors.RuntimeUnavailable("vectraguard: the installed vectraguard-entry is older than this "
                                        "version's `--await SECONDS` (the start signal, the backstop, and the "
                                        "entry as the sandbox's init), which Docker Engine runs need; nothing ran", hint=REINSTALL)


def _refuse_volumes_across_mounts(spec: ContainerSpec, volumes: tuple[str, ...]) -> None:
    """An image's VOLUME is covered by an empty read-only tmpfs (spec.py): Docker cannot be told to ignore
    it, as Podman is. Below a bind mount of the plan, the cover's mount point would be made in the mount's
    source: on the host (a writable workspace gets a new directory; a read-only one fails in runc); and a
    mount of the plan below a VOLUME would need its mount point made in the read-only cover. Refused here,
    before anything is created, naming both. A VOLUME below a tmpfs of the plan is fine (made in the tmpfs)."""
    from vectraguard.sandbox.entry import ENTRY_TARGET, RUN_DIR_TARGET

    binds = [*(b.target for b in spec.binds), "/etc/hosts", "/etc/resolv.conf", ENTRY_TARGET, RUN_DIR_TARGET]
    every = [*binds, *(t.target for t in spec.tmpfs)]
    for volume in volumes:
        clean = volume.rstrip("/") or "/"
        for target in binds:
            if _below(clean, target):
                _refuse_volume(volume, f"below the sandbox's mount at {target}", "its mount point would be made in "
                               "that mount's source, on the host")
        for target in every:
            if _below(target, clean):
                _refuse_volume(volume, f"above the sandbox's mount at {target}", "that mount's mount point would "
                               "have to be made in the read-only cover of the volume")


def _below(path: str, parent: str) -> bool:
    return path != parent and path.startswith(parent.rstrip("/") + "/")


def _refuse_volume(volume: str, where: str, why: str) -> None:
    raise errors.IsolationUnavailable(
        f"vectraguard: the image declares VOLUME {volume}, {where}; Docker Engine makes every VOLUME (Vectra "
        f"Guard covers each with an empty read-only tmpfs, as it cannot be ignored there) and {why}; nothing ran",
        hint="use --engine podman (it ignores an image's volumes), or an image without that VOLUME")


def _userns(profile: ResolvedProfile, facts: DaemonFacts) -> dict[str, Any]:
    """The user namespace as the record says it; refused without one unless the profile accepts `shared`."""
    if facts.rootless:
        return {"mode": "rootless"}  # rootlesskit's namespace of the caller's subordinate ids
    if facts.userns_remap:
        return {"mode": "remap", **remap_range(facts.root_dir)}
    if profile.engine_userns != "shared":
        raise errors.IsolationUnavailable(
            "vectraguard: this Docker daemon has no userns-remap, so the sandbox's uid would be the same uid "
            "on the host (root's files and processes among them); nothing ran", hint=USERNS_FIX)
    diag.notice("vectraguard: warning: engine.userns: shared: the sandbox's uids are this host's own "
                "(Docker without userns-remap)")  # -q leaves it out (diag.py)
    return {"mode": "shared"}


def remap_range(root_dir: str) -> dict[str, Any]:
    """The daemon's remap range: a remapped dockerd keeps its state in DATA-ROOT/UID.GID (moby
    daemon/daemon_unix.go, setupRemappedRoot), UID and GID the first host ids of the range; its size is
    that range's line in /etc/subuid (absent when the file cannot say)."""
    uid, _, gid = Path(root_dir).name.partition(".")
    if not (uid.isdigit() and gid.isdigit()):
        return {"data_root": root_dir}
    found: dict[str, Any] = {"uid": int(uid), "gid": int(gid)}
    try:
        lines = Path("/etc/subuid").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split(":")
        if len(fields) == 3 and fields[1] == uid and fields[2].isdigit():
            found["size"] = int(fields[2])
            break
    return found


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> tuple[str, ...]:
    """The cgroup file systems' mount points below /sys/fs/cgroup on this host (proc(5) mountinfo: the
    fifth field the mount point, the filesystem type after ' - '), which a container's private cgroup
    namespace gets at the same paths: each is made read-only by name (runc's readonly paths are not
    recursive)."""
    found = []
    try:
        text = Path(mountinfo).read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) >= 5 and rest.split(" ", 1)[0] in ("cgroup", "cgroup2") and parts[4].startswith("/sys/fs/cgroup/"):
            found.append(parts[4])
    return tuple(sorted(set(found)))


def _check_bridge(client: Any) -> None:
    """network full is Docker's default bridge: a daemon started without one (--bridge=none, as the test
    daemon of contrib/docker/dockerd.sh is, so as not to touch the host's firewall) cannot give it, and
    Docker would quietly run the container without a network."""
    from vectraguard.runtime.docker.api import DockerError

    try:
        client.json("GET", "/networks/bridge")
    except DockerError as exc:
        if exc.status != 404:
            raise
        raise errors.RuntimeUnavailable(
            "vectraguard: network full on Docker Engine is its bridge network, and this daemon has none "
            "(started with --bridge=none); nothing ran",
            hint="use --network allowlist (it needs no bridge), or start dockerd with its default bridge") from None
