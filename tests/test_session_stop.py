"""The stop path of a session when Podman does not answer a kill at once
(seen on Podman 4.3: the kill waits on the container's lock while the attach
stream is open). The real-container side is tests/test_run_lifecycle.py."""

from __future__ import annotations

import socket

from vectraguard import errors
from vectraguard.runtime import session
from vectraguard.runtime.attach import StreamPump


class _Podman:
    """Answers a kill only once our end of the attach stream is closed."""

    def __init__(self, stream: socket.socket) -> None:
        self.stream, self.kills = stream, []  # type: ignore[var-annotated]

    def kill(self, cid: str, signal: str, timeout: float | None = None) -> None:
        self.kills.append((signal, self.stream.fileno() == -1))
        if self.stream.fileno() != -1:
            raise errors.RuntimeUnavailable("vectraguard: Podman did not answer POST kill in time")


def test_a_kill_without_answer_ends_the_attach_stream_and_is_asked_again() -> None:
    ours, theirs = socket.socketpair()
    try:
        pump = StreamPump(ours, b"", None, lambda stream, data: None, theirs.fileno(), raw=False)
        podman = _Podman(ours)
        session._stop(podman, "cid", pump, kill_grace=0.1)  # type: ignore[arg-type]
        assert podman.kills == [("SIGTERM", False), ("SIGTERM", True)]
        assert ours.fileno() == -1
    finally:
        ours.close()
        theirs.close()
