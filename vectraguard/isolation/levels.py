"""The isolation levels, weakest first, as a profile's `isolation` and the
system policy's `security.isolation_minimum` name them.

The order is the one a policy minimum uses. `lite` (bubblewrap namespaces,
seccomp and Landlock, no container engine) shares the host's kernel like
`container` and has no user-namespace mapping to a range of unprivileged
host ids, so it ranks below it; `gvisor` puts gVisor's own kernel between
the sandbox and the host's, so it ranks above.
"""

from __future__ import annotations

LEVELS = ("lite", "container", "gvisor")
DEFAULT = "container"

# One line each, for `doctor`, `profile show` readers and refusals.
PROTECTS = {
    "lite": "namespaces (bubblewrap), seccomp, Landlock and no capabilities on the host's kernel, as one "
            "unprivileged host user shared by every rootful sandbox (rootless: the caller); no container engine",
    "container": "namespaces, a user namespace of unprivileged host ids, seccomp, no capabilities (runc)",
    "gvisor": "gVisor's user-space kernel between the sandbox and the host's (its Sentry runs as nobody); "
              "seccomp and no capabilities inside",
}


def rank(level: str) -> int:
    """0 for the weakest; ValueError for a name that is no level."""
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"{level!r} is not an isolation level ({', '.join(LEVELS)})") from None


def at_least(level: str, minimum: str) -> bool:
    return rank(level) >= rank(minimum)
