"""The one error root of Vectra Guard, and the exit statuses of DESIGN §4.

Every *expected* failure is a `VGError`: it carries the exit status and one
line for the user (plus optional located details), and the command layer
prints it without a traceback. Anything else is a bug and is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence

# Exit statuses shared with `timeout(1)` and `podman run`, so scripts that
# already understand those understand Vectra Guard.
EXIT_TIMEOUT = 124
EXIT_REFUSED = 125  # Vectra Guard refused or failed: config, policy, runtime
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
EXIT_SIGNAL_BASE = 128
EXIT_INTERRUPTED = 130


class VGError(Exception):
    """An expected failure: one clear line, optional details, an exit status."""

    exit_status: int = EXIT_REFUSED

    def __init__(self, message: str, *, details: Sequence[str] = (), hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        self.hint = hint

    def lines(self) -> list[str]:
        """One line that says what and what to do, then any located details."""
        first = f"{self.message}; {self.hint}" if self.hint else self.message
        return [first, *(f"  {d}" for d in self.details)]


class UsageError(VGError):
    """Malformed command-line input (an option value that does not parse)."""


class ConfigError(VGError):
    """A profile or configuration file is missing, unreadable or invalid."""


class PolicyError(VGError):
    """The request is well-formed but not allowed (forbidden mount, ...)."""


class RuntimeUnavailable(VGError):
    """Podman, the image or a required host capability is not available."""


class ImageNotFound(RuntimeUnavailable):
    """The image a profile names is not in this user's Podman storage."""


class LimitNotEnforceable(VGError):
    """A limit the profile requires cannot be enforced on this host."""


class IsolationUnavailable(RuntimeUnavailable):
    """The profile's isolation level cannot be given on this host (vectraguard/isolation/)."""
