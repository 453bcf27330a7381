"""The compiled ContainerSpec (sandbox/spec.py) as Docker Engine's container create body.

Docker Engine API v1.41 (docker.io 20.10), `POST /containers/create`:
ContainerConfig and HostConfig. The same promises as Podman's spec, in
Docker's terms, and where Docker has no term, said here:

- the command: the container runs `vectraguard-entry --await` (bind-mounted
  from the host, as for Podman), which waits for Vectra Guard's start after
  the started container has been checked; the run's command, environment and
  directory reach it in the command file (sandbox/entry.py). Docker cannot
  create and set up a container without starting its command.
- the backstop: Podman's conmon kills a container at the spec's backstop_timeout (the run's timeout,
  its kill grace and a margin) even when the `vectraguard` that runs it was killed; Docker has no
  such timeout, so the entry program does it: `--await SECONDS` runs the command as its child and
  exits at SECONDS after the start, which ends the container (contrib/entry/vectraguard-entry.c).
  The container itself is removed by the next run's reaper, as before.
- the init: the entry program itself is the container's PID 1 (`Init` false: no docker-init, tini,
  above it). Run as the sandbox's user, only as the namespace's init is it out of the sandbox's
  reach: the kernel delivers no SIGSTOP or SIGKILL to it from inside the namespace, nor a signal it
  has no handler for, so the command cannot stop its backstop with `kill -STOP $PPID`. It does
  tini's work as well: it reaps orphans, passes Docker's signals on, exits with the command.
- the user namespace: Docker has none per container; the daemon's
  userns-remap gives every container the daemon's one range (runtime.py
  refuses a daemon without it unless the profile says `engine.userns: shared`).
- bind mounts: read-only or not, not recursive (a mount below the source does
  not come along). Docker's API has no nosuid/nodev for binds: with
  no-new-privileges and no capabilities a setuid file grants nothing, and the
  devices cgroup Docker sets allows only its default devices to be opened.
- tmpfs: size-capped, nosuid, nodev (and noexec where asked); $HOME belongs to
  the sandbox user (uid=, gid= of the profile's user).
- resources: memory and memory+swap equal (no swap past the cap), NanoCpus,
  PidsLimit, ulimits within the caller's hard limits (compile.py), an init
  (the entry program, above), a private cgroup and IPC namespace.
- seccomp: the shipped profile's JSON itself, in SecurityOpt (Docker reads
  the profile from the request, not from a path).
- masked and read-only kernel paths: at least Podman's lists (its defaults,
  containers/common 0.50: MASKED_PATHS, READONLY_PATHS) and Docker's own
  (/proc/asound masked), sent explicitly since a list in HostConfig replaces
  Docker's; and the cgroup file systems read-only, which a remapped Docker
  leaves writable (moby daemon/oci_linux.go clears their `ro` under
  userns-remap; runc then remounts each path listed read-only).
- /etc/resolv.conf: with no network, an empty file of ours (Docker would
  copy the host's nameservers in, as Podman does not); with the bridge,
  Docker's.
- an image's VOLUME: a read-only, empty, size-capped tmpfs at each path
  (`image_volumes`, from the image's config), so Docker makes no writable
  anonymous volume outside the mount plan (Docker has no way to ignore
  them; a mount at the same place replaces the volume).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vectraguard.sandbox.entry import ENTRY_TARGET, RUN_DIR_TARGET
from vectraguard.sandbox.spec import (
    CONTAINER_LOG_BYTES,
    BindMount,
    ContainerSpec,
    TmpfsMount,
)

NANO = 1_000_000_000
# Podman's (containers/common pkg/config: DefaultMaskedPaths, DefaultReadOnlyPaths, as `podman run` gives
# them here: the OCI config's maskedPaths and readonlyPaths) with Docker's /proc/asound masked as well.
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/fs/selinux", "/sys/dev/block")
READONLY_PATHS = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
CGROUP_ROOT = "/sys/fs/cgroup"
RESOLV_CONF = "/etc/resolv.conf"
IMAGE_VOLUME_BYTES = 4096  # the read-only tmpfs over an image's VOLUME: empty, and it cannot grow


def create_body(spec: ContainerSpec, *, hosts_file: str, run_dir: str, resolv_file: str,
                image_volumes: tuple[str, ...] = (), cgroup_mounts: tuple[str, ...] = (),
                seccomp: str | None = None) -> dict[str, Any]:
    """The create body for `spec`; `hosts_file` is mounted at /etc/hosts, `run_dir` (the command file's
    directory) at RUN_DIR_TARGET, `resolv_file` (an empty file) at /etc/resolv.conf when the spec has no
    network. `image_volumes`: the image's VOLUME paths (each covered read-only, unless the spec mounts
    something there itself); `cgroup_mounts`: the cgroup mount points below /sys/fs/cgroup in a container
    (cgroup v1: one per hierarchy, as on the host; all made read-only, with /sys/fs/cgroup itself);
    `seccomp`: what SecurityOpt says of the profile (default: its JSON, which Docker needs; the record
    gives its path and digest instead). The caller has refused what Docker cannot give (runtime/docker/
    admit.py); ValueError for what would still reach here: no entry program, or a named volume."""
    if spec.entry_path is None:
        raise ValueError("Docker Engine runs sandboxes through vectraguard-entry, which is not installed")
    if spec.volumes:
        raise ValueError("named volumes (an agent's kept $HOME) are not given on Docker Engine in this version")
    binds = [*spec.binds, BindMount(hosts_file, "/etc/hosts", True), BindMount(spec.entry_path, ENTRY_TARGET, True),
             BindMount(run_dir, RUN_DIR_TARGET, True)]
    if spec.network == "none":
        binds.append(BindMount(resolv_file, RESOLV_CONF, True))
    taken = {b.target for b in binds} | {t.target for t in spec.tmpfs}
    host_config: dict[str, Any] = {
        "Init": False,  # the entry program is PID 1 (above); docker-init would leave it stoppable
        "ReadonlyRootfs": True,
        "Mounts": [_bind(b) for b in binds] + [_covered(path) for path in image_volumes if path not in taken],
        "Tmpfs": {t.target: _tmpfs_options(t, spec.user) for t in spec.tmpfs},
        "MaskedPaths": list(MASKED_PATHS),
        "ReadonlyPaths": [*READONLY_PATHS, CGROUP_ROOT, *cgroup_mounts],
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true",
                        f"seccomp={Path(spec.seccomp_profile_path).read_text() if seccomp is None else seccomp}"],
        "Privileged": False,
        "NetworkMode": "none" if spec.network == "none" else "bridge",
        "CgroupnsMode": "private",
        "IpcMode": "private",
        "Ulimits": [{"Name": r.name, "Soft": r.soft, "Hard": r.hard} for r in spec.rlimits],
        "AutoRemove": False,
        # The container log has no size cap by default (spec.py CONTAINER_LOG_BYTES says why it needs one).
        "LogConfig": {"Type": "json-file", "Config": {"max-size": str(CONTAINER_LOG_BYTES), "max-file": "1"}},
    }
    if spec.memory is not None:
        host_config["Memory"] = host_config["MemorySwap"] = spec.memory
    if spec.cpus is not None:
        host_config["NanoCpus"] = int(spec.cpus * NANO)
    if spec.pids is not None:
        host_config["PidsLimit"] = spec.pids
    return {
        "Image": spec.image,
        "Entrypoint": [ENTRY_TARGET],
        "Cmd": ["--await", str(spec.backstop_timeout)],
        # Never the run's: Docker would create a missing one, in the container or in a mount (the host's
        # workspace). The entry program changes into the run's, from its command file (runtime.py checks first).
        "WorkingDir": "/",
        # The entry program's own environment, under the run's: as Podman gives `container=podman`, the
        # convention systemd and others read (nothing of the host).
        "Env": ["container=docker"],
        "Labels": dict(spec.labels),
        "Hostname": spec.hostname,
        "User": spec.user,
        "AttachStdin": True,
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": spec.terminal,
        "StopTimeout": spec.stop_grace,
        # An image's HEALTHCHECK would have Docker run its command inside the sandbox, unjudged and
        # unrecorded, every interval (Podman's API run of ours has none): never.
        "Healthcheck": {"Test": ["NONE"]},
        "HostConfig": host_config,
    }


def _bind(b: BindMount) -> dict[str, Any]:
    return {"Type": "bind", "Source": b.source, "Target": b.target, "ReadOnly": b.read_only,
            "BindOptions": {"Propagation": "rprivate", "NonRecursive": True}}


def _covered(path: str) -> dict[str, Any]:
    """An image VOLUME's path, covered by an empty read-only tmpfs: Docker then makes no volume there."""
    return {"Type": "tmpfs", "Target": path, "ReadOnly": True,
            "TmpfsOptions": {"SizeBytes": IMAGE_VOLUME_BYTES, "Mode": 0o755}}


def _tmpfs_options(t: TmpfsMount, user: str) -> str:
    # Docker's tmpfs is noexec unless told otherwise (its default options): said either way.
    options = ["rw", "nosuid", "nodev", "noexec" if t.noexec else "exec", f"size={t.size}", f"mode={t.mode}"]
    if t.user_owned:
        uid, _, gid = user.partition(":")
        options += [f"uid={uid}", f"gid={gid or uid}"]
    return ",".join(options)
