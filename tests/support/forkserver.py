"""What tests need to tell about fork server processes (vectraguard/forkserver/)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def serving(pid: int) -> bool:
    """Whether the fork server's child `pid` serves a request, rather than being the spare that waits for the
    next one (forkserver/server.py Spare): a served process has taken on its caller's working directory
    (child.py), the spare still has the server's, `/`. False when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/cwd") != "/"
    except OSError:
        return False


def answers(path: Path) -> bool:
    """Whether a fork server listens at `path` and forks for a connection (it says R)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        try:
            sock.connect(str(path))
            return sock.recv(2) == b"R\n"
        except OSError:
            return False
