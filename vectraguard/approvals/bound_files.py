"""The files a remembered approval is bound to: path, where it leads, SHA-256.

A remembered yes holds only while every file the command runs
(approvals/script_files.py) is still the one approved: same path, same
target (a file swapped for a symbolic link to elsewhere is another file,
whatever it holds) and same content. A file that cannot be read, or that
the command names in a way that cannot be known, makes the binding
incomplete: such a command is never remembered, and an approval never
matches it (fail closed).

Files are read safely: regular files only (not a FIFO that would block,
nor a device), nothing under /proc, /sys or /dev, at most MAX_BYTES, the
last component not followed again once resolved (O_NOFOLLOW).
"""

from __future__ import annotations

import os
import stat

from vectraguard import records
from vectraguard.approvals import observed

MAX_BYTES = 64 * 1024 * 1024
MAX_FILES = 64
NOT_READ = ("/proc", "/sys", "/dev")  # kernel and device files: not content an approval can be bound to


@records.record
class BoundFile:
    """One file an approval is bound to."""

    path: str  # absolute, as the command names it
    target: str  # the path with symbolic links resolved: what is read
    sha256: str  # hex digest of its content


@records.record
class Binding:
    """What a command runs, as found now."""

    files: tuple[BoundFile, ...]
    problems: tuple[str, ...]  # "PATH: why it cannot be bound", one per file that cannot

    @property
    def complete(self) -> bool:
        return not self.problems

    def matches(self, files: tuple[BoundFile, ...]) -> bool:
        """Whether an approval bound to `files` holds for what the command runs now."""
        return self.complete and self.files == files


def bind(command: tuple[str, ...] | str, cwd: str) -> Binding:
    """The files `command` (an argv, or a command line) runs from `cwd`, read now."""
    # The command reader (risk/*) only here: a cached gate decision checks
    # digests (approvals/observed.py) without importing it.
    from vectraguard.approvals import script_files

    files: list[BoundFile] = []
    problems: list[str] = []
    found = script_files.named(command, cwd)
    if len(found) > MAX_FILES:
        return Binding((), (f"the command runs more than {MAX_FILES} files",))
    for item in found:
        if item.path is None:
            problems.append(f"{item.text}: cannot tell which file this runs")
            continue
        # Through `observed`, which notes these looks for a cached gate decision to check again.
        target = observed.realpath(item.path)
        digest, why = (None, "a kernel or device file") if _kernel(item.path) else observed.sha256(target)
        if digest is None:
            problems.append(f"{item.path}: {why}")
        else:
            files.append(BoundFile(item.path, target, digest))
    return Binding(tuple(files), tuple(problems))


def sha256(path: str) -> tuple[str | None, str]:
    """(hex digest, "") of a regular file's content, or (None, why not)."""
    if _kernel(path):
        return None, "a kernel or device file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, "no such file"
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > MAX_BYTES:
            return None, f"larger than {MAX_BYTES // (1024 * 1024)} MiB"
        import hashlib  # here: OpenSSL is loaded only for a line that runs a script (digests.py)

        digest, total = hashlib.sha256(), 0
        while chunk := os.read(fd, 1024 * 1024):
            total += len(chunk)
            if total > MAX_BYTES:  # it grew while being read
                return None, f"larger than {MAX_BYTES // (1024 * 1024)} MiB"
            digest.update(chunk)
        return digest.hexdigest(), ""
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__
    finally:
        os.close(fd)


def _kernel(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") for top in NOT_READ)
