"""Run under `podman unshare` (rootless): plant listeners, hand them back.

A rootless sandbox's network namespace belongs to the user's rootless user
namespace; only a process inside that user namespace may setns into it.
`podman unshare` starts us there. We bind the listeners in the sandbox's
namespace and pass the file descriptors back over a Unix socket
(SCM_RIGHTS) to the vectraguard process that asked, then exit.

    python -m vectraguard.network.plant_helper PID SOCKET ADDRESS:PORT...
"""

from __future__ import annotations

import array
import socket
import sys

from vectraguard.network.plant import listen_in


def main(argv: list[str]) -> int:
    pid, channel_path, *specs = argv
    endpoints = [(spec.rsplit(":", 1)[0], int(spec.rsplit(":", 1)[1])) for spec in specs]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(channel_path)
        try:
            listeners = listen_in(int(pid), endpoints, return_home=False)
        except OSError as exc:
            channel.sendall(f"error {exc.strerror}".encode())
            return 1
        fds = array.array("i", [listener.fileno() for listener in listeners])
        channel.sendmsg([b"ok"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
