"""Whether this run may publish the ports its profile names, checked before anything runs.

- The system policy may forbid publishing (`network.publish: false`).
- A published port listens on a loopback address unless the policy's
  `network.publish_addresses` names the host address (a browser on another
  machine would otherwise reach the sandbox's server; on loopback only
  this machine's users can). Checked with or without a policy file.
- Only isolation `container` can do it: Vectra Guard connects from the
  sandbox's network namespace, which a gVisor sandbox does not use for its
  own loopback (its netstack keeps it in the user-space kernel) and which a
  lite sandbox's init does not hand out.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from vectraguard.config.policy import file_path as policy_file
from vectraguard.config.problems import Origin, Problem
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.network.publish_spec import PublishedPort, parse_all

KEY = "network.publish"


def published(profile: ResolvedProfile) -> tuple[PublishedPort, ...]:
    """The profile's published ports (already checked when it resolved)."""
    return parse_all(profile.network_publish)


def problems(profile: ResolvedProfile, policy: Any) -> list[Problem]:
    """What refuses this profile's published ports: `policy` is a config.policy.Policy or None."""
    ports = published(profile)
    if not ports:
        return []
    origin = profile.provenance.get(KEY, Origin("<profile>"))
    if profile.isolation != "container":
        return [Problem(origin, KEY, f"isolation {profile.isolation} cannot publish a port: Vectra Guard connects "
                        "from the sandbox's network namespace, which "
                        + ("gVisor's own network stack keeps out of reach" if profile.isolation == "gvisor"
                           else "a lite sandbox does not hand out")
                        + "; use --isolation container, or drop --publish")]
    if policy is not None and policy.get("network.publish") is False:
        return [Problem(origin, KEY, f"publishing ports is forbidden; refused by {policy.rule('network.publish')}")]
    try:
        allowed = _allowed_addresses(policy)
    except ValueError as exc:
        return [Problem(origin, KEY, f"the policy's network.publish_addresses is unusable ({exc}); "
                        f"refused by {policy.rule('network.publish_addresses')}")]
    found = []
    for port in ports:
        if not port.loopback and ipaddress.ip_address(port.host_address) not in allowed:
            rule = policy.rule("network.publish_addresses") if policy is not None and \
                policy.get("network.publish_addresses") is not None else "the built-in rule (loopback only)"
            found.append(Problem(origin, KEY, f"{port.text()}: host address {port.host_address} is not a loopback "
                                 f"address; refused by {rule}; the system policy's network.publish_addresses "
                                 f"({policy_file()}) must name it"))
    return found


def _allowed_addresses(policy: Any) -> set[Any]:
    if policy is None:
        return set()
    return {ipaddress.ip_address(text) for text in policy.get("network.publish_addresses") or ()}
