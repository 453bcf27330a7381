"""A minimal client for Podman's libpod REST API over its Unix socket.

Why not podman-py here: `import podman` pulls in requests and urllib3,
about 100 ms — more than half of a whole `podman run` — and podman-py does
not implement attach at all, which a run needs to stream stdin, stdout and
stderr. The run path needs six calls (create, attach, start, wait, kill,
delete) and one listing; this module speaks exactly those over a raw
socket using the standard library. podman-py serves the commands where
start-up time does not matter (image management, doctor).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime.unix_http import ApiError, UnixHttp
from vectraguard.runtime.unix_http import quote as _quote

API_PREFIX = "/v4.0.0/libpod"


class LibpodError(ApiError):
    """Podman answered with an error status."""


class Libpod(UnixHttp):
    service = "the Podman service"
    engine = "Podman"
    prefix = API_PREFIX
    host = "podman"
    error = LibpodError

    # -- the calls the run path makes ---------------------------------------------------
    def ping(self) -> bool:
        try:
            status, _, _ = self._exchange("GET", "/_ping", timeout=2.0)
        except (OSError, RuntimeUnavailable):
            return False
        return status == 200

    def create(self, specgen: dict[str, Any]) -> str:
        return str(self.json("POST", "/containers/create", body=specgen)["Id"])

    def init(self, cid: str) -> None:
        """Initialise a created container (its namespaces, mounts and conmon) without starting its command."""
        self.json("POST", f"/containers/{cid}/init")

    def image_id(self, name: str) -> str:
        """The ID (sha256 hex) of the image `name` stands for now."""
        return str(self.json("GET", f"/images/{_quote(name)}/json")["Id"])

    def start(self, cid: str) -> None:
        self.json("POST", f"/containers/{cid}/start")

    def kill(self, cid: str, signal: str, timeout: float | None = None) -> None:
        """RuntimeUnavailable when Podman does not answer within `timeout` seconds."""
        self.json("POST", f"/containers/{cid}/kill", params={"signal": signal}, timeout=timeout)

    def wait(self, cid: str, timeout: float) -> int:
        # No condition: Podman then waits for conmon, which waits for its
        # cleanup process — so the removal that follows does not find the
        # mounts still busy. The poll interval defaults to 250 ms, far too
        # slow; but polling faster than ~25 ms competes with that cleanup
        # process for the container and often delays it by ~50 ms (measured
        # here on Podman 4.3: 10 ms gave 33 or 85 ms, 30 ms gave 33-40 ms).
        result = self.json("POST", f"/containers/{cid}/wait", params={"interval": "30ms"}, timeout=timeout)
        return int(result)

    def resize(self, cid: str, height: int, width: int) -> None:
        self.json("POST", f"/containers/{cid}/resize", params={"h": str(height), "w": str(width)})

    def inspect(self, cid: str) -> dict[str, Any]:
        return self.json("GET", f"/containers/{cid}/json")  # type: ignore[no-any-return]

    def remove(self, cid: str, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                self.json("DELETE", f"/containers/{cid}", params={"force": "true", "timeout": "0"})
                return
            except LibpodError as exc:
                if exc.status == 404:
                    return
                # Right after exit, Podman's own cleanup may still hold the
                # container's mounts ("device or resource busy"): try again.
                if attempt == attempts - 1 or "busy" not in exc.message:
                    raise
                time.sleep(0.02 * (attempt + 1))

    def list_labelled(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        return self.json("GET", "/containers/json", params={"all": "true", "filters": filters})  # type: ignore[no-any-return]

    def attach(self, cid: str) -> tuple[socket.socket, bytes]:
        """Hijack a connection for the container's multiplexed stdio stream."""
        params = {"stdin": "true", "stdout": "true", "stderr": "true", "stream": "true"}
        return self._hijack("POST", f"/containers/{cid}/attach", params)
