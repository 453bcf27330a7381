"""Run under `podman unshare` (rootless): make sockets in a sandbox's network namespace.

    python -m vectraguard.network.netns_socket_helper PID SOCKET

Enters the network namespace of PID (a rootless sandbox's, which belongs to
the user's rootless user namespace, where `podman unshare` starts us),
connects to the Unix socket SOCKET, and for each byte it reads there makes
an unconnected stream socket ("6": AF_INET6, anything else: AF_INET) and passes it back (SCM_RIGHTS), with
"ok". It never connects anything itself. It exits at end-of-file: when the
vectraguard process that started it closes the channel or dies.
"""

from __future__ import annotations

import array
import os
import socket
import sys

from vectraguard.network.plant import _setns


def main(argv: list[str]) -> int:
    pid, channel_path = argv
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(channel_path)
        try:
            ns = os.open(f"/proc/{int(pid)}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            _setns(ns)  # this process never comes back: all it makes belongs to the sandbox's namespace
            os.close(ns)
        except OSError as exc:
            channel.recv(1)
            channel.sendall(f"error {exc.strerror}".encode())
            return 1
        while request := channel.recv(1):
            try:
                made = socket.socket(socket.AF_INET6 if request == b"6" else socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:
                channel.sendall(f"error {exc.strerror}".encode())
                continue
            with made:
                channel.sendmsg([b"ok"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [made.fileno()]))])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
