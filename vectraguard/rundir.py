"""Where this user's sockets and locks live, without importing pathlib.

paths.runtime_dir() wraps it; the fork server's client (forkserver/client.py)
calls it before anything else is imported, so it may use `os` only.
"""

from __future__ import annotations

import os


def runtime_dir() -> str:
    """Root's /run/vectraguard; a user's $XDG_RUNTIME_DIR/vectraguard when that
    directory exists and is theirs, else /tmp/vectraguard-UID (checked as
    private wherever it is made: paths.ensure_private_dir)."""
    uid = os.geteuid()
    if uid == 0:
        return "/run/vectraguard"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        try:
            info = os.stat(xdg)
        except OSError:
            info = None
        if info is not None and (info.st_mode & 0o170000) == 0o040000 and info.st_uid == uid:
            return os.path.join(xdg, "vectraguard")
    return f"/tmp/vectraguard-{uid}"
