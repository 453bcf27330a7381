"""The sandbox's PodSpec: the profile's promises in the fields Kubernetes has for them.

Field names and meanings are those of the core/v1 API (PodSpec, Container,
SecurityContext, PodSecurityContext, Volume) of Kubernetes KUBERNETES_VERSION.
What has no field is given another way, said here and in the header:

- pids and open files: no pod field exists (the kubelet's podPidsLimit is a
  node setting), so the command runs under `prlimit --nproc=N --nofile=N`
  (util-linux, in every Debian image). With `hostUsers: false` the pod's
  uids are its own on the node, so RLIMIT_NPROC counts only this pod's
  processes and threads, as the local run's rlimit does.
- memory is also the memory+swap cap locally: requests equal to limits make
  the pod Guaranteed, and the kubelet gives Guaranteed pods no swap.
- the environment: names the profile passes from the caller's environment
  (env.allow) come from a Secret (optional keys), never from the generating
  host's values; env.set values are written as given.
"""

from __future__ import annotations

import math
from typing import Any

from vectraguard.config.resolved import ResolvedProfile
from vectraguard.kube import names, quantities
from vectraguard.records import record
from vectraguard.sandbox.compile import (
    PROXY_VARIABLES,
    SANDBOX_HOME,
    SANDBOX_PATH,
    TMP_TARGET,
)

KUBERNETES_VERSION = "1.33.0"  # what the manifests are written and validated for (tests/test_kube_*.py)
SECCOMP_DIRECTORY = "vectraguard"  # the Localhost profiles' directory, under the kubelet's seccomp root
KUBELET_SECCOMP_ROOT = "/var/lib/kubelet/seccomp"  # the kubelet's default --seccomp-profile-root


@record
class WorkspaceSource:
    """Where the workspace comes from on the cluster (the caller's directory is not there)."""

    volume_claim: str | None = None  # a PersistentVolumeClaim's name
    config_map: str | None = None  # a ConfigMap's name (read-only files)


@record
class PodOptions:
    """What `kube generate` was told beyond the run options."""

    image: str
    session: str  # the session id (names the pod's emptyDir volumes)
    seccomp: str  # "localhost" (the shipped profile, installed on the nodes) | "runtime-default"
    runtime_class: str | None  # runtimeClassName, or None for the cluster's default
    workspace: WorkspaceSource
    env_secret: str  # the Secret env.allow names are read from
    host_path: bool  # the system policy names node directories for hostPath volumes (kube.host_path_roots)
    workdir: str | None = None  # --workdir
    proxy_url: str | None = None  # allowlist: the gateway, http://CLUSTER_IP:PORT


def literal(text: str) -> str:
    """`text` as the kubelet passes it on: it expands `$(NAME)` in a container's command, args and env
    values to the container's variables and reads `$$` as `$` (core/v1 Container.command), so each `$`
    is doubled; otherwise `rm '$(F)' /` with F=-rf would run `rm -rf /`, a command nobody judged."""
    return text.replace("$", "$$")


def seccomp_file(profile: ResolvedProfile) -> str:
    """The node-side file name of the profile's seccomp filter, as `kube seccomp` prints it: the shipped
    profile (resources.seccomp_path), its -noexec variant with noexec tmpfs (kept even where the tmpfs
    cannot be noexec: the stricter filter costs nothing), and -gvisor for isolation gvisor (the rules
    gVisor answers itself made allows: isolation/gvisor.for_gvisor)."""
    noexec = "-noexec" if profile.noexec_tmpfs else ""
    gvisor = "-gvisor" if profile.isolation == "gvisor" else ""
    return f"{profile.seccomp}{noexec}{gvisor}.json"


def pod_spec(profile: ResolvedProfile, argv: tuple[str, ...], options: PodOptions) -> dict[str, Any]:
    """The PodSpec (a dict in API field names) of one sandbox session."""
    uid, gid = (int(part) for part in profile.user.split(":"))
    seccomp: dict[str, str] = {"type": "RuntimeDefault"} if options.seccomp == "runtime-default" else {
        "type": "Localhost", "localhostProfile": f"{SECCOMP_DIRECTORY}/{seccomp_file(profile)}"}
    limits = profile.limits
    resources = {"cpu": quantities.cpu(limits.cpus), "memory": quantities.memory(limits.memory)}
    mounts, volumes = _volumes(profile, options)
    container: dict[str, Any] = {
        "name": names.CONTAINER,
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["prlimit", f"--nproc={limits.pids}", f"--nofile={limits.nofile}", "--",
                    *(literal(word) for word in argv)],
        "workingDir": options.workdir or (profile.workspace_target if profile.workspace_mode != "none"
                                          else SANDBOX_HOME),
        "env": _env(profile, options),
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": {
            "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": seccomp,
        },
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "hostUsers": False,
        # The pause process is then PID 1 and reaps orphans, as the local run's init does; the command
        # is not PID 1, so SIGTERM ends it unless it handles it (a PID 1 ignores unhandled signals).
        "shareProcessNamespace": True,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "activeDeadlineSeconds": max(1, math.ceil(limits.timeout)),
        "terminationGracePeriodSeconds": max(1, math.ceil(limits.kill_grace)),
        "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid, "fsGroup": gid,
                            "seccompProfile": seccomp},
        "containers": [container],
        "volumes": volumes,
    }
    if profile.network_mode != "full":
        # No resolver to ask: a lookup fails at once, whether or not the network plugin enforces the
        # NetworkPolicy that denies cluster DNS (names are the gateway's to resolve).
        spec["dnsPolicy"] = "None"
        spec["dnsConfig"] = {"nameservers": ["127.0.0.1"]}
    if options.runtime_class:
        spec["runtimeClassName"] = options.runtime_class
    return spec


def _env(profile: ResolvedProfile, options: PodOptions) -> list[dict[str, Any]]:
    """As compile.build_env orders it: the base, the passed names, the set values, the proxy."""
    env: dict[str, dict[str, Any]] = {}

    def put(name: str, value: str) -> None:
        env[name] = {"name": name, "value": literal(value)}

    for name, value in (("PATH", SANDBOX_PATH), ("HOME", SANDBOX_HOME), ("TERM", "dumb"), ("LANG", "C.UTF-8")):
        put(name, value)
    for name in profile.env_allow:
        if name not in PROXY_VARIABLES and name not in ("PATH", "HOME"):
            env[name] = {"name": name, "valueFrom": {"secretKeyRef": {
                "name": options.env_secret, "key": name, "optional": True}}}
    for name, value in profile.env_set.items():
        put(name, value)
    if options.proxy_url is not None:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(name, None)
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            put(name, options.proxy_url)
    return list(env.values())


def _volumes(profile: ResolvedProfile, options: PodOptions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # Named for the session: `podman kube play` makes an emptyDir a named Podman volume, shared by
    # every pod that uses the name (pkg/specgen/generate/kube/volume.go in Podman 4.3).
    tmp, home = f"tmp-{options.session}", f"home-{options.session}"
    mounts: list[dict[str, Any]] = [{"name": tmp, "mountPath": TMP_TARGET}, {"name": home, "mountPath": SANDBOX_HOME}]
    volumes: list[dict[str, Any]] = [
        {"name": tmp, "emptyDir": {"medium": "Memory", "sizeLimit": quantities.memory(profile.tmp_size)}},
        {"name": home, "emptyDir": {"medium": "Memory", "sizeLimit": quantities.memory(profile.home_size)}},
    ]
    if profile.workspace_mode != "none":
        writable = profile.workspace_mode == "rw"  # overlay arrives here only downgraded: read-only
        source = options.workspace
        volume: dict[str, Any] = {"name": "workspace"}
        if source.volume_claim is not None:
            volume["persistentVolumeClaim"] = {"claimName": source.volume_claim, "readOnly": not writable}
        else:
            assert source.config_map is not None and not writable  # generate.py checked
            volume["configMap"] = {"name": source.config_map, "defaultMode": 0o444}
        volumes.append(volume)
        mounts.append({"name": "workspace", "mountPath": profile.workspace_target, "readOnly": not writable})
        if writable and not profile.git_writable:
            # filesystem.git: read-only, as a local rw run mounts it (the kubelet creates .git if absent).
            mounts.append({"name": "workspace", "mountPath": f"{profile.workspace_target}/.git", "subPath": ".git",
                           "readOnly": True})
    if options.host_path:
        for index, mount in enumerate(m for m in profile.mounts if m.mode == "ro"):
            volumes.append({"name": f"mount-{index}", "hostPath": {"path": mount.source}})
            mounts.append({"name": f"mount-{index}", "mountPath": mount.target, "readOnly": True})
    return mounts, volumes

