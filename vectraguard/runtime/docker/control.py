"""Docker Engine's side of the session commands (runtime/control.py's SessionControl), API v1.41.

Exec (https://docs.docker.com/engine/api/v1.41/#tag/Exec): POST /containers/{id}/exec, POST
/exec/{id}/start (hijacked like attach; without a terminal the stream is multiplexed in the same
8-byte frames), GET /exec/{id}/json (Running, ExitCode, Pid). Docker runs the process with the
container's own settings: its capabilities (none: `CapDrop: ALL`, an exec that is not `Privileged`
gets the container's), no_new_privs and seccomp filter (runc exec reuses the container's config), in
its namespaces and cgroup; the user is given (the sandbox's). Docker keeps an exec's state until the
container is removed, so its exit code does not go missing as Podman's may. With "AttachStdin"
Docker closes the process's stdin when our end of the stream half-closes (moby daemon/exec.go:
CloseStdin), so a piped stdin ends as it should.

Usage: GET /containers/{id}/stats?stream=false&one-shot=true, one call per container (Docker has no
call for several): cpu_stats.cpu_usage.total_usage (nanoseconds) and memory_stats.usage (bytes, page
cache included, as Podman's MemUsage), read by Docker from the container's cgroup. `one-shot` answers
at once instead of after Docker's one-second sampling (the caller samples twice itself: sessions/usage.py).
"""

from __future__ import annotations

import socket

from vectraguard import errors
from vectraguard.runtime.control import ClientControl, ExecStatus
from vectraguard.runtime.docker.api import Docker, DockerError, answer_id

STATS_TIMEOUT_S = 10.0


class DockerControl(ClientControl):
    client: Docker
    name = "docker"

    @classmethod
    def connect(cls) -> DockerControl:
        from vectraguard.runtime.docker import daemon

        return cls(daemon.connect())

    def usage(self, cids: list[str]) -> dict[str, tuple[int | None, int | None]]:
        readings: dict[str, tuple[int | None, int | None]] = {}
        for cid in cids:
            try:
                stats = self.client.json("GET", f"/containers/{cid}/stats",
                                         params={"stream": "0", "one-shot": "1"}, timeout=STATS_TIMEOUT_S)
            except (DockerError, OSError, errors.RuntimeUnavailable):
                continue
            cpu = ((stats or {}).get("cpu_stats") or {}).get("cpu_usage") or {}
            memory = (stats or {}).get("memory_stats") or {}
            # A container that has stopped answers zeros and no memory figures: not known, rather than 0.
            readings[cid] = (_int(cpu.get("total_usage")) if cpu.get("total_usage") else None,
                             _int(memory.get("usage")) if memory.get("usage") else None)
        return readings

    def exec_start(self, cid: str, user: str, cmd: list[str], with_stdin: bool) -> tuple[str, socket.socket, bytes]:
        client = self.client
        body = {"AttachStdin": with_stdin, "AttachStdout": True, "AttachStderr": True, "Cmd": cmd,
                "User": user, "Tty": False, "Privileged": False}
        try:
            exec_id = answer_id(client.json_object("POST", f"/containers/{cid}/exec", body=body), client, "/containers/{id}/exec")
        except DockerError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: Docker refused the exec: {exc.message}") from None
        sock = client._connect(client.timeout)
        try:
            client._send(sock, "POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": False},
                         upgrade=True)
            status, headers, rest = client._read_head(sock)
            if status not in (101, 200):
                text = client._read_body(sock, headers, rest)
                raise errors.RuntimeUnavailable(f"vectraguard: Docker could not start the exec: {text[:500]!r}")
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise errors.RuntimeUnavailable(f"vectraguard: the connection to Docker broke starting the exec: "
                                            f"{exc}") from None
        except ValueError:
            sock.close()
            raise client.malformed("POST", "/exec/{id}/start", "is not valid HTTP") from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return exec_id, sock, rest

    def exec_status(self, exec_id: str) -> ExecStatus | None:
        try:
            state = self.client.json_object("GET", f"/exec/{exec_id}/json")
        except DockerError as exc:
            if exc.status == 404:
                return ExecStatus(0, None, gone=True)
            raise errors.RuntimeUnavailable(f"vectraguard: Docker failed during the exec: {exc.message}") from None
        ended = not state.get("Running") and state.get("ExitCode") is not None
        return ExecStatus(int(state.get("Pid") or 0), int(state["ExitCode"]) if ended else None)


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
