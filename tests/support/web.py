"""A small web server on the host's loopback (or on a socket the test bound,
e.g. inside a private namespace: tests/support/netns.py), for the tests'
egress checks."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"hello {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.hits.append(self.path)  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass


def _server_on(listener: socket.socket | None) -> http.server.ThreadingHTTPServer:
    if listener is None:
        return http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server = http.server.ThreadingHTTPServer(listener.getsockname()[:2], _Handler, bind_and_activate=False)
    server.socket.close()  # the one it made unbound; the listener's namespace and family are the test's
    server.socket = listener
    server.address_family = listener.family
    server.server_address = listener.getsockname()
    return server


@contextlib.contextmanager
def serve(listener: socket.socket | None = None) -> Iterator[tuple[int, list[str]]]:
    """(port, paths requested so far) of a server answering `hello PATH`, on
    127.0.0.1 of the host or on `listener` (already bound and listening,
    IPv4 or IPv6; closed at the end)."""
    server = _server_on(listener)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.hits  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
