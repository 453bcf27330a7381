"""Running a Kubernetes Pod YAML with `podman kube play` (rootful), to the end.

`play(yaml_text)` plays one Pod, waits until its `sandbox` container has
exited, and returns that container's exit code and logs; the pod, its
containers and the emptyDir volumes are removed afterwards, also when
something fails. What Podman 4.3 needs for that, found by experiment:

* catatonit: with no infra_image configured, Podman builds the pod's pause
  image locally from /usr/bin/catatonit (no registry is reachable here);
* open-file and process limits within the caller's hard limits: the infra
  container gets containers.conf's default_ulimits, else nofile and nproc
  1048576, and runc cannot raise a hard limit without CAP_SYS_RESOURCE
  ("error setting rlimit type 7: operation not permitted"). `kube play` has
  no --ulimit option, so a private containers.conf (CONTAINERS_CONF) sets
  default_ulimits to the caller's hard limits;
* unique names: the pod's metadata.name and its emptyDir volumes' names are
  suffixed per call. Podman 4.3 makes an emptyDir a Podman volume named
  after the volume (pkg/specgen/generate/kube/volume.go:237 at v4.3.1), so
  two pods whose emptyDirs share a name share their contents.

Nothing is mocked: real Podman, real containers.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

CONTAINER = "sandbox"  # the one container of a Vectra Guard Pod
DEADLINE_S = 120.0
POLL_S = 0.1
PODMAN_DEFAULT_RLIMIT = 1048576  # libpod/define RLimitDefaultValue


@dataclass(frozen=True)
class Played:
    """One Pod played to the end (or refused by `kube play`).

    exit_code is None when `kube play` failed (see play_rc / play_output);
    stdout and stderr are the sandbox container's logs.
    """

    pod: str
    container: str
    play_rc: int
    play_output: str
    exit_code: int | None
    stdout: str
    stderr: str
    inspect: dict[str, Any]


# One line per property, KEY=VALUE. python3 opens an AF_ALG socket: the strict
# profile refuses it with EPERM (1) before the kernel looks; under Podman's
# default profile the kernel answers (here 97, EAFNOSUPPORT; 0 where it has AF_ALG).
# The script must not start with a newline or a space: Podman 4.3 re-encodes
# each document with yaml.v3 and reads it back with yaml.v2, which misreads
# v3's block scalar with an indentation indicator ("did not find expected '-'
# indicator"; play.go:925-950 at v4.3.1).
POSTURE = r"""echo uid=$(id -u); echo gid=$(id -g)
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status | sed 's/:[[:space:]]*/=/'
if touch /workspace/rootfs-probe 2>/dev/null; then echo rootwrite=ok; else echo rootwrite=refused; fi
echo rootmount=$(awk '$2 == "/" {split($4, o, ","); print o[1]}' /proc/mounts)
echo nofile=$(awk '/^Max open files/ {print $4}' /proc/self/limits)
echo nproc=$(awk '/^Max processes/ {print $3}' /proc/self/limits)
if [ -e /sys/fs/cgroup/memory.max ]; then
  echo memory=$(cat /sys/fs/cgroup/memory.max); echo cpu=$(cat /sys/fs/cgroup/cpu.max | tr ' ' /)
else
  echo memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
  echo cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
fi
echo uidmap=$(head -n1 /proc/self/uid_map | tr -s ' ' | sed 's/^ //; s/ /:/g')
for d in /tmp /home/sandbox; do if touch $d/probe 2>/dev/null; then echo write$d=ok; else echo write$d=refused; fi; done
echo tmpfs=$(awk '$2 == "/tmp" {print $3}' /proc/mounts)
echo af_alg=$(python3 -c 'import socket
try:
    socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET); print("ok")
except OSError as e:
    print(e.errno)')
"""



def posture(played: Played) -> dict[str, str]:
    assert played.play_rc == 0, played.play_output
    assert played.exit_code == 0, f"exit {played.exit_code}: {played.stdout}{played.stderr}"
    return dict(line.split("=", 1) for line in played.stdout.splitlines() if "=" in line)


def kubelet_expansion(text: str, env: dict[str, str]) -> str:
    """What the kubelet runs for a command word or env value (k8s.io/kubernetes third_party/forked/golang/
    expansion: `$$` is `$`, `$(NAME)` a defined variable's value, anything else as written)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and ")" in text[i:]:
            end = text.index(")", i)
            out.append(env.get(text[i + 2:end], text[i:end + 1]))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def as_the_kubelet_runs(yaml_text: str) -> str:
    """The documents with each container's env values, command and args expanded as the kubelet expands
    them (Podman 4.3's kube play passes them as written), as JSON (which is YAML)."""
    yaml = YAML(typ="safe", pure=True)
    documents = [doc for doc in yaml.load_all(yaml_text) if doc is not None]
    for document in documents:
        if document.get("kind") != "Pod":
            continue
        for container in document["spec"]["containers"]:
            env: dict[str, str] = {}
            for variable in container.get("env") or []:
                if "value" in variable:
                    variable["value"] = env[variable["name"]] = kubelet_expansion(variable["value"], env)
            for key in ("command", "args"):
                if key in container:
                    container[key] = [kubelet_expansion(word, env) for word in container[key]]
    return "---\n".join(json.dumps(doc, indent=1) + "\n" for doc in documents)


def require_kube_play() -> None:
    """Skip the calling test unless rootful `podman kube play` can run here."""
    if os.geteuid() != 0:
        pytest.skip("podman kube play tests run rootful: not root")
    for tool in ("podman", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: podman kube play needs it (contrib/test.sh installs it)")


def play(yaml_text: str, *, extra_args: Sequence[str] = (), deadline_s: float = DEADLINE_S) -> Played:
    """Play the Pod in yaml_text rootful, wait for its sandbox container to exit, tear down.

    extra_args go to `podman kube play` (e.g. ["--seccomp-profile-root", DIR]).
    Raises AssertionError when the container has not exited within deadline_s.
    """
    require_kube_play()
    documents, pod, volumes = _unique(yaml_text)
    container = f"{pod}-{CONTAINER}"
    work = Path(tempfile.mkdtemp(prefix="vg-kube-play-"))
    try:
        yaml_file = work / "pod.yaml"
        yaml_file.write_text(documents)
        conf = work / "containers.conf"
        conf.write_text(_containers_conf())
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        with _torn_down(pod, volumes, yaml_file, env):
            played = _podman(["kube", "play", *extra_args, str(yaml_file)], env)
            output = played.stdout + played.stderr
            if played.returncode != 0:
                return Played(pod, container, played.returncode, output, None, "", "", {})
            exit_code = _wait_exited(container, env, deadline_s)
            logs = subprocess.run(["podman", "logs", container], capture_output=True, text=True,
                                  env=env, timeout=60, check=False)
            inspect = _inspect(container, env)
            return Played(pod, container, 0, output, exit_code, logs.stdout, logs.stderr, inspect)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def hard_limit(which: int) -> int:
    """The caller's hard limit, capped to Podman's default (unlimited counts as that)."""
    hard = resource.getrlimit(which)[1]
    return PODMAN_DEFAULT_RLIMIT if hard == resource.RLIM_INFINITY else min(hard, PODMAN_DEFAULT_RLIMIT)


def _containers_conf() -> str:
    nofile = hard_limit(resource.RLIMIT_NOFILE)
    # Measured on Debian 12 / Podman 4.3.1 / runc: conmon (and so runc) runs with a hard
    # nproc of kernel.pid_max (32768) although its caller's was 96549, and
    # nproc=32769 fails with "error setting rlimit type 6". Cause not found; capped.
    nproc = min(hard_limit(resource.RLIMIT_NPROC), int(Path("/proc/sys/kernel/pid_max").read_text()))
    return f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'


def _unique(yaml_text: str) -> tuple[str, str, list[str]]:
    """The documents with the Pod's name and emptyDir names suffixed; the pod's and
    the emptyDirs' new names."""
    yaml = YAML(typ="safe", pure=True)
    documents = [doc for doc in yaml.load_all(yaml_text) if doc is not None]
    pods = [doc for doc in documents if doc.get("kind") == "Pod"]
    assert len(pods) == 1, f"expected one Pod document, found {len(pods)}"
    suffix = secrets.token_hex(4)
    pod = pods[0]
    name = f"{pod['metadata']['name']}-{suffix}"
    pod["metadata"]["name"] = name
    renamed = {}
    for volume in pod["spec"].get("volumes") or []:
        if "emptyDir" in volume:
            renamed[volume["name"]] = volume["name"] = f"{volume['name']}-{suffix}"
    for container in pod["spec"]["containers"]:
        for mount in container.get("volumeMounts") or []:
            mount["name"] = renamed.get(mount["name"], mount["name"])
    # Written back as JSON, which is YAML: Podman's YAML parser (go-yaml v2) misreads
    # some of what a YAML dumper writes, e.g. a "--" item in a block sequence.
    text = "---\n".join(json.dumps(doc, indent=1) + "\n" for doc in documents)
    return text, name, list(renamed.values())


@contextmanager
def _torn_down(pod: str, volumes: list[str], yaml_file: Path, env: dict[str, str]) -> Iterator[None]:
    try:
        yield
    finally:
        # `kube down` removes the pod; `pod rm` catches a pod `kube play` left
        # half-made. The emptyDir volumes are removed by name: measured, some
        # outlive both (a container that never started keeps its anonymous volumes).
        _podman(["kube", "down", str(yaml_file)], env)
        _podman(["pod", "rm", "--force", "--ignore", pod], env)
        for volume in volumes:
            _podman(["volume", "rm", "--force", volume], env)
        assert _podman(["pod", "exists", pod], env).returncode != 0, f"pod {pod} was not removed"
        left = [v for v in volumes if _podman(["volume", "exists", v], env).returncode == 0]
        assert not left, f"volumes {left} were not removed"


def _wait_exited(container: str, env: dict[str, str], deadline_s: float) -> int:
    deadline = time.monotonic() + deadline_s
    while True:
        state = _inspect(container, env).get("State", {})
        if state.get("Status") == "exited":
            return int(state["ExitCode"])
        assert time.monotonic() < deadline, f"{container} did not exit within {deadline_s:g}s: {state}"
        time.sleep(POLL_S)


def _inspect(container: str, env: dict[str, str]) -> dict[str, Any]:
    result = _podman(["container", "inspect", container], env)
    if result.returncode != 0:
        return {}
    parsed = json.loads(result.stdout)
    return parsed[0] if parsed else {}


def _podman(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)
