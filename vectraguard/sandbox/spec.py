"""ContainerSpec: the compiled sandbox, and the one place that knows Podman's names.

Grouped by concern like Podman's own specgen (basic, storage, security,
network, resources). `to_specgen()` renders the libpod "SpecGenerator" JSON
that `POST /libpod/containers/create` takes; no other module spells those
field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vectraguard.audit import exact
from vectraguard.records import record
from vectraguard.sandbox.entry import ENTRY_TARGET, RUN_DIR_TARGET

LABEL_SESSION = "io.vectraguard.session"
LABEL_OWNER = "io.vectraguard.owner"
LABEL_PROFILE = "io.vectraguard.profile"
LABEL_POOL = "io.vectraguard.pool"  # a pooled container (vectraguard/pool/): its slot
CPU_PERIOD_US = 100_000
USERNS_SIZE = 65536


CONTAINER_LOG_BYTES = 1 << 20  # the engine's log of a sandbox's output (both engines): the last MiB or so


@record
class BindMount:
    """A bind mount in the container spec."""

    source: str
    target: str
    read_only: bool


@record
class TmpfsMount:
    """A size-capped tmpfs in the container spec."""

    target: str
    size: int
    mode: str = "1777"
    # Owned by the sandbox user rather than root. runc gives a tmpfs the mode
    # of the directory it covers, so `mode` alone cannot make $HOME writable.
    user_owned: bool = False
    noexec: bool = False


@record
class VolumeMount:
    """A named Podman volume (created on first use, kept between sandboxes)."""

    name: str
    target: str
    noexec: bool = False


@record
class Rlimit:
    """A resource limit of the sandbox's processes."""

    name: str  # "nofile", "nproc", ...
    soft: int
    hard: int


@record
class ContainerSpec:
    """Everything Podman is told about one sandbox; to_specgen() writes it in libpod's terms."""

    # basic
    image: str
    command: tuple[str, ...]
    workdir: str
    env: Mapping[str, str]
    labels: Mapping[str, str]
    hostname: str
    # The sandbox's whole /etc/hosts, (address, name) per line. Podman would
    # otherwise copy the host's own /etc/hosts in (and add the host gateway).
    hosts: tuple[tuple[str, str], ...]
    terminal: bool  # a pseudo-terminal (interactive shells); else separate stdout/stderr pipes
    network: str  # Podman's network mode: "none", or for the full network "bridge" / "slirp4netns"
    # storage
    binds: tuple[BindMount, ...]
    tmpfs: tuple[TmpfsMount, ...]
    volumes: tuple[VolumeMount, ...]
    # security
    user: str
    private_userns: bool  # rootful: a user namespace of its own (rootless has one anyway)
    keep_id: bool  # rootless: the sandbox user is the caller, so it can write the caller's files
    seccomp_profile_path: str
    # resources (None: not enforced on this host, see compile)
    cpus: float | None
    memory: int | None
    pids: int | None
    rlimits: tuple[Rlimit, ...]
    backstop_timeout: int  # Podman kills the container after this many seconds, even if we died
    stop_grace: int
    oci_runtime: str | None
    init_path: str | None
    # The host's vectraguard-entry (sandbox/entry.py): the container runs it, and it
    # runs the command written for it; None: Podman is given the command directly.
    entry_path: str | None = None

    def mount_targets(self) -> tuple[str, ...]:
        """Every path inside the sandbox that this spec mounts something at."""
        entry = (ENTRY_TARGET, RUN_DIR_TARGET) if self.entry_path else ()
        return (*(b.target for b in self.binds), *(t.target for t in self.tmpfs), *(v.target for v in self.volumes),
                "/etc/hosts", *entry)

    def not_exact(self) -> list[str]:
        """What Podman would not get byte for byte, one phrase each ([] when all would).

        Its API is JSON, and Go decodes every byte that is not UTF-8 as U+FFFD:
        an argument, a path or an environment value that is not UTF-8 would
        reach the sandbox changed — a different command from the one judged
        and recorded. Environment values are named, never quoted."""
        found = [f"argument {i} of the command" for i, arg in enumerate(self.command) if not exact.is_exact(arg)]
        if not exact.is_exact(self.workdir):
            found.append(f"the working directory {exact.shell_word(self.workdir)}")
        for name, value in self.env.items():
            if not exact.is_exact(name):
                found.append(f"the environment variable name {exact.shell_word(name)}")
            elif not exact.is_exact(value):
                found.append(f"the value of the environment variable {name}")
        for bind in self.binds:
            found += [f"the mount {what} {exact.shell_word(path)}" for what, path in
                      (("source", bind.source), ("target", bind.target)) if not exact.is_exact(path)]
        if not found:  # anything else (image, volume, label ...): fail closed all the same
            found = [f"the sandbox setting {'.'.join(map(str, where))}" for where in _not_exact_in(self.to_specgen("/"))]
        return found

    def render_hosts(self) -> str:
        return "".join(f"{address}\t{name}\n" for address, name in self.hosts)

    def to_specgen(self, hosts_file: str, run_dir: str | None = None) -> dict[str, Any]:
        """`hosts_file`: where the runtime wrote render_hosts(), to be mounted at
        /etc/hosts. `run_dir`: with `entry_path`, the directory the command
        file is (or will be) written to (sandbox/entry.py); the container's
        own command and environment are then the entry program's, not the run's."""
        entry = self.entry_path is not None and run_dir is not None
        binds = [*self.binds, BindMount(hosts_file, "/etc/hosts", True)]
        if entry:
            binds += [BindMount(str(self.entry_path), ENTRY_TARGET, True), BindMount(str(run_dir), RUN_DIR_TARGET, True)]
        spec: dict[str, Any] = {
            "image": self.image,
            "command": [ENTRY_TARGET] if entry else list(self.command),
            "work_dir": self.workdir,
            "env": {} if entry else dict(self.env),
            # Podman would otherwise add the image's and host's variables.
            "env_host": False,
            "httpproxy": False,
            "labels": dict(self.labels),
            "hostname": self.hostname,
            "use_image_hosts": True,  # Podman writes no /etc/hosts: ours is mounted instead
            "stdin": True,
            "terminal": self.terminal,
            "init": True,
            "remove": False,
            "timeout": self.backstop_timeout,
            "stop_timeout": self.stop_grace,
            # Everything the command writes also goes to the engine's container log, which nobody reads
            # (the run streams it) and which has no size cap by default: a sandbox could fill the host's
            # disk past every limit it has (found by an outside attack). Capped; it goes with the container.
            "log_configuration": {"size": CONTAINER_LOG_BYTES},
            # storage
            "read_only_filesystem": True,
            "read_write_tmpfs": False,
            # An image's VOLUME would become a writable, disk-backed anonymous volume that the mount plan
            # does not list (Podman's default "anonymous"): not mounted at all; the path stays the image's.
            "image_volume_mode": "ignore",
            "mounts": [self._bind(b) for b in binds]
            + [self._tmpfs(t) for t in self.tmpfs],
            # security
            "user": self.user,
            "cap_drop": ["ALL"],
            "no_new_privileges": True,
            "seccomp_profile_path": self.seccomp_profile_path,
            "privileged": False,
            # network
            "netns": {"nsmode": self.network},
            # Podman shares the host's cgroup namespace on cgroups v1 unless asked.
            "cgroupns": {"nsmode": "private"},
            "use_image_resolve_conf": False,
            # resources
            "r_limits": [{"type": r.name, "soft": r.soft, "hard": r.hard} for r in self.rlimits],
            "resource_limits": self._resources(),
        }
        if self.volumes:
            spec["volumes"] = [self._volume(v) for v in self.volumes]
        if self.keep_id:
            uid, _, gid = self.user.partition(":")
            spec["userns"] = {"nsmode": "keep-id", "value": f"uid={uid},gid={gid}"}
        elif self.private_userns:
            # Both halves are needed over the API: the namespace mode, and the
            # storage id-mapping request that makes Podman pick a free range.
            spec["userns"] = {"nsmode": "auto"}
            spec["idmappings"] = {"AutoUserNs": True, "AutoUserNsOpts": {"Size": USERNS_SIZE}}
        if self.oci_runtime:
            spec["oci_runtime"] = self.oci_runtime
        if self.init_path:
            spec["init_path"] = self.init_path
        return spec

    @staticmethod
    def _bind(b: BindMount) -> dict[str, Any]:
        # "bind", not Podman's default "rbind": a filesystem mounted below the
        # source must not come along (it would keep its own rw/suid/dev).
        options = ["bind", "ro" if b.read_only else "rw", "nosuid", "nodev"]
        return {"type": "bind", "source": b.source, "destination": b.target, "options": options}

    @staticmethod
    def _tmpfs(t: TmpfsMount) -> dict[str, Any]:
        options = [f"size={t.size}", f"mode={t.mode}", "nosuid", "nodev"]
        if t.user_owned:
            options.append("U")
        if t.noexec:
            options.append("noexec")
        return {"type": "tmpfs", "source": "tmpfs", "destination": t.target, "options": options}

    @staticmethod
    def _volume(v: VolumeMount) -> dict[str, Any]:
        # "U": Podman chowns the volume to the sandbox user at every start.
        # Rootful, each sandbox gets a fresh id range (userns=auto), so files
        # the last session wrote belong to ids this one does not have.
        options = ["rw", "nosuid", "nodev", "U"]
        if v.noexec:
            options.append("noexec")
        return {"Name": v.name, "Dest": v.target, "Options": options}

    def _resources(self) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if self.memory is not None:
            # memory+swap equal to memory: the cap cannot be dodged by swapping.
            limits["memory"] = {"limit": self.memory, "swap": self.memory}
        if self.cpus is not None:
            limits["cpu"] = {"quota": int(self.cpus * CPU_PERIOD_US), "period": CPU_PERIOD_US}
        if self.pids is not None:
            limits["pids"] = {"limit": self.pids}
        return limits


def _not_exact_in(value: Any, where: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where in a JSON document a string (or a key) is not exact UTF-8 (audit/exact.py)."""
    if isinstance(value, str):
        return [] if exact.is_exact(value) else [where]
    if isinstance(value, dict):
        return [found for key, item in value.items()
                for found in ([(*where, key)] if not exact.is_exact(key) else []) + _not_exact_in(item, (*where, key))]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _not_exact_in(item, (*where, i))]
    return []
