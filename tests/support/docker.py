"""Docker Engine for the tests: is a daemon there, and images copied into it from Podman.

The tests build their images with Podman (tests/support/testimage.py, `vectraguard image
build`); a Docker test runs the same image, copied with `podman save` (docker-archive) into
POST /images/load, which keeps the image ID (the digest of its config), so a copy is made
once per image. The daemon is reached over its Unix socket with the standard library
(Docker Engine API v1.41, https://docs.docker.com/engine/api/v1.41/); the product's own
client is vectraguard/runtime/docker/api.py.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

API = "/v1.41"
LABEL = "vectraguard.test"  # on every container a test creates, with the test's name
TIMEOUT_S = 600.0  # an image load of a few hundred MB on a busy 2-core machine


class DockerError(RuntimeError):
    """The daemon answered with an error, or could not be reached; the message says which request."""


def docker_socket() -> Path:
    """The daemon's socket: $DOCKER_HOST (unix:// only), else /run/docker.sock or /var/run/docker.sock."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return Path(host.removeprefix("unix://"))
    for path in (Path("/run/docker.sock"), Path("/var/run/docker.sock")):
        if path.exists():
            return path
    return Path("/run/docker.sock")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def request(method: str, path: str, body: bytes | IO[bytes] | None = None,
            headers: dict[str, str] | None = None, timeout: float = TIMEOUT_S) -> tuple[int, bytes]:
    """(HTTP status, body) of one API request; `path` without the version prefix, e.g. "/info".

    A file body is sent chunked as it is read. DockerError when the socket cannot be reached.
    """
    connection = _UnixConnection(docker_socket(), timeout)
    try:
        connection.request(method, API + path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError as error:
        raise DockerError(f"{method} {path}: {error}") from error
    finally:
        connection.close()


def call(method: str, path: str, payload: Any = None, timeout: float = TIMEOUT_S) -> Any:
    """The decoded JSON answer (None when empty) of a request with a JSON body; DockerError unless 2xx."""
    body = None if payload is None else json.dumps(payload).encode()
    headers = {} if payload is None else {"Content-Type": "application/json"}
    status, answer = request(method, path, body, headers, timeout)
    if not 200 <= status < 300:
        raise DockerError(f"{method} {path}: HTTP {status}: {answer.decode(errors='replace').strip()}")
    return json.loads(answer) if answer.strip() else None


def docker_available() -> str | None:
    """None when a Docker daemon answers GET /_ping on docker_socket(); else why not, and what to do."""
    path = docker_socket()
    if not path.exists():
        return f"no Docker daemon: {path} does not exist (start one with contrib/docker/dockerd.sh)"
    try:
        status, answer = request("GET", "/_ping", timeout=10)
    except DockerError as error:
        return f"the Docker daemon on {path} does not answer: {error}"
    if status != 200 or answer != b"OK":
        return f"the Docker daemon on {path} answers GET /_ping with HTTP {status}: {answer[:200]!r}"
    return None


def docker_image(podman_ref: str, podman: Sequence[str] = ("podman",)) -> str:
    """Copy `podman_ref` (a name or an ID) from Podman's storage into Docker, unless Docker has it.

    Returns the image ID (64 hex digits, no "sha256:"), the same in both engines. The
    image's Podman name (`podman_ref`, or for an ID its first name, e.g.
    localhost/vectraguard/default:bookworm) becomes its Docker tag. DockerError or
    subprocess.CalledProcessError on failure.
    """
    inspect = subprocess.run(
        [*podman, "image", "inspect", "--format", "{{.Id}}{{range .RepoTags}} {{.}}{{end}}", podman_ref],
        capture_output=True, check=True, text=True).stdout.split()
    image_id, names = inspect[0], inspect[1:]
    name = names[0] if names and image_id.startswith(podman_ref.removeprefix("sha256:")) else podman_ref
    status, _ = request("GET", f"/images/{image_id}/json")
    if status == 404:
        _load(podman, name)
    elif status != 200:
        raise DockerError(f"GET /images/{image_id}/json: HTTP {status}")
    if not image_id.startswith(name.removeprefix("sha256:")):  # a name, not an ID
        _tag(image_id, name)
    return image_id


def _tag(image_id: str, name: str) -> None:
    """Make `name` Docker's tag of image_id (a copy made earlier may have left it on an older image)."""
    status, answer = request("GET", f"/images/{quote(name, safe='')}/json")
    if status == 200 and json.loads(answer)["Id"] == f"sha256:{image_id}":
        return
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:  # no tag (a colon, if any, was a registry's port)
        repo, tag = name, "latest"
    call("POST", f"/images/{image_id}/tag?repo={quote(repo, safe='')}&tag={quote(tag, safe='')}")


def _load(podman: Sequence[str], podman_ref: str) -> None:
    save = subprocess.Popen([*podman, "save", "--format", "docker-archive", podman_ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert save.stdout is not None
    try:
        status, answer = request("POST", "/images/load?quiet=1", body=save.stdout,
                                 headers={"Content-Type": "application/x-tar"})
    finally:
        save.stdout.close()
        _, errors = save.communicate(timeout=TIMEOUT_S)
    if save.returncode != 0:
        raise DockerError(f"podman save {podman_ref}: exit {save.returncode}: {errors.decode(errors='replace').strip()}")
    # A 200 answer is a stream of JSON messages; a failed load says so in one of them.
    messages = [json.loads(line) for line in answer.splitlines() if line.strip()] if status == 200 else []
    failed = [m.get("error") or m.get("errorDetail") for m in messages if "error" in m or "errorDetail" in m]
    if status != 200 or failed:
        raise DockerError(f"POST /images/load ({podman_ref}): HTTP {status}: "
                          f"{failed or answer.decode(errors='replace').strip()}")


def container_output(container_id: str) -> str:
    """Its stdout and stderr so far (GET /containers/ID/logs, no TTY: 8-byte frame headers stripped)."""
    status, raw = request("GET", f"/containers/{container_id}/logs?stdout=1&stderr=1")
    if status != 200:
        raise DockerError(f"GET /containers/{container_id}/logs: HTTP {status}: {raw[:200]!r}")
    text, offset = b"", 0
    while offset + 8 <= len(raw):
        size = int.from_bytes(raw[offset + 4:offset + 8], "big")
        text += raw[offset + 8:offset + 8 + size]
        offset += 8 + size
    return text.decode(errors="replace")


def remove_container(container_id: str) -> None:
    """Remove it, running or not, with its anonymous volumes; gone already is fine."""
    status, answer = request("DELETE", f"/containers/{container_id}?force=1&v=1")
    if status not in (204, 404):
        raise DockerError(f"DELETE /containers/{container_id}: HTTP {status}: {answer[:200]!r}")


DOCKERD_SH = Path(__file__).resolve().parent.parent.parent / "contrib" / "docker" / "dockerd.sh"


@contextmanager
def private_daemon(extra: dict[str, str] | None = None) -> Iterator[str]:
    """A Docker daemon of the caller's own (contrib/docker/dockerd.sh, remapped, on private paths; `extra`:
    more VECTRAGUARD_DOCKERD_* settings, e.g. _BIP for a bridge), stopped and removed afterwards; yields
    its DOCKER_HOST value."""
    run = Path(tempfile.mkdtemp(prefix="vgb-", dir="/run"))
    data = Path(tempfile.mkdtemp(prefix="vectraguard-test-dockerd-", dir="/var/lib"))
    env = {"VECTRAGUARD_DOCKERD_SOCKET": str(run / "docker.sock"),
           "VECTRAGUARD_DOCKERD_PIDFILE": str(run / "dockerd.pid"), "VECTRAGUARD_DOCKERD_DATA_ROOT": str(data),
           "VECTRAGUARD_DOCKERD_EXEC_ROOT": str(run / "exec"), "VECTRAGUARD_DOCKERD_LOG": str(run / "dockerd.log"),
           **(extra or {})}
    try:
        started = subprocess.run([str(DOCKERD_SH)], capture_output=True, text=True, timeout=120, check=False,
                                 env={**os.environ, **env})
        assert started.returncode == 0, started.stderr
        yield f"unix://{env['VECTRAGUARD_DOCKERD_SOCKET']}"
    finally:
        subprocess.run([str(DOCKERD_SH), "--stop"], capture_output=True, timeout=120, check=False,
                       env={**os.environ, **env})
        # A remapping daemon makes a copy of its exec root's parent for the remapped ids (RUN.UID.GID).
        for directory in (run, data, *run.parent.glob(f"{run.name}.*")):
            shutil.rmtree(directory, ignore_errors=True)
