"""Host files a run's isolation level needs beside the container spec, and
which host paths it can reach."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable

from vectraguard import errors, resources
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


# Rootful, these levels open mount sources as an id that owns nothing on the
# host: runsc's Gofer inside the sandbox's own user namespace (gvisor), and
# bubblewrap as the system user vectraguard-sandbox, which resolves even a
# held descriptor's path by name (lite; bubblewrap issue #570). runc opens
# them as root before it enters any namespace.
UNPRIVILEGED_OPENER = {"gvisor": "runsc's file proxy, in the sandbox's own user namespace",
                       "lite": "bubblewrap, as the unprivileged user vectraguard-sandbox"}


def check_reachable(isolation: str, rootless: bool, paths: Iterable[str]) -> None:
    """IsolationUnavailable (nothing runs) when a path's directories are not
    all searchable by others at a level that opens it as an unprivileged id
    (above); nothing to check rootless (the sandbox's ids are the caller's)."""
    opener = UNPRIVILEGED_OPENER.get(isolation)
    if opener is None or rootless:
        return
    for path in paths:
        parent = posixpath.dirname(path.rstrip("/")) or "/"
        while True:
            try:
                info = os.stat(parent)
            except OSError as exc:
                raise errors.IsolationUnavailable(f"vectraguard: isolation {isolation} cannot reach {path}: "
                                                  f"{parent}: {exc.strerror}") from None
            if not info.st_mode & stat.S_IXOTH:
                raise errors.IsolationUnavailable(
                    f"vectraguard: isolation {isolation} cannot mount {path}: it is opened by {opener}, and "
                    f"{parent} is not searchable by others (mode {stat.S_IMODE(info.st_mode):04o})",
                    hint=f"run from a directory others can reach (chmod o+x {parent}), or use isolation container")
            if parent == "/":
                break
            parent = posixpath.dirname(parent)
