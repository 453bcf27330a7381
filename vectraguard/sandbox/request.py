"""RunRequest: everything a user asked for in one invocation, before policy."""

from __future__ import annotations

from vectraguard import records


@records.record
class RunRequest:
    """What the caller asked for: the command, the profile, where, and per-run overrides."""

    argv: tuple[str, ...]
    profile: str
    cwd: str  # the caller's working directory, already made absolute
    host_env: tuple[tuple[str, str], ...]  # snapshot of the caller's environment
    session_id: str
    owner: str  # "<pid>:<process start time>" of this vectraguard, for the reaper
    image_override: str | None = None
    workdir_override: str | None = None
    terminal: bool = False
    # The host directory mounted as the workspace (None: cwd). Agents get the
    # whole repository they were started in, and start in cwd's place inside it.
    workspace: str | None = None
    # A named volume to serve as $HOME instead of a fresh tmpfs (agents'
    # persistent homes).
    home_volume: str | None = None

    @property
    def workspace_source(self) -> str:
        return self.workspace or self.cwd
