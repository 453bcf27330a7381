"""Fresh TCP sockets that belong to a sandbox's network namespace.

A socket belongs to the network namespace its creator was in when it was
made, for its whole life, whichever process or thread uses it later. So a
socket made inside the sandbox's namespace and connected to 127.0.0.1:PORT (or
[::1]:PORT) reaches the sandbox's own loopback — and nothing else: the namespace has no
route to the host's (network/publish.py uses them for published ports; the
reverse of network/plant.py).

Rootful: one thread of ours enters the sandbox's namespace (setns(2) moves
the calling thread only) and never leaves it; it makes every socket.
Rootless: the namespace belongs to the user's rootless user namespace,
which only a process inside it may enter: a helper under `podman unshare`
(netns_socket_helper.py) enters it, and for each request byte ("4" or "6":
the address family) makes a socket and passes it back over a Unix socket (SCM_RIGHTS). Both make sockets only;
where a socket connects is decided by the caller, never by the sandbox.
"""

from __future__ import annotations

import array
import os
import socket
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from vectraguard.runtime import unshare

HELPER_ANSWER_S = 30.0
# The request byte the rootless helper reads: which family of socket to make (netns_socket_helper.py).
REQUESTS = {socket.AF_INET: b"4", socket.AF_INET6: b"6"}


class SocketMaker(Protocol):
    def make(self, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
        """A new stream socket of `family` (AF_INET or AF_INET6) in the sandbox's namespace; OSError if it
        cannot be made."""

    def close(self) -> None: ...


class ThreadInNetns:
    """Rootful: a thread that entered the namespace of `pid` (the container's
    init, before its command starts) makes the sockets. The namespace is held
    open by its descriptor until close()."""

    def __init__(self, pid: int) -> None:
        from vectraguard.network.plant import _setns

        self._ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-netns",
                                            initializer=_setns, initargs=(self._ns,))
        self.make()  # fails now, not on the first connection, when the namespace cannot be entered

    def make(self, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
        try:
            return self._executor.submit(socket.socket, family, socket.SOCK_STREAM).result()
        except RuntimeError as exc:  # BrokenThreadPool: the thread could not enter the namespace
            raise OSError(0, f"cannot enter the sandbox's network namespace ({exc})") from None

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        os.close(self._ns)


class RootlessHelper:
    """Rootless: a helper under `podman unshare` in the sandbox's namespace
    makes the sockets; requests are serialised (one byte, one descriptor)."""

    def __init__(self, pid: int) -> None:
        self._lock = threading.Lock()
        with tempfile.TemporaryDirectory(prefix="vg-publish-") as directory:
            path = os.path.join(directory, "channel")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
                server.bind(path)
                server.listen(1)
                server.settimeout(HELPER_ANSWER_S)
                self._helper = subprocess.Popen(
                    unshare.helper_argv("vectraguard.network.netns_socket_helper", str(pid), path),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    cwd=unshare.HELPER_CWD)
                try:
                    self._channel, _ = server.accept()
                except TimeoutError:
                    self._stop()
                    raise OSError(0, "the podman unshare helper did not answer") from None
        self._channel.settimeout(HELPER_ANSWER_S)
        try:
            self.make().close()  # the helper is in the namespace and answers
        except OSError:
            self.close()
            raise

    def make(self, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
        with self._lock:
            try:
                self._channel.sendall(REQUESTS[family])
                fds = array.array("i")
                message, ancillary, _, _ = self._channel.recvmsg(256, socket.CMSG_SPACE(fds.itemsize))
            except OSError as exc:
                raise OSError(0, f"the podman unshare helper is gone ({exc})") from None
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if message != b"ok" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise OSError(0, f"the podman unshare helper failed: {message.decode(errors='replace') or 'no answer'}")
        return socket.socket(fileno=fds[0])

    def _stop(self) -> None:
        self._helper.kill()
        self._helper.wait()
        if self._helper.stderr is not None:
            self._helper.stderr.close()

    def close(self) -> None:
        self._channel.close()  # the helper reads end-of-file and exits
        try:
            self._helper.wait(timeout=HELPER_ANSWER_S)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()
        if self._helper.stderr is not None:
            self._helper.stderr.close()


def maker_for(pid: int, rootless: bool) -> SocketMaker:
    """The way to make sockets in the namespace of `pid` (OSError when there is none)."""
    return RootlessHelper(pid) if rootless else ThreadInNetns(pid)
