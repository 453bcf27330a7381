"""Planting a listening socket inside a sandbox's network namespace.

An allowlisted sandbox still runs with `--network none`: it has loopback
and nothing else, so there is no route to bypass. After Podman has created
the container (its namespace exists) and before the command starts, we
enter that namespace from the host, bind a listener on the sandbox's own
loopback, and return; connections the sandbox makes to it arrive in our
process, in the host's namespace, where policy decides.

setns(2) changes the namespace of the calling thread only, and Python has
no os.setns before 3.12, hence ctypes. Rootless, the sandbox's namespace
belongs to the user's rootless user namespace: a helper started under
`podman unshare` binds there and hands the sockets back (plant_helper.py).
"""

from __future__ import annotations

import array
import ctypes
import os
import socket
import subprocess
import tempfile

from vectraguard.runtime import unshare

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1  # netdevice(7), <linux/sockios.h>, <net/if.h>


def _loopback_up() -> None:
    """Bring up `lo` of the namespace this thread is in. runc does it for a
    container's new network namespace; runsc (isolation gvisor, whose
    --network=host uses this namespace as it is) does not, and the sandbox
    would find its 127.0.0.1 unreachable. Up already: nothing changes."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(control, SIOCGIFFLAGS, request)[:18])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def listen_in(pid: int, endpoints: list[tuple[str, int]], *, return_home: bool = True) -> list[socket.socket]:
    """Listening TCP sockets bound to each address:port inside the netns of `pid`.

    `return_home=False` is for the throwaway rootless helper: under `podman
    unshare` it may enter the sandbox's namespace but not go back to the
    host's, which belongs to the initial user namespace."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    listeners: list[socket.socket] = []
    try:
        _setns(target)
        try:
            _loopback_up()
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
            if return_home:
                _setns(own)
    finally:
        os.close(target)
        os.close(own)
    return listeners


def listen_in_rootless(pid: int, endpoints: list[tuple[str, int]]) -> list[socket.socket]:
    """The same, through `podman unshare` and SCM_RIGHTS, for a rootless sandbox."""
    with tempfile.TemporaryDirectory(prefix="vg-plant-") as directory:
        path = os.path.join(directory, "channel")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            server.settimeout(30)
            helper = subprocess.Popen(
                unshare.helper_argv("vectraguard.network.plant_helper", str(pid), path,
                                    *(f"{address}:{port}" for address, port in endpoints)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=unshare.HELPER_CWD)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                helper.kill()
                raise OSError(0, "the podman unshare helper did not answer") from None
            with conn:
                fds = array.array("i")
                message, ancillary, _, _ = conn.recvmsg(256, socket.CMSG_SPACE(len(endpoints) * fds.itemsize))
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            _, stderr = helper.communicate(timeout=30)
    if not message.startswith(b"ok") or len(fds) != len(endpoints):
        for fd in fds:
            os.close(fd)
        detail = message.decode(errors="replace") or stderr.decode(errors="replace").strip()
        raise OSError(0, f"the podman unshare helper failed: {detail}")
    return [socket.socket(fileno=fd) for fd in fds]
