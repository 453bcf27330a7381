"""A minimal client for Podman's libpod REST API over its Unix socket.

Why not podman-py here: `import podman` pulls in requests and urllib3,
about 100 ms — more than half of a whole `podman run` — and podman-py does
not implement attach at all, which a run needs to stream stdin, stdout and
stderr. The run path needs six calls (create, attach, start, wait, kill,
delete) and one listing; this module speaks exactly those over a raw
socket using the standard library. podman-py serves the commands where
start-up time does not matter (image management, doctor).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from vectraguard.errors import RuntimeUnavailable

API_PREFIX = "/v4.0.0/libpod"
_MAX_HEADER = 64 * 1024


class LibpodError(Exception):
    """Podman answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Libpod:
    def __init__(self, socket_path: str, timeout: float = 60.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    # -- the calls the run path makes ---------------------------------------------------
    def ping(self) -> bool:
        try:
            status, _, _ = self._exchange("GET", "/_ping", timeout=2.0)
        except (OSError, RuntimeUnavailable):
            return False
        return status == 200

    def create(self, specgen: dict[str, Any]) -> str:
        return str(self.json("POST", "/containers/create", body=specgen)["Id"])

    def init(self, cid: str) -> None:
        """Initialise a created container (its namespaces, mounts and conmon) without starting its command."""
        self.json("POST", f"/containers/{cid}/init")

    def image_id(self, name: str) -> str:
        """The ID (sha256 hex) of the image `name` stands for now."""
        return str(self.json("GET", f"/images/{_quote(name)}/json")["Id"])

    def start(self, cid: str) -> None:
        self.json("POST", f"/containers/{cid}/start")

    def kill(self, cid: str, signal: str, timeout: float | None = None) -> None:
        """RuntimeUnavailable when Podman does not answer within `timeout` seconds."""
        self.json("POST", f"/containers/{cid}/kill", params={"signal": signal}, timeout=timeout)

    def wait(self, cid: str, timeout: float) -> int:
        # No condition: Podman then waits for conmon, which waits for its
        # cleanup process — so the removal that follows does not find the
        # mounts still busy. The poll interval defaults to 250 ms, far too
        # slow; but polling faster than ~25 ms competes with that cleanup
        # process for the container and often delays it by ~50 ms (measured
        # here on Podman 4.3: 10 ms gave 33 or 85 ms, 30 ms gave 33-40 ms).
        result = self.json("POST", f"/containers/{cid}/wait", params={"interval": "30ms"}, timeout=timeout)
        return int(result)

    def resize(self, cid: str, height: int, width: int) -> None:
        self.json("POST", f"/containers/{cid}/resize", params={"h": str(height), "w": str(width)})

    def inspect(self, cid: str) -> dict[str, Any]:
        return self.json("GET", f"/containers/{cid}/json")  # type: ignore[no-any-return]

    def remove(self, cid: str, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                self.json("DELETE", f"/containers/{cid}", params={"force": "true", "timeout": "0"})
                return
            except LibpodError as exc:
                if exc.status == 404:
                    return
                # Right after exit, Podman's own cleanup may still hold the
                # container's mounts ("device or resource busy"): try again.
                if attempt == attempts - 1 or "busy" not in exc.message:
                    raise
                time.sleep(0.02 * (attempt + 1))

    def list_labelled(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        return self.json("GET", "/containers/json", params={"all": "true", "filters": filters})  # type: ignore[no-any-return]

    def attach(self, cid: str) -> tuple[socket.socket, bytes]:
        """Hijack a connection for the container's multiplexed stdio stream."""
        params = {"stdin": "true", "stdout": "true", "stderr": "true", "stream": "true"}
        sock = self._connect(self.timeout)
        self._send(sock, "POST", f"/containers/{cid}/attach", params, None, upgrade=True)
        status, headers, rest = self._read_head(sock)
        if status not in (101, 200):
            body = self._read_body(sock, headers, rest)
            sock.close()
            raise LibpodError(status, _error_message(body))
        sock.settimeout(None)
        return sock, rest

    # -- plumbing -------------------------------------------------------------------------
    def json(self, method: str, path: str, *, params: dict[str, str] | None = None,
             body: Any = None, timeout: float | None = None) -> Any:
        status, _, data = self._exchange(method, path, params=params, body=body, timeout=timeout)
        if status >= 400:
            raise LibpodError(status, _error_message(data))
        return json.loads(data) if data.strip() else None

    def _exchange(self, method: str, path: str, *, params: dict[str, str] | None = None,
                  body: Any = None, timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        sock = self._connect(timeout or self.timeout)
        try:
            self._send(sock, method, path, params, body)
            status, headers, rest = self._read_head(sock)
            return status, headers, self._read_body(sock, headers, rest)
        except socket.timeout:
            raise RuntimeUnavailable(f"vectraguard: Podman did not answer {method} {path} in time") from None
        finally:
            sock.close()

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise RuntimeUnavailable(
                f"vectraguard: cannot reach the Podman service at {self.socket_path}: {exc.strerror or exc}",
                hint="run `vectraguard doctor`",
            ) from None
        return sock

    @staticmethod
    def _send(sock: socket.socket, method: str, path: str, params: dict[str, str] | None,
              body: Any, upgrade: bool = False) -> None:
        target = API_PREFIX + path + ("?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items()) if params else "")
        payload = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {target} HTTP/1.1", "Host: podman", f"Content-Length: {len(payload)}"]
        if payload:
            head.append("Content-Type: application/json")
        head += ["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)

    @staticmethod
    def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk or len(buf) > _MAX_HEADER:
                raise RuntimeUnavailable("vectraguard: the Podman service closed the connection unexpectedly")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, rest

    @staticmethod
    def _read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
        if "content-length" in headers:
            length = int(headers["content-length"])
            data = bytearray(rest)
            while len(data) < length:
                chunk = sock.recv(min(65536, length - len(data)))
                if not chunk:
                    break
                data += chunk
            return bytes(data[:length])
        # Every request says "Connection: close", so the body ends at EOF.
        data = bytearray(rest)
        while chunk := sock.recv(65536):
            data += chunk
        if "chunked" in headers.get("transfer-encoding", ""):
            return _dechunk(bytes(data))
        return bytes(data)


def _quote(text: str) -> str:
    """Percent-encode everything but unreserved characters (RFC 3986).

    Written out because urllib.parse costs more to import than a request."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._~") else
                   "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            break
        out += data[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2
    return bytes(out)


def _error_message(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(decoded, dict):
        return str(decoded.get("message") or decoded.get("cause") or decoded)
    return str(decoded)
