"""Podman's side of the session commands (runtime/control.py's SessionControl) over its libpod API.

Exec: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked, multiplexed like attach), GET
/exec/{id}/json. The process gets the container's own process settings: its user, capabilities
(none), no_new_privs and seccomp filter (runc exec reuses the container's config). Usage: GET
/containers/stats?stream=false (`CPUNano`, `MemUsage`, read by Podman from the container's cgroup).
"""

from __future__ import annotations

import socket

from vectraguard import errors
from vectraguard.runtime.control import ClientControl, ExecStatus
from vectraguard.runtime.libpod import Libpod, LibpodError


class PodmanControl(ClientControl):
    client: Libpod
    name = "podman"

    @classmethod
    def connect(cls) -> PodmanControl:
        from vectraguard.runtime import host, service

        return cls(service.connect(host.detect().oci_runtime))

    def usage(self, cids: list[str]) -> dict[str, tuple[int | None, int | None]]:
        query = "&".join(f"containers={cid}" for cid in cids)  # ids are hex: nothing to quote
        try:
            answer = self.client.json("GET", f"/containers/stats?stream=false&{query}")
        except (LibpodError, OSError, errors.RuntimeUnavailable):
            return {}
        return {str(stats.get("ContainerID", "")): (_int(stats.get("CPUNano")), _int(stats.get("MemUsage")))
                for stats in (answer or {}).get("Stats") or []}

    def exec_start(self, cid: str, user: str, cmd: list[str], with_stdin: bool) -> tuple[str, socket.socket, bytes]:
        client = self.client
        body = {"AttachStdin": with_stdin, "AttachStdout": True, "AttachStderr": True, "Cmd": cmd,
                "User": user, "Tty": False, "Privileged": False}
        try:
            exec_id = str(client.json("POST", f"/containers/{cid}/exec", body=body)["Id"])
        except LibpodError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: Podman refused the exec: {exc.message}") from None
        sock = client._connect(client.timeout)
        client._send(sock, "POST", f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": False}, upgrade=True)
        status, headers, rest = client._read_head(sock)
        if status not in (101, 200):
            body_text = client._read_body(sock, headers, rest)
            sock.close()
            raise errors.RuntimeUnavailable(f"vectraguard: Podman could not start the exec: {body_text[:500]!r}")
        sock.settimeout(None)
        return exec_id, sock, rest

    def exec_status(self, exec_id: str) -> ExecStatus | None:
        try:
            state = self.client.json("GET", f"/exec/{exec_id}/json")
        except LibpodError as exc:
            # Podman 4.3 answers 404, or 500 "container ... does not exist in database" while it drops the session.
            if exc.status == 404:
                return ExecStatus(0, None, gone=True)
            if "does not exist in database" in exc.message:
                return None
            raise errors.RuntimeUnavailable(f"vectraguard: Podman failed during the exec: {exc.message}") from None
        ended = not state.get("Running") and state.get("ExitCode") is not None
        return ExecStatus(int(state.get("Pid") or 0), int(state["ExitCode"]) if ended else None)


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
