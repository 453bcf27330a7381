"""What a set of NetworkPolicies allows, read as Kubernetes defines them
(networking.k8s.io/v1; kubernetes.io/docs/concepts/services-networking/network-policies):

- a pod is isolated for a direction when a policy in its namespace selects it
  (podSelector) and lists that direction in policyTypes; an isolated pod
  allows only what some selecting policy's rules allow, a pod no policy
  isolates allows everything;
- a rule allows a peer when one of its peers matches (no `to`/`from`: any
  peer) and the port matches (no `ports`: any port);
- a peer is a podSelector (same namespace unless a namespaceSelector is
  given), a namespaceSelector, or an ipBlock with its excepts.

Independent of the generator (it imports nothing of vectraguard): the tests
read the generated policies with it and assert their meaning.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (labels, namespace, address) or an address outside the cluster."""

    ip: str
    labels: Mapping[str, str] | None = None  # None: not a pod
    namespace: str = "default"
    namespace_labels: Mapping[str, str] = field(default_factory=dict)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels; {} selects everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], other: Endpoint, namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        network = ipaddress.ip_network(block["cidr"])
        if address.version != network.version or address not in network:
            return False
        return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or []
                       if ipaddress.ip_network(cidr).version == address.version)
    if other.labels is None:
        return False  # pod and namespace selectors match pods only
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != namespace:
        return False
    return selects(peer.get("podSelector") or {}, other.labels)


def _port_matches(ports: Sequence[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        low = entry.get("port")
        if low is None or low == port or (isinstance(low, int) and low <= port <= entry.get("endPort", low)):
            return True
    return False


def allowed(policies: Sequence[Mapping[str, Any]], source: Endpoint, destination: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `destination` on port/protocol: its egress and, when
    the destination is a pod, its ingress."""
    return (_direction(policies, source, destination, port, protocol, "Egress")
            and (destination.labels is None
                 or _direction(policies, destination, source, port, protocol, "Ingress")))


def _direction(policies: Sequence[Mapping[str, Any]], pod: Endpoint, other: Endpoint, port: int, protocol: str,
               kind: str) -> bool:
    assert pod.labels is not None
    selecting = [p for p in policies if p["metadata"].get("namespace", "default") == pod.namespace
                 and selects(p["spec"]["podSelector"], pod.labels) and kind in _types(p["spec"])]
    if not selecting:
        return True
    rules_key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
    for policy in selecting:
        namespace = policy["metadata"].get("namespace", "default")
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, other, namespace) for peer in peers)) and \
                    _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def _types(spec: Mapping[str, Any]) -> list[str]:
    # The API's default when policyTypes is absent: Ingress, and Egress if there are egress rules.
    return spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
