"""Asking the host what works, by trying it: tools' versions, OCI runtimes.

Used by `vectraguard doctor`, where a slow or hung tool must not hang the
report: every call has a timeout, and no call raises — a failure is data.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass

TOOL_TIMEOUT_S = 15.0
CONTAINER_TIMEOUT_S = 90.0  # the first container of a boot can be slow
# Podman finds OCI runtimes and network helpers in these directories whatever
# PATH says (containers.conf), and system tools such as nft live in sbin,
# which an ordinary user's PATH often lacks: look them up the same way.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/libexec/podman"
_NOISE = ("failed to connect to syslog",)  # Podman on hosts without a syslog socket


@dataclass(frozen=True)
class ToolResult:
    found: bool
    status: int  # -1: not found, timed out or could not start
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    def reason(self) -> str:
        """The line most likely to explain a failure."""
        lines = [line.strip() for line in self.stderr.splitlines()
                 if line.strip() and not any(noise in line for noise in _NOISE)]
        return lines[-1] if lines else f"exit status {self.status}"


def run_tool(argv: list[str], timeout: float = TOOL_TIMEOUT_S) -> ToolResult:
    if shutil.which(argv[0]) is None:
        return ToolResult(False, -1, "", f"{argv[0]}: not found in PATH")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ToolResult(True, -1, "", f"{argv[0]} did not answer within {timeout:g} s")
    except OSError as exc:
        return ToolResult(True, -1, "", f"{argv[0]}: {exc.strerror or exc}")
    return ToolResult(True, done.returncode, done.stdout, done.stderr)


def system_binary(name: str) -> str:
    """The program's path in the system directories, or the bare name (then: not found)."""
    return shutil.which(name, path=SYSTEM_PATH) or name


def first_line(result: ToolResult) -> str:
    return (result.stdout.strip().splitlines() or [""])[0]


def oci_runtime_works(runtime: str, image: str, *, nofile: int, nproc: int) -> ToolResult:
    """Start a trivial container with `runtime`, with rlimits we would set ourselves."""
    name = f"vectraguard-doctor-{secrets.token_hex(4)}"
    result = run_tool([
        "podman", "run", "--rm", "--name", name, "--pull=never", "--runtime", runtime, "--network", "none",
        "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
        image, "true",
    ], timeout=CONTAINER_TIMEOUT_S)
    if result.status == -1 and result.found:
        # Podman was killed at the timeout, before its --rm could act.
        run_tool(["podman", "rm", "--force", "--time", "0", "--ignore", name])
    return result
