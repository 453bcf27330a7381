"""Where Vectra Guard keeps its own state, per user (XDG) and system-wide.

None of these may ever be mounted into a sandbox: they hold the control
plane (configuration, caches, the Podman socket, later trust and audit).
"""

from __future__ import annotations

import os
from pathlib import Path

from vectraguard import records, rundir


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    base = Path(value) if value and os.path.isabs(value) else Path.home() / fallback
    return base / "vectraguard"


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    override = os.environ.get("VECTRAGUARD_DATA_DIR")
    return Path(override) if override else _xdg("XDG_DATA_HOME", ".local/share")


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache")


def recordings_dir() -> Path:
    """Interactive sessions' asciicast files (audit/recording.py)."""
    return data_dir() / "recordings"


def layers_dir() -> Path:
    """Overlay workspaces' kept layers, one directory per session (workspace/store.py)."""
    return data_dir() / "workspaces"


def rootfs_dir() -> Path:
    """Where images are unpacked for isolation lite (images/unpacked.py).

    Shared by every run of this user, like Podman's image storage, hence not
    under VECTRAGUARD_DATA_DIR: root's in /var/lib, a user's under
    $XDG_DATA_HOME; VECTRAGUARD_ROOTFS_DIR (absolute) overrides both.
    """
    override = os.environ.get("VECTRAGUARD_ROOTFS_DIR")
    if override and os.path.isabs(override):
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/lib/vectraguard/rootfs")
    return _xdg("XDG_DATA_HOME", ".local/share") / "rootfs"


def system_dir() -> Path:
    return Path(os.environ.get("VECTRAGUARD_SYSTEM_DIR", "/etc/vectraguard"))


def runtime_dir() -> Path:
    """A private directory for this user's sockets and locks (rundir.py)."""
    return Path(rundir.runtime_dir())


def hosts_dir() -> Path:
    """Where the sandboxes' /etc/hosts files are kept while they run.

    Root's are in /run/vectraguard-hosts, searchable by others (0711: never
    listable, never writable): at `isolation: gvisor` the file is opened by
    runsc's Gofer inside the sandbox's own user namespace, as an unmapped id
    that could not pass the private runtime directory (0700). What they hold
    is no secret (loopback names and the allowlist's forwarded names). Other
    users' stay in their private runtime directory (their sandboxes' ids map
    to them)."""
    if os.geteuid() == 0:
        return Path("/run/vectraguard-hosts")
    return runtime_dir() / "sessions"


def ensure_hosts_dir() -> Path:
    """hosts_dir(), made if needed (root's: 0711); RuntimeUnavailable unless it
    is ours and nobody else can write it."""
    path = hosts_dir()
    ensure_own_dir(path, searchable=os.geteuid() == 0)
    return path


def ensure_own_dir(path: Path, *, searchable: bool) -> None:
    """Create `path` if needed and check that it is a directory of ours that
    nobody else can write; its mode is then 0711 when `searchable` (others
    may open what they know the name of below it, never list it), else 0700.
    RuntimeUnavailable for a planted one."""
    import stat

    from vectraguard.errors import RuntimeUnavailable

    mode = 0o711 if searchable else 0o700
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeUnavailable(f"vectraguard: {path} is not a directory of yours that only you can write",
                                 hint=f"remove it (it may have been planted by another user): rm -rf {path}")
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


def ensure_private_dir(path: Path) -> None:
    """Create `path` (0700) if needed and check that it is a directory of ours
    that no one else can write: a planted one (e.g. under /tmp) is refused."""
    import stat

    from vectraguard.errors import RuntimeUnavailable

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeUnavailable(
            f"vectraguard: {path} is not a private directory owned by you",
            hint=f"remove it (it may have been planted by another user): rm -rf {path}",
        )


def own_state() -> tuple[str, ...]:
    """Every directory of Vectra Guard's own, for the mount deny rules:
    absolute paths, as written (the deny rules resolve them too).

    Both where this run keeps its state and where it would by default:
    pointing VECTRAGUARD_DATA_DIR, VECTRAGUARD_SYSTEM_DIR or XDG_* elsewhere
    must not make the usual audit store, trust store or configuration
    mountable (they hold the records of every run made without the override).
    """
    uid = os.geteuid()
    dirs = [config_dir(), data_dir(), cache_dir(), system_dir(), runtime_dir(), hosts_dir(), rootfs_dir(),
            Path("/etc/vectraguard"), Path("/var/lib/vectraguard"), Path("/run/vectraguard"), Path("/run/vectraguard-hosts"),
            Path(f"/tmp/vectraguard-{uid}"),
            Path(f"/run/user/{uid}/vectraguard")]
    try:
        home = Path.home()
    except RuntimeError:  # no $HOME and no passwd entry: no default per-user state either
        home = None
    if home is not None:
        dirs += [home / ".config" / "vectraguard", home / ".local" / "share" / "vectraguard",
                 home / ".cache" / "vectraguard"]
    xdg_runtime = os.environ.get("XDG_RUNTIME_DIR")
    if xdg_runtime and os.path.isabs(xdg_runtime):
        dirs.append(Path(xdg_runtime) / "vectraguard")
    return tuple(dict.fromkeys(os.path.abspath(d) for d in dirs))


@records.record  # paths.py is on every run's path: not a dataclass (records.py)
class Place:
    """One directory in effect (`vectraguard paths`): `name` a stable key, `what`
    it holds, `set_by` the variable that chose it ("default" when none did)."""

    name: str
    path: Path
    what: str
    set_by: str


def _chosen_by(*variables: str) -> str:
    """The first of `variables` set to an absolute path (what the functions above honour)."""
    for variable in variables:
        value = os.environ.get(variable)
        if value and (os.path.isabs(value) or variable == "VECTRAGUARD_DATA_DIR"):
            return variable
    return "default"


def places() -> list[Place]:
    """Every directory Vectra Guard uses for this user, as they are now: the XDG_*
    and VECTRAGUARD_* variables of this environment applied."""
    data = _chosen_by("VECTRAGUARD_DATA_DIR", "XDG_DATA_HOME")
    rootfs = _chosen_by("VECTRAGUARD_ROOTFS_DIR") if os.geteuid() == 0 else _chosen_by(
        "VECTRAGUARD_ROOTFS_DIR", "XDG_DATA_HOME")
    xdg_runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    in_xdg_runtime = os.geteuid() != 0 and bool(xdg_runtime) and runtime_dir().parent == Path(xdg_runtime)
    return [
        Place("config", config_dir(), "your profiles (profiles.d/) and settings", _chosen_by("XDG_CONFIG_HOME")),
        Place("system", system_dir(), "system profiles (profiles.d/) and the policy (policy.yaml)",
              "VECTRAGUARD_SYSTEM_DIR" if os.environ.get("VECTRAGUARD_SYSTEM_DIR") else "default"),
        Place("data", data_dir(), "the audit store, trust and approvals", data),
        Place("recordings", recordings_dir(), "recorded shell and agent sessions (asciicast)", data),
        Place("layers", layers_dir(), "overlay workspaces' kept changes, per session", data),
        Place("runtime", runtime_dir(), "sockets and locks: the fork server, the Podman service, removals",
              "XDG_RUNTIME_DIR" if in_xdg_runtime else "default"),
        Place("cache", cache_dir(), "validated profiles and decisions (safe to delete)",
              _chosen_by("XDG_CACHE_HOME")),
        Place("rootfs", rootfs_dir(), "images unpacked for isolation lite", rootfs),
    ]
