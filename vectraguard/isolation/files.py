"""Host files a run's isolation level needs beside the container spec."""

from __future__ import annotations

from vectraguard import resources
from vectraguard.config.resolved import ResolvedProfile


def seccomp_path(profile: ResolvedProfile) -> str:
    """The seccomp profile Podman is given for this run: the shipped one
    (resources.seccomp_path), or for `isolation: gvisor` that profile as
    gVisor needs it (gvisor.seccomp_profile), kept in the caller's private
    runtime directory. ConfigError when the shipped file is missing."""
    path = str(resources.seccomp_path(profile.seccomp, noexec=profile.noexec_tmpfs))
    if profile.isolation != "gvisor":
        return path
    from vectraguard.isolation import gvisor
    from vectraguard.paths import ensure_private_dir, runtime_dir

    directory = runtime_dir() / "seccomp"
    ensure_private_dir(directory)
    return gvisor.seccomp_profile(path, directory)
