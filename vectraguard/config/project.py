"""Finding the project file (.vectraguard.yaml) and deciding whether to use it.

Searched from the working directory upward, stopping at the repository root
(a directory with .git) or at a filesystem boundary.

Whose file it is decides what happens to it:

- a file someone else controls is *ignored*, with a one-line notice on
  stderr, and the search goes on upward as if it were not there: owned by
  another user (the file, or the symlink that names it), in a directory
  owned by another user (who can replace it at will), or root's but
  writable by every user. A file dropped in `/tmp` by another user must
  never configure, nor block, the runs of anyone working below it;
- the caller's own file (or root's) is *used* once trusted, and refused
  until then. It must be a regular file inside the repository (a symlink
  may not lead out of it) and, if it is the caller's, not writable by
  others — those are the caller's own mistakes to fix, so they refuse.

The checks are made on the file as opened (fstat of the descriptor whose
bytes are read), so a file swapped between check and read is caught.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from vectraguard import diag
from vectraguard.config import trust
from vectraguard.config.layers import Layer, load_bytes
from vectraguard.config.problems import Problem, raise_if_any
from vectraguard.config.yamlio import MAX_FILE_BYTES
from vectraguard.errors import ConfigError
from vectraguard.records import record

FILE_NAME = ".vectraguard.yaml"
ROOT_UID = 0

_noticed: set[str] = set()  # each ignored file is mentioned once per process


@record
class ProjectFile:
    """A project file found for a working directory."""

    path: Path  # as found (absolute, not resolved)
    root: Path  # the directory searched up to (repository root or boundary)


def find(cwd: str) -> ProjectFile | None:
    """The nearest project file at or above `cwd` that is the caller's or
    root's; files someone else controls are skipped with a notice."""
    for here in _searched(cwd):
        candidate = here / FILE_NAME
        if os.path.lexists(candidate):
            why = foreign(candidate)
            if not why:
                return ProjectFile(candidate, repository_root(here) or here)
            notice(candidate, why)
    return None


def places(cwd: str) -> list[Path]:
    """Every path `find` looks at for `cwd`, nearest first, whether a file is
    there or not: `untrust` forgets a file that is gone for now (a branch switch)."""
    return [here / FILE_NAME for here in _searched(cwd)]


def _searched(cwd: str) -> Iterator[Path]:
    """`cwd`, then each directory above it, up to and including the repository
    root (the first with .git) or the last one on `cwd`'s filesystem."""
    here = Path(cwd)
    try:
        device = os.stat(here).st_dev
    except OSError:
        return  # a working directory the caller cannot reach by its path: nothing above it is read
    while True:
        yield here
        if (here / ".git").exists() or here.parent == here:
            return
        try:
            if os.stat(here.parent).st_dev != device:
                return
        except OSError:
            return
        here = here.parent


def _ours(uid: int) -> bool:
    return uid in (os.geteuid(), ROOT_UID)


def foreign(path: Path) -> str:
    """Why `path` is under someone else's control, or "" if it is the
    caller's (or root's) to answer for."""
    try:
        entry = os.lstat(path)
        directory = os.stat(path.parent)
    except OSError:
        return ""  # gone or unreadable: reading it says so, if it is ours
    if not _ours(entry.st_uid):
        return f"it is owned by another user (uid {entry.st_uid})"
    if not _ours(directory.st_uid):
        return f"its directory is owned by another user (uid {directory.st_uid}), who can replace it"
    try:
        target = os.stat(path)
    except OSError:
        return ""  # the caller's own dangling or unreadable symlink: refused when read
    return _foreign_target(target)


def _foreign_target(info: os.stat_result) -> str:
    if not _ours(info.st_uid):
        return f"it leads to a file owned by another user (uid {info.st_uid})"
    if info.st_uid != os.geteuid() and info.st_mode & stat.S_IWOTH:
        # root's file, open to everyone: whoever wrote it last is unknown.
        return "it is root's but writable by every user"
    if info.st_uid != os.geteuid() and info.st_mode & stat.S_IWGRP:
        return f"it is root's but writable by group {info.st_gid}"
    return ""


def notice(path: Path, why: str) -> None:
    if str(path) not in _noticed:
        _noticed.add(str(path))
        diag.notice(f"vectraguard: notice: ignoring {path}: {why}; only your own or root's project files are used")


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
    try:
        # Non-blocking: a FIFO put in its place must not hang the run.
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"vectraguard: cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_opened(path, os.fstat(fd))
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"vectraguard: cannot use {path}",
                          details=[f"{path}: larger than the {MAX_FILE_BYTES // 1024} KiB limit"])
    return raw


def _check_opened(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"vectraguard: {path} is not a regular file")
    why = _foreign_target(info)
    if why:
        # It passed `find` a moment ago: someone swapped it since.
        raise ConfigError(f"vectraguard: {path} changed while it was read ({why})", hint="run again")
    if info.st_mode & stat.S_IWOTH:
        raise ConfigError(f"vectraguard: {path} is writable by every user", hint=f"chmod o-w {path}")


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
    layer = load_bytes(raw, project.path, "project")
    refuse_host_only_keys(layer)
    return layer


# Where this machine's traffic goes and how names resolve on the host side
# belong to the user and the administrator: a repository (even one trusted
# for its sandbox settings) must not route egress through a proxy of its
# choosing, carry proxy credentials, or rename hosts. Nor may it accept, for
# the person who runs it, Docker without user-namespace remapping (the
# sandbox's uids then being the host's own).
HOST_ONLY_KEYS = ("network.upstream_proxy", "network.no_proxy", "network.hosts_file", "engine.userns")


def refuse_host_only_keys(layer: Layer) -> None:
    problems = [Problem(layer.origin(f"profiles.{name}.{key}"), f"profiles.{name}.{key}",
                        "not accepted from a project file; set it in your own profile "
                        "($XDG_CONFIG_HOME/vectraguard/profiles.d/) or the system's")
                for name, body in sorted(layer.data.get("profiles", {}).items())
                for key in HOST_ONLY_KEYS if _has(body, key)]
    raise_if_any(problems, f"vectraguard: cannot use {layer.source}")


def _has(body: dict[str, object], key: str) -> bool:
    section, _, leaf = key.partition(".")
    node = body.get(section)
    return isinstance(node, dict) and leaf in node
