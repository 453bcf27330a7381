"""Finding a Podman service to talk to, or starting a private one.

The OCI runtime is a property of the service, not of the request: Podman
4.3's REST API ignores the `oci_runtime` a create asks for (see oci.py),
and only `podman --runtime NAME system service` (a global flag, before the
subcommand) decides what its containers get. Hence, for a runtime chosen by
host.pick_oci_runtime:

- $CONTAINER_HOST (unix:// only) is an explicit choice and is used as given;
  what its containers get is checked per container (oci.verify_runtime),
  and a mismatch is refused with the fix.
- The system's usual socket is used only when Podman's default will do
  (runtime None). A service we did not start cannot be told its runtime,
  and asking it (/info) costs ~300 ms on every run; on a host where crun is
  installed its default is crun, which cannot start anything on hybrid
  cgroups. Our private service uses the same storage (same user), so it
  sees the same images and containers.
- Our private service: `podman [--runtime NAME] system service` on a
  socket named for its runtime (`podman-runc-HASH.sock`; `podman.sock` for
  Podman's default), in a directory only this user can enter, with an idle
  timeout, so it is reused by the next runs and goes away by itself when
  unused. One socket per runtime means that a service started before this
  rule (on `podman.sock`, with Podman's default) is never taken for a runc
  one; it idles out.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path

from vectraguard.errors import RuntimeUnavailable
from vectraguard.paths import ensure_private_dir, runtime_dir
from vectraguard.runtime.libpod import Libpod

IDLE_TIMEOUT_S = 600
START_DEADLINE_S = 20.0
_RUNTIME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _usual_sockets(oci_runtime: str | None) -> list[str]:
    host = os.environ.get("CONTAINER_HOST", "")
    if host.startswith("unix://"):
        return [host[len("unix://"):]]
    if oci_runtime is not None:
        return []
    if os.geteuid() == 0:
        return ["/run/podman/podman.sock"]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return [f"{xdg}/podman/podman.sock"] if xdg else []


def _service_name(oci_runtime: str | None) -> str:
    """`podman` for Podman's default runtime, `podman-NAME` for a bare name,
    `podman-NAME-HASH` for a path (HASH: 8 hex digits of its SHA-256): a
    service started for another program of the same name is never reused."""
    if oci_runtime is None:
        return "podman"
    name = os.path.basename(oci_runtime)
    if not _RUNTIME_NAME.fullmatch(name):  # chosen by host.py, never by a user: a bug
        raise ValueError(f"not an OCI runtime name: {oci_runtime!r}")
    if "/" not in oci_runtime:
        return f"podman-{name}"
    from vectraguard.digests import sha256_hex

    return f"podman-{name}-{sha256_hex(oci_runtime.encode())[:8]}"


def private_socket(oci_runtime: str | None) -> Path:
    """Where our private service for `oci_runtime` listens (None: Podman's default)."""
    return runtime_dir() / f"{_service_name(oci_runtime)}.sock"


def connect(oci_runtime: str | None) -> Libpod:
    """A client for a Podman service whose containers get `oci_runtime`
    (host.HostFacts.oci_runtime; None: Podman's default); ours is started
    if none answers. Raises RuntimeUnavailable when Podman cannot be started."""
    for path in _usual_sockets(oci_runtime):
        if os.path.exists(path):
            client = Libpod(path)
            if client.ping():
                return client
    client = Libpod(str(private_socket(oci_runtime)))
    if client.ping():
        return client
    return _start_private_service(oci_runtime)


def service_argv(oci_runtime: str | None, sock: Path) -> list[str]:
    # --runtime is a global option: after `system service` Podman rejects it.
    runtime = ["--runtime", oci_runtime] if oci_runtime else []
    return ["podman", *runtime, "system", "service", f"--time={IDLE_TIMEOUT_S}", f"unix://{sock}"]


def _start_private_service(oci_runtime: str | None) -> Libpod:
    directory = runtime_dir()
    ensure_private_dir(directory)
    name = _service_name(oci_runtime)
    sock = private_socket(oci_runtime)
    client = Libpod(str(sock))
    # Two runs starting at once must not start two services on one socket.
    with open(directory / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if client.ping():
            return client
        sock.unlink(missing_ok=True)
        # Not CONTAINERS_CONF: it can redefine what the runtime's name runs, and
        # the service outlives this run (later runs without it would inherit it).
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "XDG_RUNTIME_DIR", "LANG", "USER", "LOGNAME", "CONTAINERS_STORAGE_CONF")}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        with open(directory / f"{name}.log", "ab") as log:
            _spawn(service_argv(oci_runtime, sock), log.fileno(), env)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if client.ping():
                return client
            time.sleep(0.05)
    raise RuntimeUnavailable(
        "vectraguard: the Podman service did not start",
        hint=f"see {directory / f'{name}.log'} and run `vectraguard doctor`",
    )


def _spawn(argv: list[str], log: int, env: dict[str, str]) -> None:
    import subprocess  # only needed on the first run after the service idled out

    try:
        subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
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
