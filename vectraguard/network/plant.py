"""Planting a listening socket inside a sandbox's network namespace.

An allowlisted sandbox still runs with `--network none`: it has loopback
and nothing else, so there is no route to bypass. After Podman has created
the container (its namespace exists) and before the command starts, we
enter that namespace from the host, bind a listener on the sandbox's own
loopback, and return; connections the sandbox makes to it arrive in our
process, in the host's namespace, where policy decides.

setns(2) changes the namespace of the calling thread only, and Python has
no os.setns before 3.12, hence ctypes. Rootful only for now: a rootless
sandbox's namespace belongs to the user's user namespace and needs a helper
under `podman unshare` (see DESIGN §5).
"""

from __future__ import annotations

import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_in(pid: int, endpoints: list[tuple[str, int]]) -> list[socket.socket]:
    """Listening TCP sockets bound to each address:port inside the netns of `pid`."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    listeners: list[socket.socket] = []
    try:
        _setns(target)
        try:
            for address, port in endpoints:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listeners.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((address, port))
                listener.listen(128)
        except OSError:
            for listener in listeners:
                listener.close()
            raise
        finally:
            # Back home before anything else can happen on this thread.
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
    return listeners
