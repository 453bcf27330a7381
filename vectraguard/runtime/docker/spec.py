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
  kills it at SECONDS after the start, which ends the container (contrib/entry/vectraguard-entry.c).
  The container itself is removed by the next run's reaper, as before.
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
  (Docker's docker-init, tini), a private cgroup and IPC namespace.
- seccomp: the shipped profile's JSON itself, in SecurityOpt (Docker reads
  the profile from the request, not from a path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vectraguard.sandbox import entry
from vectraguard.sandbox.entry import ENTRY_TARGET, RUN_DIR_TARGET
from vectraguard.sandbox.spec import BindMount, ContainerSpec, TmpfsMount

NANO = 1_000_000_000


def create_body(spec: ContainerSpec, *, hosts_file: str, run_dir: str) -> dict[str, Any]:
    """The create body for `spec`; `hosts_file` is mounted at /etc/hosts, `run_dir` (the command file's
    directory) at RUN_DIR_TARGET. ValueError when the spec has no entry program (Docker needs it) or a
    volume (named volumes are Podman's: agent homes run on Podman in this version)."""
    if spec.entry_path is None:
        raise ValueError("Docker Engine runs sandboxes through vectraguard-entry, which is not installed")
    if entry.BACKSTOP_PROTOCOL not in Path(spec.entry_path).read_bytes():
        raise ValueError("the installed vectraguard-entry predates `--await SECONDS` (the backstop), which Docker "
                         "Engine runs need")
    if spec.volumes:
        raise ValueError("named volumes (an agent's kept $HOME) are not given on Docker Engine in this version")
    binds = [*spec.binds, BindMount(hosts_file, "/etc/hosts", True), BindMount(spec.entry_path, ENTRY_TARGET, True),
             BindMount(run_dir, RUN_DIR_TARGET, True)]
    host_config: dict[str, Any] = {
        "Init": True,
        "ReadonlyRootfs": True,
        "Mounts": [_bind(b) for b in binds],
        "Tmpfs": {t.target: _tmpfs_options(t, spec.user) for t in spec.tmpfs},
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true", f"seccomp={Path(spec.seccomp_profile_path).read_text()}"],
        "Privileged": False,
        "NetworkMode": "none" if spec.network == "none" else "bridge",
        "CgroupnsMode": "private",
        "IpcMode": "private",
        "Ulimits": [{"Name": r.name, "Soft": r.soft, "Hard": r.hard} for r in spec.rlimits],
        "AutoRemove": False,
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
        "WorkingDir": spec.workdir,
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


def _tmpfs_options(t: TmpfsMount, user: str) -> str:
    # Docker's tmpfs is noexec unless told otherwise (its default options): said either way.
    options = ["rw", "nosuid", "nodev", "noexec" if t.noexec else "exec", f"size={t.size}", f"mode={t.mode}"]
    if t.user_owned:
        uid, _, gid = user.partition(":")
        options += [f"uid={uid}", f"gid={gid or uid}"]
    return ",".join(options)
