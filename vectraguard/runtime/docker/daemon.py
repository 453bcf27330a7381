"""Finding the Docker daemon, and what it says of itself.

The socket, first match wins:
1. $DOCKER_HOST, when set: only `unix:///path`, the path absolute (a
   trailing slash is dropped). A tcp:// or ssh:// daemon is refused (Vectra
   Guard does no TLS and must check mounts through the daemon's own /proc:
   the daemon has to be on this host), and so is a relative path
   (`unix://run/docker.sock` would depend on the working directory).
2. For a user other than root, the rootless daemon's
   $XDG_RUNTIME_DIR/docker.sock, when it exists (a rootful socket a user can
   open makes that user root-equivalent; the rootless one does not).
3. /run/docker.sock, then /var/run/docker.sock (Docker's default; on most
   hosts /var/run is a link to /run).

Costs here (docker.io 20.10, 2 cores, medians of 20): `answers()` and
`connect()` one GET /_ping, 0.15 ms; `facts()` GET /_ping and GET /info,
9 ms (GET /version, 7 ms more, is not asked: /info has the version and
the ping's Api-Version header the API version).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime.docker.api import API_VERSION, Docker, DockerError

ROOTFUL_SOCKETS = ("/run/docker.sock", "/var/run/docker.sock")
START_HINT = "start dockerd (as root: contrib/docker/dockerd.sh), or set DOCKER_HOST=unix:///path/to/docker.sock"


@dataclass(frozen=True)
class DaemonFacts:
    """What the daemon says of itself (GET /info, GET /version)."""

    socket: str
    version: str  # "20.10.24+dfsg1"
    api_version: str  # the highest API version it serves, "1.41"
    rootless: bool  # SecurityOptions has "name=rootless" (rootlesskit)
    userns_remap: bool  # SecurityOptions has "name=userns" (dockerd --userns-remap)
    cgroup_driver: str  # "cgroupfs" or "systemd"
    cgroup_version: str  # "1" or "2"
    default_runtime: str  # the OCI runtime it uses by default: "runc"
    security_options: tuple[str, ...]  # as given: "name=seccomp,profile=default", ...
    root_dir: str = ""  # DockerRootDir: "/var/lib/docker", remapped "/var/lib/docker/UID.GID"


def socket_path() -> str:
    """The socket to use (see the module's docstring); the first rootful
    candidate when none exists, for the error to name. RuntimeUnavailable
    for a $DOCKER_HOST that is not unix://."""
    host = os.environ.get("DOCKER_HOST", "")
    if host:
        if not host.startswith("unix://") or not host.removeprefix("unix://"):
            raise RuntimeUnavailable(
                f"vectraguard: DOCKER_HOST={host} is not supported: Vectra Guard talks to Docker only "
                "through a Unix socket on this host (no tcp://, ssh:// or TLS)",
                hint="unset DOCKER_HOST, or set it to unix:///run/docker.sock")
        path = host.removeprefix("unix://")
        if not path.startswith("/"):
            raise RuntimeUnavailable(
                f"vectraguard: DOCKER_HOST={host} is not an absolute path (unix:// is followed by the path, "
                "so an absolute one has three slashes)", hint=f"set DOCKER_HOST=unix:///{path}")
        return os.path.normpath(path)
    candidates = list(ROOTFUL_SOCKETS)
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.geteuid() != 0 and runtime_dir:
        candidates.insert(0, str(Path(runtime_dir) / "docker.sock"))
    for candidate in candidates:
        if Path(candidate).exists():
            return candidate
    return ROOTFUL_SOCKETS[0]


def connect(timeout: float = 60.0) -> Docker:
    """The client of the daemon on socket_path(), once it has answered and
    said it serves this client's API version (1.41); RuntimeUnavailable
    (exit 125), with the fix, when it does not."""
    path = socket_path()
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise RuntimeUnavailable(f"vectraguard: no Docker daemon: {path} does not exist", hint=START_HINT) from None
    except OSError as exc:
        raise RuntimeUnavailable(f"vectraguard: cannot use the Docker daemon at {path}: {exc.strerror}",
                                 hint=START_HINT) from None
    if not stat.S_ISSOCK(mode):
        raise RuntimeUnavailable(f"vectraguard: no Docker daemon: {path} is not a socket", hint=START_HINT)
    if not os.access(path, os.R_OK | os.W_OK):
        raise RuntimeUnavailable(
            f"vectraguard: cannot use the Docker daemon at {path}: permission denied",
            hint="run as root, or use rootless Docker ($XDG_RUNTIME_DIR/docker.sock)" if os.geteuid() != 0
            else f"check the mode of {path}")
    client = Docker(path, timeout)
    answer = client.ping_headers()
    if answer is None:
        raise RuntimeUnavailable(f"vectraguard: the Docker daemon at {path} does not answer", hint=START_HINT)
    # A daemon whose lowest version is above ours says so itself on the first
    # call ("client version 1.41 is too old ..."): no second round trip here.
    served = answer.get("api-version", "")
    version = _version(served)
    if version is None:
        said = f"an API version Vectra Guard cannot read, {served[:40]!r}," if served else "no API version"
        raise RuntimeUnavailable(f"vectraguard: the Docker daemon at {path} says {said} in its answer to GET "
                                 "/_ping (the Api-Version header)", hint="upgrade Docker Engine, or use Podman")
    if version < tuple(int(part) for part in API_VERSION.split(".")):
        raise RuntimeUnavailable(
            f"vectraguard: the Docker daemon at {path} serves API version {served or '(unknown)'}, "
            f"older than {API_VERSION} (Docker Engine 20.10)", hint="upgrade Docker Engine, or use Podman")
    return client


def answers(timeout: float = 0.5) -> bool:
    """Whether a Docker daemon's socket exists and answers GET /_ping within
    `timeout` seconds (`engine: auto`); False for an unsupported DOCKER_HOST."""
    try:
        path = socket_path()
    except RuntimeUnavailable:
        return False
    return Path(path).exists() and Docker(path, timeout).ping(timeout)


def facts(client: Docker) -> DaemonFacts:
    """The daemon's facts, from GET /_ping (its API version) and GET /info:
    9 ms here, once per run. RuntimeUnavailable when it does not answer or refuses."""
    answer = client.ping_headers()
    try:
        info = client.info()
    except DockerError as exc:
        raise RuntimeUnavailable(f"vectraguard: Docker refused to describe itself: {exc.message}") from None
    options = tuple(str(option) for option in info.get("SecurityOptions") or ())
    names = {option.split(",")[0].removeprefix("name=") for option in options}
    return DaemonFacts(
        socket=client.socket_path,
        version=str(info.get("ServerVersion", "")),
        api_version=(answer or {}).get("api-version", ""),
        rootless="rootless" in names,
        userns_remap="userns" in names,
        cgroup_driver=str(info.get("CgroupDriver", "")),
        cgroup_version=str(info.get("CgroupVersion", "")),
        default_runtime=str(info.get("DefaultRuntime", "")),
        security_options=options,
        root_dir=str(info.get("DockerRootDir", "")),
    )


def _version(text: str) -> tuple[int, ...] | None:
    """"1.41" as (1, 41); None unless it is numbers joined by dots."""
    parts = text.split(".")
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)
