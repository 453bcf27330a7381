"""What tests need to tell about fork server processes (vectraguard/forkserver/)."""

from __future__ import annotations

import os


def serving(pid: int) -> bool:
    """Whether the fork server's child `pid` serves a request, rather than being the spare that waits for the
    next one (forkserver/server.py Spare): a served process has taken on its caller's working directory
    (child.py), the spare still has the server's, `/`. False when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/cwd") != "/"
    except OSError:
        return False
