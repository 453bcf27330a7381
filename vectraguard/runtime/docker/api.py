"""A minimal client of the Docker Engine API over its Unix socket.

The API is version 1.41, what Debian's docker.io 20.10 serves; every path is
prefixed /v1.41 and follows its reference,
https://docs.docker.com/engine/api/v1.41/ (the yaml: moby's
api/swagger.yaml at v20.10). The HTTP plumbing is Podman's client's
(runtime/unix_http.py); method names and signatures are runtime/libpod.py's
where the operation is the same, so the Docker runtime reads like
runtime/session.py.

What Docker does differently, and the caller must know:

- attach (POST /containers/{id}/attach, hijacked) may be called on a created
  container before start, as `docker start -a` does. Docker attaches the
  streams as it writes the 101 answer (the order is not promised by the
  reference; tests/test_docker_api.py starts commands that write at once and
  has never lost a byte), and the run path starts the command later still,
  through the entry program's command file. Without a terminal the stream is
  multiplexed in frames (8-byte header: stream id, 3 zero bytes, big-endian
  length) exactly like Podman's, so attach.StreamPump reads it; with a
  terminal it is the raw pty bytes (StreamPump(raw=True)).
- stdin: the create body must say "OpenStdin": true, "AttachStdin": true
  and, without a terminal, "StdinOnce": true. Docker then closes the
  command's stdin when our end half-closes the connection (EOF). Without
  StdinOnce it instead closes the *output* streams at that moment
  (moby container/stream/attach.go), cutting the command's output short;
  with a terminal it always does, so a terminal's stdin is never half-closed
  (both seen on 20.10: tests/test_docker_api.py).
- With a terminal, Docker always watches stdin for its detach keys
  (ctrl-p,ctrl-q unless `detach_keys` names others); there is no "none".
- wait returns the exit status; Docker reports a command killed by signal N
  as 128+N, like Podman's wait.
- image import answers 200 and then a stream of JSON progress lines; a
  failure is an {"error": ...} line, raised here as DockerError(500, ...).

Why not docker-py (`docker` 7.2.0 from PyPI, in a scratch venv): measured
on this machine (2 cores, Python 3.11, docker.io 20.10), medians of 10 fresh
interpreters that had already imported json, socket, typing and re (as the
run path has), bytecode cached; the time to import, and to the first
answered GET /_ping (docker.DockerClient(version="1.41").ping()); -X
importtime's cumulative figure for the import agrees within 10 %:

| client                                | import  | import + first answer |
|---------------------------------------|---------|-----------------------|
| this module (with unix_http, errors)  |  2.6 ms |   3.4 ms              |
| docker-py                             | 133-170 ms | 137-175 ms         |

docker-py brings requests, urllib3, charset-normalizer and idna: some 150 ms,
a large part of what a whole sandboxed run may add over a bare `docker run
--rm` (the acceptance allows 1.5 times it), for seventeen calls that fit in
this module; and its attach hands back the same raw socket as this one. So
this module, and nothing added to install_requires.

Errors: DockerError (status, Docker's message) for an error answer;
errors.RuntimeUnavailable (one line, exit 125) when the socket cannot be
reached, a call gets no answer within its timeout, or the connection breaks.
Every call has a timeout but attach (the stream lives as long as the command)
and wait (the caller's, None for none).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from typing import Any

from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime.unix_http import (
    ApiError,
    Params,
    RawBody,
    UnixHttp,
    error_message,
    quote,
)

API_VERSION = "1.41"
IMPORT_TIMEOUT_S = 600.0  # a root filesystem of a few hundred MB on a slow disk


class DockerError(ApiError):
    """Docker answered with an error status; `message` is Docker's own."""


class Docker(UnixHttp):
    service = "the Docker daemon"
    engine = "Docker"
    prefix = f"/v{API_VERSION}"
    host = "docker"
    error = DockerError

    # -- the daemon ---------------------------------------------------------------------
    # Asked without the version prefix: a daemon that no longer serves 1.41
    # refuses every /v1.41 path, and must still be found and named.
    def ping(self, timeout: float = 2.0) -> bool:
        """Whether the daemon answers GET /_ping within `timeout` seconds."""
        return self.ping_headers(timeout) is not None

    def ping_headers(self, timeout: float = 2.0) -> dict[str, str] | None:
        """The headers of the daemon's answer to GET /_ping (lower-case names:
        "api-version" is the highest API version it serves); None when it does not answer."""
        try:
            status, headers, _ = self._unversioned()._exchange("GET", "/_ping", timeout=timeout)
        except (OSError, RuntimeUnavailable):
            return None
        return headers if status == 200 else None

    def version(self) -> dict[str, Any]:
        """GET /version: Version, ApiVersion, MinAPIVersion, Components, ... (7 ms here)."""
        return self._unversioned().json_object("GET", "/version")

    def info(self) -> dict[str, Any]:
        """GET /info: ServerVersion, SecurityOptions, CgroupDriver, CgroupVersion, DefaultRuntime, ... (9 ms here)."""
        return self.json_object("GET", "/info")

    # -- containers: the calls a run makes -----------------------------------------------
    def create(self, body: dict[str, Any], name: str | None = None) -> str:
        """POST /containers/create: the new container's ID. `body` is the
        ContainerConfig with its HostConfig (runtime/docker/spec.py)."""
        params = {"name": name} if name else None
        return answer_id(self.json_object("POST", "/containers/create", params=params, body=body), self, "/containers/create")

    def attach(self, cid: str, detach_keys: str | None = None) -> tuple[socket.socket, bytes]:
        """Hijack a connection for the container's stdin, stdout and stderr:
        the socket (blocking, no timeout) and the stream bytes already read.
        Callable before start, so that nothing the command writes is lost."""
        params = {"stream": "1", "stdin": "1", "stdout": "1", "stderr": "1"}
        if detach_keys:
            params["detachKeys"] = detach_keys
        return self._hijack("POST", f"/containers/{cid}/attach", params)

    def start(self, cid: str) -> None:
        self.json("POST", f"/containers/{cid}/start")

    def wait(self, cid: str, timeout: float | None, condition: str = "not-running") -> int:
        """The container's exit status once `condition` holds ("not-running":
        now if it is not running; "next-exit": its next exit, asked before
        start). `timeout` seconds (None: no limit), then RuntimeUnavailable."""
        result = self.json_object("POST", f"/containers/{cid}/wait", params={"condition": condition},
                                  timeout=timeout if timeout is not None else _FOREVER)
        failure = result.get("Error")
        error = failure.get("Message") if isinstance(failure, dict) else failure
        if error:
            raise DockerError(500, str(error))
        code = result.get("StatusCode")
        if not isinstance(code, int) or isinstance(code, bool):
            raise self.malformed("POST", "/containers/{id}/wait", "has no StatusCode")
        return code

    def kill(self, cid: str, signal: str, timeout: float | None = None) -> None:
        """Send `signal` (a name, "SIGTERM", or a number); DockerError 409 when it is not running."""
        self.json("POST", f"/containers/{cid}/kill", params={"signal": signal}, timeout=timeout)

    def stop(self, cid: str, grace: int = 10) -> None:
        """SIGTERM (or the image's StopSignal), SIGKILL after `grace` seconds; done when stopped."""
        self.json("POST", f"/containers/{cid}/stop", params={"t": str(grace)}, timeout=self.timeout + grace)

    def resize(self, cid: str, height: int, width: int) -> None:
        self.json("POST", f"/containers/{cid}/resize", params={"h": str(height), "w": str(width)})

    def inspect(self, cid: str) -> dict[str, Any]:
        return self.json_object("GET", f"/containers/{cid}/json")

    def remove(self, cid: str, force: bool = True, volumes: bool = True) -> None:
        """Remove the container (killing it with `force`) and its anonymous
        volumes; nothing when it is gone already or its removal is under way."""
        params = {"force": _flag(force), "v": _flag(volumes)}
        try:
            self.json("DELETE", f"/containers/{cid}", params=params)
        except DockerError as exc:
            if exc.status == 404 or (exc.status == 409 and "already in progress" in exc.message):
                return
            raise

    def list_containers(self, all: bool = True, labels: Iterable[str] = ()) -> list[dict[str, Any]]:
        """GET /containers/json: the summaries (Id, Names, Labels, State, ...) of
        the containers (`all`: stopped ones too) with every label of `labels`
        ("key" or "key=value")."""
        params = {"all": _flag(all)}
        wanted = list(labels)
        if wanted:
            params["filters"] = json.dumps({"label": wanted})
        return self.json_objects("GET", "/containers/json", params=params)

    def list_labelled(self, label: str) -> list[dict[str, Any]]:
        """Every container, running or not, with `label` (as Libpod.list_labelled)."""
        return self.list_containers(all=True, labels=[label])

    # -- images ---------------------------------------------------------------------------
    def image_inspect(self, name: str) -> dict[str, Any]:
        return self.json_object("GET", f"/images/{quote(name)}/json")

    def image_id(self, name: str) -> str:
        """The ID (sha256 hex, without Docker's "sha256:", as Libpod.image_id) of the image `name` stands for now."""
        return str(self.image_inspect(name)["Id"]).removeprefix("sha256:")

    def image_import(self, layer: bytes | Iterable[bytes], repo: str, tag: str,
                     changes: Iterable[str] = ()) -> str:
        """POST /images/create?fromSrc=-: an image from a root filesystem tar
        (bytes, or chunks streamed as read), tagged repo:tag, with Dockerfile
        `changes` ("ENV PATH=...", 'CMD ["/bin/sh"]'); its ID (sha256 hex, as image_id)."""
        params = [("fromSrc", "-"), ("repo", repo), ("tag", tag), *(("changes", c) for c in changes)]
        status, _, data = self._exchange("POST", "/images/create", params=params, timeout=IMPORT_TIMEOUT_S,
                                         body=RawBody(layer, "application/x-tar"))
        if status >= 400:
            raise DockerError(status, _stream_error(data) or error_message(data))
        return _imported_id(data)

    def image_remove(self, name: str, force: bool = False) -> list[dict[str, Any]]:
        """DELETE /images/{name}: what was untagged and deleted."""
        return self.json_objects("DELETE", f"/images/{quote(name)}", params={"force": _flag(force)})

    def _unversioned(self) -> Docker:
        bare = Docker(self.socket_path, self.timeout)
        bare.prefix = ""
        return bare

    # -- plumbing: a broken connection is the daemon's failure, not a traceback ------------
    def _exchange(self, method: str, path: str, *, params: Params | None = None, body: Any = None,
                  timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        try:
            return super()._exchange(method, path, params=params, body=body, timeout=timeout)
        except (OSError, ValueError, IndexError) as exc:
            raise RuntimeUnavailable(f"vectraguard: the connection to Docker broke during {method} {path}: {exc}",
                                     hint="run `vectraguard doctor`") from None


_FOREVER = 365 * 24 * 3600.0


def answer_id(answer: dict[str, Any], client: Docker, path: str) -> str:
    """The "Id" of a create's answer; RuntimeUnavailable when it has none."""
    found = answer.get("Id")
    if not isinstance(found, str) or not found:
        raise client.malformed("POST", path, "names no Id")
    return found


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _stream_lines(data: bytes) -> list[dict[str, Any]]:
    lines = []
    for line in data.splitlines():
        try:
            decoded = json.loads(line)
        except ValueError:
            continue
        if isinstance(decoded, dict):
            lines.append(decoded)
    return lines


def _stream_error(data: bytes) -> str:
    for line in _stream_lines(data):
        if line.get("error") or line.get("errorDetail"):
            return str(line.get("error") or (line.get("errorDetail") or {}).get("message"))
    return ""


def _imported_id(data: bytes) -> str:
    error = _stream_error(data)
    if error:
        raise DockerError(500, error)
    for line in reversed(_stream_lines(data)):
        status = str(line.get("status", ""))
        if status.startswith("sha256:"):
            return status.removeprefix("sha256:")
    raise DockerError(500, f"the import answered no image ID: {data[:200]!r}")
