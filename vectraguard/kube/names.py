"""Names, labels and annotations of the generated objects.

Every object carries the session id and the resolved profile's digest, so
that the client's audit record, the objects and the gateway's log lines join
on the session. Label values are at most 63 characters (Kubernetes' label
syntax), so the label holds the digest's first 63 hex digits (the header
comment and the audit record hold all 64). `role` tells the sandbox's pod from the gateway's:
the sandbox's NetworkPolicy selects by role and session, never by session
alone (the gateway carries the same session label).
"""

from __future__ import annotations

import re

PREFIX = "vectraguard.io/"
SESSION = PREFIX + "session"
PROFILE = PREFIX + "profile"
PROFILE_DIGEST = PREFIX + "profile-digest"
ROLE = PREFIX + "role"
MANAGED_BY = "app.kubernetes.io/managed-by"

SANDBOX_ROLE, GATEWAY_ROLE = "sandbox", "gateway"
CONTAINER = "sandbox"  # the sandbox pod's one container
GATEWAY_CONTAINER = "gateway"
GATEWAY_PORT = 3128

# Kubernetes label values: empty, or alphanumerics at both ends with - _ . between.
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")


def sandbox_name(session: str) -> str:
    """The pod's (Job's, Sandbox's) name and the NetworkPolicy's: a DNS-1123 label (ids are lowercase hex)."""
    return f"vectraguard-{session}"


def gateway_name(session: str) -> str:
    return f"vectraguard-gateway-{session}"


def labels(session: str, profile: str, digest: str, role: str | None = None) -> dict[str, str]:
    """The labels of every object of a session (with `role`: of a pod and its template)."""
    found = {MANAGED_BY: "vectraguard", SESSION: session, PROFILE_DIGEST: digest[:63]}
    if _LABEL_VALUE.fullmatch(profile):  # profile names are [a-z0-9._-]; a leading '.' cannot be a label value
        found[PROFILE] = profile
    if role is not None:
        found[ROLE] = role
    return found


def annotations_of(profile: str) -> dict[str, str]:
    """The profile's name, also where it cannot be a label value. Values stay within 63
    characters: Podman 4.3's `kube play` refuses longer ones (libpod/define/annotations.go)."""
    return {PROFILE: profile}


def selector(session: str, role: str) -> dict[str, str]:
    """What selects one session's pods of one role (a NetworkPolicy's or Service's)."""
    return {SESSION: session, ROLE: role}
