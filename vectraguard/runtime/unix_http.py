"""HTTP/1.1 over a Unix socket, for the container engines' REST APIs.

Both engines serve their API on a Unix socket: Podman's libpod API
(runtime/libpod.py) and Docker Engine's API (runtime/docker/api.py). This
module holds what they share: one connection per request ("Connection:
close", so a body without a length ends at EOF), JSON or raw request
bodies, chunked responses, a hijacked connection for attach (the 101
upgrade), and one error class for an engine's error answer. Standard
library only, and no urllib: importing it costs more than a request.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from typing import Any

from vectraguard.errors import RuntimeUnavailable

MAX_HEADER = 64 * 1024
# A query: a mapping, or pairs when a name repeats (Docker's `changes`).
Params = dict[str, str] | list[tuple[str, str]]


class ApiError(Exception):
    """The engine answered with an error status (>= 400): `status` and the
    engine's own `message` (the "message" or "cause" of its JSON error body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class RawBody:
    """A request body that is not JSON: bytes (sent with their length) or an
    iterable of byte chunks (sent with chunked transfer encoding)."""

    def __init__(self, data: bytes | Iterable[bytes], content_type: str) -> None:
        self.data = data
        self.content_type = content_type


class UnixHttp:
    """The plumbing; subclasses name their service, path prefix and error class.

    `timeout` (seconds) bounds connecting and each read of an answer unless a
    call gives its own. RuntimeUnavailable when the socket cannot be reached
    or the service does not answer in time; `error` (an ApiError subclass)
    when it answers with an error status."""

    service = "the service"  # in messages: "cannot reach {service} at {path}"
    engine = "The service"  # in messages: "{engine} did not answer {method} {path} in time"
    prefix = ""  # prepended to every path, e.g. "/v4.0.0/libpod"
    host = "localhost"  # the Host header; the engines ignore it
    error: type[ApiError] = ApiError

    def __init__(self, socket_path: str, timeout: float = 60.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def json(self, method: str, path: str, *, params: Params | None = None,
             body: Any = None, timeout: float | None = None) -> Any:
        """The decoded JSON answer (None for an empty body); RuntimeUnavailable when it is not JSON."""
        status, _, data = self._exchange(method, path, params=params, body=body, timeout=timeout)
        if status >= 400:
            raise self.error(status, error_message(data))
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
            raise self.malformed(method, path, "is not valid JSON", data) from None

    def json_object(self, method: str, path: str, *, params: Params | None = None,
                    body: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """json(), for a call whose answer is a JSON object; RuntimeUnavailable for anything else."""
        decoded = self.json(method, path, params=params, body=body, timeout=timeout)
        if not isinstance(decoded, dict):
            raise self.malformed(method, path, "is not a JSON object")
        return decoded

    def json_objects(self, method: str, path: str, *, params: Params | None = None,
                     timeout: float | None = None) -> list[dict[str, Any]]:
        """json(), for a call whose answer is a JSON array of objects (a listing)."""
        decoded = self.json(method, path, params=params, timeout=timeout)
        if not isinstance(decoded, list) or not all(isinstance(item, dict) for item in decoded):
            raise self.malformed(method, path, "is not a JSON array of objects")
        return decoded

    def malformed(self, method: str, path: str, what: str, data: bytes = b"") -> RuntimeUnavailable:
        """The refusal of an answer this client cannot read (exit 125): the service is broken or is not the
        one it should be, and nothing it said is acted on."""
        shown = f" (it began {data[:80]!r})" if data else ""
        return RuntimeUnavailable(f"vectraguard: {self.service} at {self.socket_path} gave an answer to "
                                  f"{method} {path} that {what}{shown}; nothing was done on it",
                                  hint=f"check that {self.socket_path} is {self.service}'s socket, and its log")

    def _exchange(self, method: str, path: str, *, params: Params | None = None,
                  body: Any = None, timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        sock = self._connect(timeout or self.timeout)
        try:
            self._send(sock, method, path, params, body)
            status, headers, rest = self._read_head(sock)
            return status, headers, self._read_body(sock, headers, rest)
        except TimeoutError:
            raise RuntimeUnavailable(f"vectraguard: {self.engine} did not answer {method} {path} in time") from None
        except ValueError:  # a status line, a length or a chunk size that is not a number
            raise self.malformed(method, path, "is not valid HTTP") from None
        finally:
            sock.close()

    def _hijack(self, method: str, path: str, params: Params | None) -> tuple[socket.socket, bytes]:
        """A connection upgraded to a raw stream (attach), blocking from then
        on, and the bytes that came after the answer's head."""
        sock = self._connect(self.timeout)
        try:
            self._send(sock, method, path, params, None, upgrade=True)
            status, headers, rest = self._read_head(sock)
            if status not in (101, 200):
                raise self.error(status, error_message(self._read_body(sock, headers, rest)))
        except TimeoutError:
            sock.close()
            raise RuntimeUnavailable(f"vectraguard: {self.engine} did not answer {method} {path} in time") from None
        except ValueError:
            sock.close()
            raise self.malformed(method, path, "is not valid HTTP") from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return sock, rest

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise RuntimeUnavailable(
                f"vectraguard: cannot reach {self.service} at {self.socket_path}: {exc.strerror or exc}",
                hint="run `vectraguard doctor`",
            ) from None
        return sock

    def _send(self, sock: socket.socket, method: str, path: str, params: Params | None,
              body: Any, upgrade: bool = False) -> None:
        pairs = params.items() if isinstance(params, dict) else params or []
        query = "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs) if params else ""
        head = [f"{method} {self.prefix}{path}{query} HTTP/1.1", f"Host: {self.host}"]
        chunks: Iterable[bytes] | None = None
        content_type = "application/json"
        if isinstance(body, RawBody):
            content_type = body.content_type
            if isinstance(body.data, bytes):
                payload = body.data
            else:
                payload, chunks = b"", body.data
        else:
            payload = json.dumps(body).encode() if body is not None else b""
        if chunks is not None:
            head += ["Transfer-Encoding: chunked", f"Content-Type: {content_type}"]
        else:
            head.append(f"Content-Length: {len(payload)}")
            if payload:
                head.append(f"Content-Type: {content_type}")
        head += ["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        if chunks is not None:
            for chunk in chunks:
                if chunk:
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")

    def _read_head(self, sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk or len(buf) > MAX_HEADER:
                raise RuntimeUnavailable(f"vectraguard: {self.service} closed the connection unexpectedly")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not (parts[1].isascii() and parts[1].isdigit()):
            raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")  # the callers refuse the answer
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, rest

    @staticmethod
    def _read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length < 0:
                raise ValueError("a negative Content-Length")
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
            return dechunk(bytes(data))
        return bytes(data)


def quote(text: str) -> str:
    """Percent-encode everything but unreserved characters (RFC 3986).

    Written out because urllib.parse costs more to import than a request."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._~") else
                   "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def dechunk(data: bytes) -> bytes:
    """The payload of a body in chunked transfer encoding (RFC 9112 §7.1)."""
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


def error_message(body: bytes) -> str:
    """The "message" (Docker, Podman) or "cause" (Podman) of a JSON error body, or the raw text."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(decoded, dict):
        return str(decoded.get("message") or decoded.get("cause") or decoded)
    return str(decoded)
