"""The HTTP proxy a sandbox's allowlisted traffic goes through.

It listens on a socket planted in the sandbox (plant.py) and serves CONNECT
(for HTTPS and anything tunnelled) and plain HTTP with absolute URIs. For
each request it checks the allowlist, resolves the name itself, refuses
unsafe addresses, and connects to the vetted address — so what was checked
is what is reached. Every attempt, allowed or denied, is logged for the
audit record with the bytes that went each way (the first ones one by one,
the rest counted per destination: attempts.py).
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from vectraguard.network.dial import Denied, PlantedServer, dial, relay

MAX_HEAD = 64 * 1024
HEAD_TIMEOUT_S = 30.0


class ProxyServer(PlantedServer):
    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(HEAD_TIMEOUT_S)
            try:
                head, rest = _read_head(client)
                method, target, version, headers = _parse_head(head)
            except (OSError, ValueError):
                self._malformed(client, "not an HTTP proxy request")
                return
            if method == "CONNECT":
                try:
                    host, port = _split_authority(target, 443)
                except ValueError:  # a port that is no number, or out of range
                    self._malformed(client, f"CONNECT {target[:200]!r} names no host and port")
                    return
                self._tunnel(client, host, port, b"" + rest, established=True)
            else:
                try:
                    url = urlsplit(target)
                    hostname, port = (url.hostname, url.port or 80) if url.scheme == "http" else (None, 0)
                except ValueError:  # a port that is no number, or out of range
                    hostname, port = None, 0
                if not hostname:
                    self._malformed(client, "the proxy takes absolute http:// URLs (use CONNECT for https)")
                    return
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                kept = [h for h in headers if not h.lower().startswith(("proxy-", "connection:"))]
                request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode()
                self._tunnel(client, hostname, port, request + rest, established=False)

    def _malformed(self, client: socket.socket, why: str) -> None:
        """A request the proxy cannot read is refused, and counted like any attempt (attempts.py
        bounds them): a sandbox probing the proxy with garbage leaves a trace too."""
        self.log.add({"at": time.time(), "via": "proxy", "host": "(malformed request)", "port": 0, "address": None,
                      "decision": "denied", "reason": why, "bytes_out": 0, "bytes_in": 0})
        _reply(client, 400, f"vectraguard: {why}")

    def _tunnel(self, client: socket.socket, host: str, port: int, first: bytes, *, established: bool) -> None:
        entry: dict[str, Any] = {"at": time.time(), "via": "proxy", "host": host, "port": port, "address": None,
                                 "decision": "denied", "reason": "", "bytes_out": 0, "bytes_in": 0}
        try:
            upstream, address, rule = dial(self.allowlist, host, port)
        except Denied as exc:
            entry["reason"] = str(exc)
            self.log.add(entry)
            _reply(client, 403, f"vectraguard: {host}:{port} is not allowed: {exc}\n"
                                f"To allow it: --allow {host}:{port}, or add it to network.allow in a profile.\n")
            return
        entry.update(address=address, decision="allowed", reason=f"rule {rule}")
        self.log.add(entry)
        try:
            with upstream:
                if established:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if first:
                    upstream.sendall(first)
                    entry["bytes_out"] += len(first)
                relay(client, upstream, entry)
        finally:
            self.log.closed(entry)  # its bytes, into the counts of the attempts after the first ones


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > MAX_HEAD:
            raise ValueError("incomplete request head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def _parse_head(head: bytes) -> tuple[str, str, str, list[str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError("not HTTP/1.x")
    return method.upper(), target, version, lines[1:]


def _split_authority(target: str, default: int) -> tuple[str, int]:
    """(host, port) of HOST:PORT or [V6]:PORT; ValueError when the port is no TCP port."""
    if target.startswith("["):
        host, _, port = target[1:].partition("]")
        port = port.removeprefix(":") or str(default)
    else:
        host, _, port = target.rpartition(":")
        if not host:
            return target, default
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"no TCP port: {port[:20]!r}")
    return host, int(port)


def _reply(client: socket.socket, status: int, body: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    data = body.encode()
    try:
        client.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
                       f"Connection: close\r\n\r\n".encode() + data)
    except OSError:
        pass
