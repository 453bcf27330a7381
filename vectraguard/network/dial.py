"""Going out on a sandbox's behalf: check, resolve, vet, connect, relay.

Shared by the HTTP proxy and the transparent forwarders, so both apply the
same rules: the allowlist must match, the name is resolved here, unsafe
addresses are refused, and the connection goes to the address that was
vetted — never to a second lookup's answer.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import threading
from typing import Any

from vectraguard.network.allowlist import Allowlist
from vectraguard.network.attempts import ConnectionLog

CONNECT_TIMEOUT_S = 10.0
RELAY_CHUNK = 256 * 1024  # bigger reads, fewer trips through Python per megabyte


class Denied(Exception):
    """The destination is not allowed; the message says why."""


class PlantedServer:
    """Accepts on a listener planted in a sandbox; one thread per connection.
    Subclasses say what serving a connection means."""

    def __init__(self, listener: socket.socket, allowlist: Allowlist, log: ConnectionLog) -> None:
        self.listener, self.allowlist, self.log = listener, allowlist, log
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed: the session is over
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError


def dial(allowlist: Allowlist, host: str, port: int) -> tuple[socket.socket, str, str]:
    """(connected socket, the address used, the rule that allowed it); or Denied."""
    rule = allowlist.match_request(host, port)
    if rule is None:
        raise Denied("no network.allow entry matches")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Denied(f"the name does not resolve ({exc.strerror})") from None
    reasons = []
    for family, kind, proto, _, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        why = allowlist.vet(address, port)
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


def relay(client: socket.socket, upstream: socket.socket, entry: dict[str, Any]) -> None:
    client.settimeout(None)
    pairs = {client: (upstream, "bytes_out"), upstream: (client, "bytes_in")}
    open_ends = {client, upstream}
    while open_ends:
        readable, _, _ = select.select(list(open_ends), [], [])
        for source in readable:
            destination, counter = pairs[source]
            try:
                data = source.recv(RELAY_CHUNK)
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
