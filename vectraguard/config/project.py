"""Finding the project file (.vectraguard.yaml) and deciding whether to use it.

Searched from the working directory upward, stopping at the repository root
(a directory with .git) or at a filesystem boundary. The file must be a
regular file inside the repository (a symlink may not lead out of it), not
writable by others and owned by the caller or root — otherwise someone else
could change what it asks for after it was trusted.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from vectraguard.config import trust
from vectraguard.config.layers import Layer, load_bytes
from vectraguard.config.yamlio import read_config_bytes
from vectraguard.errors import ConfigError

FILE_NAME = ".vectraguard.yaml"


@dataclass(frozen=True)
class ProjectFile:
    """A project file found for a working directory."""

    path: Path  # as found (absolute, not resolved)
    root: Path  # the directory searched up to (repository root or boundary)


def find(cwd: str) -> ProjectFile | None:
    here = Path(cwd)
    device = os.stat(here).st_dev
    while True:
        candidate = here / FILE_NAME
        if os.path.lexists(candidate):
            return ProjectFile(candidate, repository_root(here) or here)
        if (here / ".git").exists() or here.parent == here:
            return None
        try:
            if os.stat(here.parent).st_dev != device:
                return None
        except OSError:
            return None
        here = here.parent


def repository_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` with a `.git`."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


class UntrustedProject(ConfigError):
    """A project file exists here and the user has not trusted this version of it."""


def read_checked(project: ProjectFile) -> bytes:
    """The file's bytes, after the safety checks; ConfigError if unsafe."""
    path = project.path
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(project.root))
    if real != root / FILE_NAME and root not in real.parents:
        raise ConfigError(f"vectraguard: {path} is a symlink out of the repository (to {real})",
                          hint="a project file must live in the repository it configures")
    info = os.stat(real)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"vectraguard: {path} is not a regular file")
    if info.st_mode & stat.S_IWOTH:
        raise ConfigError(f"vectraguard: {path} is writable by every user",
                          hint=f"chmod o-w {path}")
    if info.st_uid not in (os.geteuid(), 0):
        raise ConfigError(f"vectraguard: {path} is owned by another user (uid {info.st_uid})",
                          hint="only your own or root's project files are used")
    raw, problems = read_config_bytes(real)
    if problems or raw is None:
        raise ConfigError(f"vectraguard: cannot use {path}", details=[str(p) for p in problems])
    return raw


def load_trusted(project: ProjectFile) -> Layer:
    raw = read_checked(project)
    if not trust.is_trusted(project.path, raw):
        directory = project.path.parent
        raise UntrustedProject(
            f"vectraguard: {project.path} is not trusted (new or changed since you trusted it)",
            hint=f"read it, then `vectraguard trust {directory}`; or run with --ignore-project",
        )
    # The very bytes whose digest was checked: a file changed in between
    # cannot slip through.
    return load_bytes(raw, project.path, "project")
