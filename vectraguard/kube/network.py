"""The network side of a session on Kubernetes: NetworkPolicies, and for
`allowlist` the egress gateway (a Service and a Deployment).

- `none`: a NetworkPolicy selecting the sandbox's pod with both policy types
  and no rules: no ingress, no egress (DNS included).
- `allowlist`: the sandbox may open TCP connections to the gateway's port
  only. The gateway runs `vectraguard kube gateway` (kube/gateway.py; its image:
  `vectraguard image build --gateway`, images/gateway_image.py), the
  same allowlist and proxy code as a local run, and alone may leave the
  cluster. The sandbox reaches it at a fixed cluster IP (`--gateway-ip`), given
  in HTTP(S)_PROXY: it needs no DNS, so cluster DNS stays denied to it and
  no name lookup can carry data out. The gateway resolves names itself, only
  for destinations its allowlist admits.
- `full`: no ingress; egress anywhere (as Podman's network locally).

NetworkPolicy is enforced by the cluster's network plugin; on a cluster
whose plugin does not, these objects are accepted and do nothing (said in
the header). The egress peer names the gateway twice: its pods (plugins that
apply policy after the Service's address translation: Calico, Cilium) and
its cluster IP (those that apply it before); both admit only that port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vectraguard.kube import names
from vectraguard.kube.pod import literal

CLOUD_METADATA = "169.254.0.0/16"  # link-local: instance metadata services; never through the gateway
GATEWAY_CPU = "500m"
# Memory: the interpreter, then each open connection's buffers (a tunnel whose sandbox never reads holds
# its stream limit each way, and the kernel's socket buffers count against the cgroup): measured ~1.2 MiB
# per idle-reading tunnel, so 2 MiB each leaves room. The sandbox cannot push its gateway past the limit
# (an OOM kill would lose the log lines it still owes) within network.max_connections.
GATEWAY_BASE_MIB, GATEWAY_MIB_PER_CONNECTION = 64, 2


def sandbox_policy(session: str, mode: str, metadata: Mapping[str, Any], gateway_ip: str | None) -> dict[str, Any]:
    """The sandbox pod's NetworkPolicy for network `mode` ("none", "allowlist" or "full")."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": names.selector(session, names.SANDBOX_ROLE)},
                            "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    if mode == "allowlist":
        assert gateway_ip is not None
        spec["egress"] = [{
            "to": [{"podSelector": {"matchLabels": names.selector(session, names.GATEWAY_ROLE)}},
                   {"ipBlock": {"cidr": f"{gateway_ip}/{128 if ':' in gateway_ip else 32}"}}],
            "ports": [{"protocol": "TCP", "port": names.GATEWAY_PORT}],
        }]
    elif mode == "full":
        spec["egress"] = [{}]  # one rule matching every destination
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": names.sandbox_name(session), **metadata}, "spec": spec}


def gateway_policy(session: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The gateway's: ingress only from the sandbox pod on the proxy port; egress anywhere but link-local."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": names.gateway_name(session), **metadata},
            "spec": {"podSelector": {"matchLabels": names.selector(session, names.GATEWAY_ROLE)},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": names.selector(session, names.SANDBOX_ROLE)}}],
                                  "ports": [{"protocol": "TCP", "port": names.GATEWAY_PORT}]}],
                     "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [CLOUD_METADATA]}},
                                        {"ipBlock": {"cidr": "::/0", "except": ["fe80::/10"]}}]}]}}


def gateway_service(session: str, metadata: Mapping[str, Any], cluster_ip: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": names.gateway_name(session), **metadata},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip,
                     "selector": names.selector(session, names.GATEWAY_ROLE),
                     "ports": [{"name": "proxy", "protocol": "TCP", "port": names.GATEWAY_PORT,
                                "targetPort": names.GATEWAY_PORT}]}}


def gateway_deployment(session: str, metadata: Mapping[str, Any], pod_metadata: Mapping[str, Any],
                       pod_spec: Mapping[str, Any], *, image: str, digest: str, allow: Sequence[str],
                       max_connections: int, ipv6: bool = False) -> dict[str, Any]:
    """One replica of the gateway. `pod_spec` is the sandbox's (its hardening is
    reused: user namespace, user, seccomp, read-only root, no capabilities);
    the container, volumes and deadlines are the gateway's own."""
    # The image's entrypoint runs `vectraguard kube gateway` (images/gateway_image.py): these are its options.
    listen = f"[::]:{names.GATEWAY_PORT}" if ipv6 else f"0.0.0.0:{names.GATEWAY_PORT}"
    arguments = [literal(word) for word in (
        "--listen", listen, "--session", session, "--profile-digest", digest, "--max-connections",
        str(max_connections), *(word for entry in allow for word in ("--allow", entry)))]
    sandbox = pod_spec["containers"][0]
    memory = f"{GATEWAY_BASE_MIB + GATEWAY_MIB_PER_CONNECTION * max_connections}Mi"
    container = {
        "name": names.GATEWAY_CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent", "args": arguments,
        "ports": [{"name": "proxy", "containerPort": names.GATEWAY_PORT, "protocol": "TCP"}],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": GATEWAY_CPU, "memory": memory},
                      "limits": {"cpu": GATEWAY_CPU, "memory": memory}},
        # No probes: a TCP probe's connection would be logged as the sandbox's (a malformed request), and
        # an exec probe needs a program in the image; the Service's first connections wait for the listener.
        "securityContext": dict(sandbox["securityContext"]),
        "volumeMounts": [{"name": f"tmp-{session}", "mountPath": "/tmp"}],
    }
    spec = {key: value for key, value in pod_spec.items()
            if key in ("hostUsers", "automountServiceAccountToken", "enableServiceLinks", "securityContext",
                       "runtimeClassName")}
    spec.update(containers=[container], restartPolicy="Always", terminationGracePeriodSeconds=5,
                volumes=[{"name": f"tmp-{session}", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}])
    selector = names.selector(session, names.GATEWAY_ROLE)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": names.gateway_name(session), **metadata},
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": dict(pod_metadata), "spec": spec}}}
