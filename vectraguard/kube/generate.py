"""From a resolved, judged profile and a command to the manifests of one session.

Pure: no I/O and no clock but what the caller passes (`now` for the agent-
sandbox format's shutdown time), so tests read exactly what a user gets.
Formats (`--format`):

- `pod`: a core/v1 Pod.
- `job`: a batch/v1 Job (one try, its deadline, removed an hour after it ends).
- `agent-sandbox`: a `Sandbox` of kubernetes-sigs/agent-sandbox, API
  agents.x-k8s.io/v1beta1, whose `spec.podTemplate` {metadata, spec} holds
  the same PodSpec and whose `shutdownTime` / `shutdownPolicy: Delete`
  (api/v1beta1/sandbox_types.go: SandboxSpec, Lifecycle; the project's
  storage version since v0.5) end it at the profile's timeout.

Then the session's NetworkPolicy, and for `allowlist` the gateway's Service,
Deployment and NetworkPolicy (network.py).
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import shlex
from typing import Any

from vectraguard import __version__, errors, records, units
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.kube import differences, names, network, paths, pod, references

JOB_TTL_SECONDS = 3600  # a finished Job and its pod are removed after this (its logs with them)
AGENT_SANDBOX_API = "agents.x-k8s.io/v1beta1"


@records.record
class Request:
    """One `kube generate`."""

    profile: ResolvedProfile
    digest: str  # the resolved profile's (config/resolved.digest)
    argv: tuple[str, ...]
    session: str
    format: str
    pod: pod.PodOptions
    downgrade: frozenset[str]
    gateway_image: str | None
    gateway_ip: str | None
    now: datetime.datetime  # UTC; only the agent-sandbox format's shutdownTime uses it
    policy: Any = None  # config.policy.Policy | None: the system policy (kube.*, filesystem.*, security.*)
    files_run: tuple[str, ...] = ()  # the files the command runs (approvals/script_files.py), as named


@records.record
class Generated:
    documents: tuple[dict[str, Any], ...]
    header: tuple[str, ...]  # comment lines: what differs from a local run, what the cluster must have
    downgraded: tuple[str, ...]  # the --downgrade names this profile needed


def generate(request: Request) -> Generated:
    """UsageError (exit 125) for what Kubernetes cannot give unless downgraded,
    and for options this profile needs and lacks."""
    profile = request.profile
    found = differences.find(profile, host_path=request.pod.host_path)
    differences.refuse_unaccepted(found, request.downgrade, profile)
    _check_workspace(profile, request.pod.workspace)
    _check_ids(profile)
    taken: set[str] = set()
    if profile.workspace_mode != "none":
        paths.check_target(profile.workspace_target,
                           profile.provenance.get("filesystem.workspace.target", Origin("<profile>")),
                           "filesystem.workspace.target", taken)
    if request.pod.host_path:
        paths.check_host_paths([m for m in profile.mounts if m.mode == "ro"], request.policy, taken)
    proxy_url = None
    if profile.network_mode == "allowlist":
        _check_gateway(request)
        if request.gateway_image is None:
            from vectraguard.images.gateway_image import gateway_ref

            request = records.replace(request, gateway_image=gateway_ref())
        assert request.gateway_ip is not None
        host = f"[{request.gateway_ip}]" if ":" in request.gateway_ip else request.gateway_ip
        proxy_url = f"http://{host}:{names.GATEWAY_PORT}"
    options = records.replace(request.pod, proxy_url=proxy_url, runtime_class=_runtime_class(request))
    _check_seccomp(request)
    spec = pod.pod_spec(profile, request.argv, options)
    session, digest = request.session, request.digest
    metadata = {"labels": names.labels(session, profile.name, digest),
                "annotations": names.annotations_of(profile.name)}
    pod_metadata = {"labels": names.labels(session, profile.name, digest, names.SANDBOX_ROLE),
                    "annotations": names.annotations_of(profile.name)}
    documents: list[dict[str, Any]] = [_workload(request, metadata, pod_metadata, spec),
                                       network.sandbox_policy(session, profile.network_mode, metadata,
                                                              request.gateway_ip)]
    if profile.network_mode == "allowlist":
        assert request.gateway_image is not None and request.gateway_ip is not None
        gateway_metadata = {"labels": names.labels(session, profile.name, digest, names.GATEWAY_ROLE),
                            "annotations": names.annotations_of(profile.name)}
        documents += [
            network.gateway_service(session, metadata, request.gateway_ip),
            network.gateway_deployment(session, metadata, gateway_metadata, spec, image=request.gateway_image,
                                       digest=digest, allow=profile.network_allow,
                                       max_connections=profile.network_max_connections,
                                       ipv6=":" in request.gateway_ip),
            network.gateway_policy(session, metadata),
        ]
    for option, image in (("the image", options.image), ("--gateway-image", request.gateway_image)):
        if image is not None:
            references.check(image, option)
    _check_text(documents)
    accepted = [d for d in found if d.name in request.downgrade]
    return Generated(tuple(documents), _header(request, options, accepted), tuple(d.name for d in accepted))


def _runtime_class(request: Request) -> str | None:
    """runtimeClassName: for isolation gvisor the cluster's gVisor RuntimeClass (the policy's
    kube.gvisor_runtime_class, else `gvisor`, the name gVisor's own documentation installs, handler
    runsc); `--runtime-class` names another, unless the policy sets a minimum isolation level: then
    the class that gives it is the administrator's to name, not the caller's (a name is all a
    manifest has, and `runc` would pass for gVisor)."""
    profile, named = request.profile, request.pod.runtime_class
    policy = request.policy
    if named is not None and policy is not None and (policy.get("security.isolation_minimum") is not None
                                                     or policy.get("security.isolation_minimum_for")):
        raise errors.PolicyError(
            f"vectraguard kube generate: --runtime-class {named}: the system policy sets a minimum isolation "
            f"level, so the RuntimeClass is not the caller's to choose; nothing was generated; refused by "
            f"{policy.rule('security.isolation_minimum')}",
            hint="leave --runtime-class out; the administrator names the cluster's gVisor RuntimeClass with "
                 "kube.gvisor_runtime_class")
    if named is not None:
        return named
    if profile.isolation == "gvisor":
        configured = policy.get("kube.gvisor_runtime_class") if policy is not None else None
        return str(configured) if configured else "gvisor"
    return None


def _check_seccomp(request: Request) -> None:
    """--seccomp runtime-default is weaker than every shipped profile: where the system policy names the
    profiles it allows (security.seccomp), it is not one of them."""
    policy = request.policy
    if request.pod.seccomp == "runtime-default" and policy is not None and policy.get("security.seccomp"):
        raise errors.PolicyError(
            "vectraguard kube generate: --seccomp runtime-default: the container runtime's default profile is "
            f"not one the system policy allows ({', '.join(policy.get('security.seccomp'))}); nothing was "
            f"generated; refused by {policy.rule('security.seccomp')}",
            hint="leave --seccomp out: the profile's own filter is installed on the nodes (kube seccomp)")


def _check_ids(profile: ResolvedProfile) -> None:
    """With hostUsers: false a pod's user namespace maps ids 0-65535 (KEP-127): runAsUser/runAsGroup above
    that cannot run (and the API server refuses ids above 2147483647 in any pod)."""
    uid, gid = (int(part) for part in profile.user.split(":"))
    if uid > 65535 or gid > 65535:
        origin = profile.provenance.get("security.user")
        raise errors.PolicyError(
            f"vectraguard kube generate: {origin or '<profile>'}: security.user: {profile.user}: a pod in a user "
            "namespace of its own (hostUsers: false) has the ids 0-65535 only; nothing was generated",
            hint="a uid and gid of 1 to 65535")


def _workload(request: Request, metadata: dict[str, Any], pod_metadata: dict[str, Any],
              spec: dict[str, Any]) -> dict[str, Any]:
    name = names.sandbox_name(request.session)
    if request.format == "pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **pod_metadata}, "spec": spec}
    if request.format == "job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, **metadata},
                "spec": {"backoffLimit": 0, "activeDeadlineSeconds": spec["activeDeadlineSeconds"],
                         "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
                         "template": {"metadata": pod_metadata, "spec": spec}}}
    shutdown = request.now + datetime.timedelta(seconds=math.ceil(request.profile.limits.timeout))
    return {"apiVersion": AGENT_SANDBOX_API, "kind": "Sandbox", "metadata": {"name": name, **metadata},
            "spec": {"podTemplate": {"metadata": pod_metadata, "spec": spec},
                     "shutdownTime": shutdown.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "shutdownPolicy": "Delete"}}


def _check_workspace(profile: ResolvedProfile, source: pod.WorkspaceSource) -> None:
    mode = profile.workspace_mode
    if mode == "none":
        return
    if source.volume_claim is None and source.config_map is None:
        raise errors.UsageError(
            f"vectraguard kube generate: profile {profile.name!r} mounts the workspace ({mode}), and this "
            "directory is not on the cluster; nothing was generated",
            hint="name its volume: --volume-claim NAME (a PersistentVolumeClaim), --config-map NAME (read-only "
                 "files), or --workspace none")
    if mode == "rw" and source.volume_claim is None:
        raise errors.UsageError(
            f"vectraguard kube generate: profile {profile.name!r} mounts the workspace read-write, and a ConfigMap "
            "volume is read-only; nothing was generated",
            hint="--volume-claim NAME for a writable workspace, or --workspace ro")


def _check_gateway(request: Request) -> None:
    if not request.profile.network_allow:
        raise errors.UsageError(
            f"vectraguard kube generate: profile {request.profile.name!r} has network allowlist with no entries: "
            "its gateway would allow nothing; nothing was generated",
            hint="give network.allow entries (or --allow HOST), or use --network none")
    if request.gateway_ip is None:
        raise errors.UsageError(
            "vectraguard kube generate: network allowlist goes through an egress gateway at a fixed cluster IP, "
            "so that the sandbox needs no DNS; nothing was generated",
            hint="--gateway-ip ADDRESS: an unused address of the cluster's Service range (kubeadm's default "
                 "range is 10.96.0.0/12)")


def check_gateway_ip(text: str) -> str:
    """An IPv4 or IPv6 address (argparse type); ValueError otherwise."""
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None or address.is_loopback or address.is_unspecified or address.is_multicast \
            or address.is_link_local or address.is_reserved:
        raise ValueError(f"{text} cannot be a Service's cluster IP")
    return str(address)


def _header(request: Request, options: pod.PodOptions, accepted: list[differences.Difference]) -> tuple[str, ...]:
    profile = request.profile
    lines = [
        (f"Generated by vectraguard {__version__} (kube generate --format {request.format}) for Kubernetes "
         f"{pod.KUBERNETES_VERSION}."),
        f"session {request.session}; profile {profile.name} (sha256 {request.digest})",
        f"command: {shlex.join(request.argv)}",
        "",
        "Differences from a local run of this profile:",
    ]
    for difference in accepted:
        lines.append(f"- {difference.setting}: {difference.value}: {difference.instead} "
                     f"(accepted with --downgrade {difference.name})")
    lines += [f"- {note}" for note in _notes(request, options)]
    lines += ["", "Before applying (docs/kubernetes.md):"]
    lines += [f"- {step}" for step in _steps(request, options)]
    return tuple(lines)


def _notes(request: Request, options: pod.PodOptions) -> list[str]:
    profile = request.profile
    limits = profile.limits
    notes = [
        (f"pids {limits.pids} and open files {limits.nofile}: RLIMIT_NPROC and RLIMIT_NOFILE set by prlimit before "
         "the command (no pod field exists); the cgroup pids limit is the kubelet's podPidsLimit, a node setting."),
        ("hostUsers: false needs user namespaces on the nodes (Kubernetes 1.33+ enables them by default); an API "
         "server without the feature drops the field and the pod runs in the host's user namespace: check "
         "`kubectl get pod NAME -o jsonpath='{.spec.hostUsers}'` prints false."),
        (f"timeout {units.format_duration(limits.timeout)}: activeDeadlineSeconds, counted from the pod's "
         "acceptance by the kubelet, so scheduling and the image pull count too (locally the command's start)."),
        ("the init: the pod's processes share one PID namespace (shareProcessNamespace), so the pod's pause "
         "process is PID 1 and reaps orphans, as the local run's init does; the command gets SIGTERM, then "
         "SIGKILL after the kill grace."),
        "output is not filtered for terminal escape sequences: `kubectl logs` shows the raw bytes.",
    ]
    mode = profile.network_mode
    if mode == "none":
        notes.append("network none: a NetworkPolicy denies all ingress and egress (DNS too); the pod still has an "
                     "interface, and the policy holds only where the network plugin enforces NetworkPolicy.")
    elif mode == "allowlist":
        notes.append(f"network allowlist: only through the gateway at {options.proxy_url} (HTTP(S)_PROXY); "
                     "no per-host forwarders, so tools that ignore proxy variables reach nothing; no DNS for "
                     "the sandbox. NetworkPolicy must be enforced by the network plugin.")
        private = _private_entries(profile.network_allow)
        if private:
            notes.append(f"network.allow {', '.join(private)}: private addresses; on a cluster they may also be "
                         "its pod and Service ranges and its API server, which the gateway then reaches.")
    else:
        notes.append("network full: egress anywhere the cluster routes, the cluster's own Services included.")
    if options.seccomp == "runtime-default":
        notes.append("seccomp: the container runtime's default profile (--seccomp runtime-default), weaker than "
                     f"Vectra Guard's {profile.seccomp} profile.")
    if options.runtime_class:
        named = (" named with --runtime-class: it must be a RuntimeClass that gives this isolation (for gvisor, "
                 "handler runsc); nothing here can check that" if request.pod.runtime_class else
                 ": a RuntimeClass of that name must exist")
        notes.append(f"isolation {profile.isolation}: runtimeClassName {options.runtime_class}{named}.")
    if profile.isolation == "gvisor" and options.seccomp == "localhost":
        notes.append("gVisor applies the pod's seccomp profile only with oci-seccomp set in the nodes' runsc "
                     "configuration; without it, gVisor's own system call surface stands in for it.")
    if profile.workspace_mode == "rw":
        notes.append("workspace rw: writes reach the volume claim directly; no run reports changes to "
                     "filesystem.protected paths afterwards" +
                     ("" if profile.git_writable else "; .git is mounted read-only") + ".")
    if profile.env_allow:
        notes.append(f"env.allow ({', '.join(profile.env_allow)}): read from the Secret {options.env_secret} "
                     "(optional keys), not from this host's environment.")
    if profile.env_set:
        notes.append("env.set values (and --env NAME=VALUE) are written in this file as given ('$' doubled, "
                     "as the kubelet reads it).")
    if request.files_run:
        notes.append(f"the command runs {', '.join(request.files_run)}: judged as this host's files are now; "
                     "the cluster runs the volume's, which nothing here has read.")
    for port in profile.network_publish:
        host_port, _, inner = port.rpartition(":")
        notes.append(f"network.publish {port}: `kubectl port-forward pod/{names.sandbox_name(request.session)} "
                     f"{host_port.rpartition(':')[2]}:{inner}` reaches the same port on the pod's loopback.")
    if profile.pool:
        notes.append("pool: a local warm pool; on a cluster, an agent-sandbox SandboxWarmPool (docs/kubernetes.md).")
    return notes


def _steps(request: Request, options: pod.PodOptions) -> list[str]:
    steps = [(f"the image {options.image} must be pullable by the nodes (push it to your registry; "
              "pin it by digest with --image REF@sha256:...).")]
    if options.seccomp == "localhost":
        name = pod.seccomp_file(request.profile)
        steps.append(f"install Vectra Guard's seccomp profile on every node as "
                     f"{pod.KUBELET_SECCOMP_ROOT}/{pod.SECCOMP_DIRECTORY}/{name} (`vectraguard kube seccomp "
                     f"{request.profile.seccomp}{' --noexec' if request.profile.noexec_tmpfs else ''}"
                     f"{' --gvisor' if request.profile.isolation == 'gvisor' else ''}` prints it).")
    workspace = options.workspace
    if request.profile.workspace_mode != "none":
        steps.append(f"the workspace comes from the PersistentVolumeClaim {workspace.volume_claim}."
                     if workspace.volume_claim else f"the workspace comes from the ConfigMap {workspace.config_map}.")
    if request.format == "agent-sandbox":
        steps.append("the agent-sandbox controller and its CRDs must be installed (agents.x-k8s.io/v1beta1).")
    if request.profile.network_mode == "allowlist":
        steps.append(f"the gateway image {request.gateway_image} (`vectraguard image build --gateway`) must be "
                     f"pullable too; its log lines carry the session id {request.session}.")
    return steps


def _private_entries(entries: tuple[str, ...]) -> list[str]:
    """The allowlist entries (network/allowlist.py) that name private or shared address ranges."""
    from vectraguard.network.allowlist import Allowlist

    shared = ipaddress.ip_network("100.64.0.0/10")
    return [entry.text for entry in Allowlist.parse(entries).entries
            if entry.network is not None and (entry.network.is_private or entry.network.overlaps(shared))]


def _check_text(value: Any, where: str = "") -> None:
    """A manifest is UTF-8 text: a string that is not (bytes os.fsdecode kept as surrogates, from an
    argument, a path, an option) would reach the cluster as other text, or not parse. UsageError."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}[{index}]")
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "backslashreplace").decode()
            raise errors.UsageError(f"vectraguard kube generate: {where}: {shown!r} is not UTF-8, and a manifest "
                                    "carries only UTF-8 text; nothing was generated") from None
