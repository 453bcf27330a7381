"""RunRequest: everything a user asked for in one invocation, before policy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunRequest:
    argv: tuple[str, ...]
    profile: str
    cwd: str  # the caller's working directory, already made absolute
    host_env: tuple[tuple[str, str], ...]  # snapshot of the caller's environment
    session_id: str
    owner: str  # "<pid>:<process start time>" of this vectraguard, for the reaper
    image_override: str | None = None
    workdir_override: str | None = None
    terminal: bool = False
