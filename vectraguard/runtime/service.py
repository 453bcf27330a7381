"""Finding a Podman service to talk to, or starting a private one.

Order: $CONTAINER_HOST (unix:// only), the system's usual socket, then our
own private service. The private service is `podman system service` on a
socket in a directory only this user can enter, with an idle timeout, so it
is reused by the next runs and goes away by itself when unused.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from vectraguard.errors import RuntimeUnavailable
from vectraguard.paths import ensure_private_dir, runtime_dir
from vectraguard.runtime.libpod import Libpod

IDLE_TIMEOUT_S = 600
START_DEADLINE_S = 20.0


def _usual_sockets() -> list[str]:
    host = os.environ.get("CONTAINER_HOST", "")
    if host.startswith("unix://"):
        return [host[len("unix://"):]]
    if os.geteuid() == 0:
        return ["/run/podman/podman.sock"]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return [f"{xdg}/podman/podman.sock"] if xdg else []


def private_socket() -> Path:
    return runtime_dir() / "podman.sock"


def connect() -> Libpod:
    """A client for a Podman service that answers; start ours if none does."""
    for path in _usual_sockets():
        if os.path.exists(path):
            client = Libpod(path)
            if client.ping():
                return client
    client = Libpod(str(private_socket()))
    if client.ping():
        return client
    return _start_private_service()


def _start_private_service() -> Libpod:
    import subprocess  # only needed on the first run after the service idled out

    directory = runtime_dir()
    ensure_private_dir(directory)
    sock = directory / "podman.sock"
    client = Libpod(str(sock))
    # Two runs starting at once must not start two services on one socket.
    with open(directory / "service.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if client.ping():
            return client
        sock.unlink(missing_ok=True)
        log = open(directory / "service.log", "ab")
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "XDG_RUNTIME_DIR", "LANG", "USER", "LOGNAME", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        try:
            subprocess.Popen(
                ["podman", "system", "service", f"--time={IDLE_TIMEOUT_S}", f"unix://{sock}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True, close_fds=True,
                # The service outlives this run, and so do the conmon processes
                # it starts for later runs: they must not sit in the caller's
                # directory, which may be deleted ("Failed to get working
                # directory", and every later run fails until the service idles out).
                cwd="/",
            )
        except FileNotFoundError:
            raise RuntimeUnavailable(
                "vectraguard: podman is not installed",
                hint="install it (Debian/Ubuntu: apt-get install podman runc), then run `vectraguard doctor`",
            ) from None
        finally:
            log.close()
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if client.ping():
                return client
            time.sleep(0.05)
    raise RuntimeUnavailable(
        "vectraguard: the Podman service did not start",
        hint=f"see {directory / 'service.log'} and run `vectraguard doctor`",
    )
