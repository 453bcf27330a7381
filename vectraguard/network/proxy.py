"""The HTTP proxy a sandbox's allowlisted traffic goes through.

It listens on a socket planted in the sandbox (plant.py) and serves CONNECT
(for HTTPS and anything tunnelled) and plain HTTP with absolute URIs. For
each request it checks the allowlist, resolves the name itself, refuses
unsafe addresses, and connects to the vetted address — so what was checked
is what is reached. Every attempt, allowed or denied, is logged for the
audit record with the bytes that went each way.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from vectraguard.network.allowlist import Allowlist

MAX_HEAD = 64 * 1024
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0


@dataclass
class ConnectionLog:
    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.entries.append(entry)
        return entry


class Denied(Exception):
    pass


class ProxyServer:
    def __init__(self, listener: socket.socket, allowlist: Allowlist) -> None:
        self.listener = listener
        self.allowlist = allowlist
        self.log = ConnectionLog()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> list[dict[str, Any]]:
        self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.log.lock:
            return list(self.log.entries)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(HEAD_TIMEOUT_S)
            try:
                head, rest = _read_head(client)
                method, target, version, headers = _parse_head(head)
            except (OSError, ValueError):
                _reply(client, 400, "vectraguard: not an HTTP proxy request")
                return
            if method == "CONNECT":
                host, port = _split_authority(target, 443)
                self._tunnel(client, host, port, b"" + rest, established=True)
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname:
                    _reply(client, 400, "vectraguard: the proxy takes absolute http:// URLs (use CONNECT for https)")
                    return
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                kept = [h for h in headers if not h.lower().startswith(("proxy-", "connection:"))]
                request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode()
                self._tunnel(client, url.hostname, url.port or 80, request + rest, established=False)

    def _tunnel(self, client: socket.socket, host: str, port: int, first: bytes, *, established: bool) -> None:
        entry: dict[str, Any] = {"at": time.time(), "host": host, "port": port, "address": None,
                                 "decision": "denied", "reason": "", "bytes_out": 0, "bytes_in": 0}
        try:
            upstream, address, rule = self._connect(host, port)
        except Denied as exc:
            entry["reason"] = str(exc)
            self.log.add(entry)
            _reply(client, 403, f"vectraguard: {host}:{port} is not allowed: {exc}\n"
                                f"To allow it: --allow {host}:{port}, or add it to network.allow in a profile.\n")
            return
        entry.update(address=address, decision="allowed", reason=f"rule {rule}")
        self.log.add(entry)
        with upstream:
            if established:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if first:
                upstream.sendall(first)
                entry["bytes_out"] += len(first)
            _relay(client, upstream, entry)

    def _connect(self, host: str, port: int) -> tuple[socket.socket, str, str]:
        rule = self.allowlist.match_request(host, port)
        if rule is None:
            raise Denied("no network.allow entry matches")
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Denied(f"the name does not resolve ({exc.strerror})") from None
        reasons = []
        for family, kind, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0])
            why = self.allowlist.vet(address)
            if why:
                reasons.append(why)
                continue
            upstream = socket.socket(family, kind, proto)
            upstream.settimeout(CONNECT_TIMEOUT_S)
            try:
                upstream.connect(sockaddr)  # the vetted address itself: no second lookup
            except OSError as exc:
                upstream.close()
                reasons.append(f"{address}: {exc.strerror}")
                continue
            upstream.settimeout(None)
            return upstream, str(address), rule.text
        raise Denied("; ".join(reasons) or "no usable address")


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
    if target.startswith("["):
        host, _, port = target[1:].partition("]")
        return host, int(port.removeprefix(":") or default)
    host, _, port = target.rpartition(":")
    if not host:
        return target, default
    return host, int(port)


def _reply(client: socket.socket, status: int, body: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    data = body.encode()
    try:
        client.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
                       f"Connection: close\r\n\r\n".encode() + data)
    except OSError:
        pass


def _relay(client: socket.socket, upstream: socket.socket, entry: dict[str, Any]) -> None:
    client.settimeout(None)
    pairs = {client: (upstream, "bytes_out"), upstream: (client, "bytes_in")}
    open_ends = {client, upstream}
    while open_ends:
        readable, _, _ = select.select(list(open_ends), [], [])
        for source in readable:
            destination, counter = pairs[source]
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_ends.discard(source)
                try:
                    destination.shutdown(socket.SHUT_WR)
                except OSError:
                    open_ends.discard(destination)
                continue
            try:
                destination.sendall(data)
            except OSError:
                return
            entry[counter] += len(data)
