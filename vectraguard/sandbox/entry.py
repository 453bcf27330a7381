"""The run's command, handed to a container that was created before it was known.

A sandbox's container runs `vectraguard-entry` (contrib/entry/, built static
by contrib/install.sh), bind-mounted read-only at ENTRY_TARGET; it reads the
command, its environment and working directory from the file `command` in a
host directory of ours, bind-mounted read-only at RUN_DIR_TARGET, and execs
it. A pooled container (vectraguard/pool/) is created and initialised
before its run; the file is written when a run claims it, just before the
start. Every run goes this way when the program is installed, so that a
pooled run and a cold one are the same from inside.

The directory is private to this user on the host (under the runtime
directory, 0700), world-readable inside the sandbox only: the file holds
the sandbox's own environment, which its processes can read anyway.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ENTRY_TARGET = "/run/vectraguard-entry"
RUN_DIR_TARGET = "/run/vectraguard-run"
COMMAND_FILE = "command"
EXEC_PREFIX = "exec-"  # + random hex: an exec's own command file, named as the program's argument
MAGIC = b"VGE1"
# In the program since it takes that argument and `--stop NAME` (contrib/entry/vectraguard-entry.c `protocol`).
ARGUMENT_PROTOCOL = b"vectraguard-entry-protocol: command-file-argument, stop"
# And since it takes `--await SECONDS` (Docker Engine: the command waits for START_FIFO, and is killed at
# SECONDS after the start, Docker's backstop for a killed `vectraguard`: runtime/docker/) as the container's
# init, PID 1 (`init`: an older one would be stopped by its command's `kill -STOP $PPID`, and reap nothing).
BACKSTOP_PROTOCOL = b"vectraguard-entry-protocol: command-file-argument, stop, await, backstop, init"
START_FIFO = "start"
START_WORD = b"start\n"


def installed_entry() -> str | None:
    """The installed `vectraguard-entry`, if it is there and only its owner
    (root or this user) can change it; else None (runs then give Podman the
    command directly, and there is no pool)."""
    path = os.path.join(sys.prefix, "libexec", "vectraguard-entry")
    try:
        info = os.stat(path)
    except OSError:
        return None
    if (not stat.S_ISREG(info.st_mode) or info.st_uid not in (0, os.geteuid())
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or not info.st_mode & stat.S_IXOTH):
        return None
    return path


def encode(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> bytes:
    """The file's bytes: "VGE1", CWD, NENV, NAME=VALUE..., NARGV, ARG..., each
    ending in NUL (the format vectraguard-entry.c reads). ValueError for a
    NUL inside a field or an empty command (neither can be exec'd)."""
    fields = [MAGIC, os.fsencode(cwd), str(len(env)).encode()]
    fields += [os.fsencode(f"{name}={value}") for name, value in env.items()]
    fields += [str(len(argv)).encode(), *(os.fsencode(arg) for arg in argv)]
    if not argv or any(b"\0" in field for field in fields):
        raise ValueError("a command, its environment and directory cannot hold NUL bytes")
    if any(not name or "=" in name for name in env):
        raise ValueError("an environment variable name must be non-empty and without '='")
    return b"".join(field + b"\0" for field in fields)


def write_command(directory: Path, argv: Sequence[str], env: Mapping[str, str], cwd: str,
                  name: str = COMMAND_FILE) -> None:
    """Write the command file `name` (the run's, or an exec's: EXEC_PREFIX...)
    into `directory` whole (a temporary file renamed into place), readable
    inside the sandbox whatever user it maps to."""
    data = encode(argv, env, cwd)
    temporary = directory / f".{name}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    os.rename(temporary, directory / name)


def make_run_dir(parent: Path, name: str) -> Path:
    """A fresh directory `parent/name` for one container's command file
    (`parent` private to this user, created if needed); the leaf is 0755
    so that the sandbox's user can read the file through the bind mount."""
    from vectraguard.paths import ensure_private_dir

    ensure_private_dir(parent.parent)
    ensure_private_dir(parent)
    directory = parent / name
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    return directory


def remove_run_dir(directory: Path) -> None:
    # An exec's files too (exec-*, exec-*.status): one whose `vectraguard exec` was killed leaves them;
    # and Docker's start FIFO, which a killed run leaves (runtime/docker/runtime.py).
    for leftover in (directory / COMMAND_FILE, directory / START_FIFO, *directory.glob(f".{COMMAND_FILE}.*"),
                     *directory.glob(f"{EXEC_PREFIX}*"), *directory.glob(f".{EXEC_PREFIX}*")):
        leftover.unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass
