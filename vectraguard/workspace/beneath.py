"""Reaching paths beneath the workspace root without following any link.

Everything `apply` and `diff` do to the real tree goes through a `Tree`: the
root is opened once with O_NOFOLLOW, and each directory beneath it is
opened component by component relative to its parent (openat-style
`dir_fd=` calls) with O_NOFOLLOW|O_DIRECTORY. A component that is a symlink
or not a directory is never traversed, so a link planted in the tree (by a
sandbox, or by anyone while a review is open) cannot send a write, a
delete or a read outside the workspace. Paths handed in must already be
clean relative paths (changeset.check_relative).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict
from types import TracebackType

DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_OPEN = 64  # directory fds kept at once
KEEP_WALKED = MAX_OPEN // 2  # a walk down a deep path keeps only its last levels open


class Unreachable(Exception):
    """A directory on the way is a symlink, not a directory, or unreadable."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason


class Tree:
    """The workspace root and the directories opened beneath it lately.

    An fd handed out is valid until the next call on the Tree: the cache
    is bounded (a change set can hold more directories than a process may
    keep open), and a miss may close the least recently used entry.
    """

    def __init__(self, root: str) -> None:
        try:
            self.root_fd = os.open(root, DIR_FLAGS)
        except OSError as exc:
            raise Unreachable(root, _describe(exc)) from None
        # Another filesystem mounted beneath the root is not part of the tree the
        # sandbox saw (the baseline does not enter it either): never entered.
        self.device = os.fstat(self.root_fd).st_dev
        self._dirs: OrderedDict[str, int] = OrderedDict({"": self.root_fd})

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def directory(self, path: str) -> int | None:
        """An O_PATH fd of directory `path` ('' is the root); None if a
        component is missing; Unreachable if one is a link or not a directory."""
        if path in self._dirs:
            self._dirs.move_to_end(path)
            return self._dirs[path]
        # From the nearest directory held open down one component at a time. A loop,
        # not recursion: a change set can be deeper than Python's stack, and its paths
        # longer than PATH_MAX (each open is relative to the directory above).
        start = _nearest_open(path, self._dirs)
        fd = self._dirs[path[:start]]
        names = (path[start + 1:] if start else path).split("/")
        end, passing = start, -1  # passing: an fd opened on the way, not kept
        try:
            for index, name in enumerate(names):
                end += len(name) + (1 if end else 0)
                child = self._open_below(fd, name, path, end)
                if passing >= 0:
                    os.close(passing)
                    passing = -1
                if child is None:
                    return None
                if len(names) - index <= KEEP_WALKED:
                    fd = self._keep(path[:end], child)
                else:
                    fd = passing = child
        finally:
            if passing >= 0:
                os.close(passing)
        return fd

    def _open_below(self, parent_fd: int, name: str, path: str, end: int) -> int | None:
        """The fd of `name` in `parent_fd` (path[:end] in the tree), checked like every directory."""
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unreachable(path[:end], self._why(parent_fd, name, exc)) from None
        if os.fstat(fd).st_dev != self.device:
            os.close(fd)
            raise Unreachable(path[:end], "is where another filesystem is mounted in the workspace (never entered)")
        return fd

    def _keep(self, path: str, fd: int) -> int:
        self._dirs[path] = fd
        if len(self._dirs) > MAX_OPEN:
            oldest = next(p for p in self._dirs if p)  # the root stays
            os.close(self._dirs.pop(oldest))
        return fd

    def parent(self, path: str) -> tuple[int | None, str]:
        """(fd of the directory holding `path` or None if it is missing, the last component)."""
        parent, _, name = path.rpartition("/")
        return self.directory(parent), name

    def lstat(self, path: str) -> os.stat_result | None:
        """The entry itself (never followed); None when it or a directory above is missing."""
        if not path:
            return os.fstat(self.root_fd)
        fd, name = self.parent(path)
        if fd is None:
            return None
        try:
            return os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return None

    def forget(self, path: str) -> None:
        """Drop the cached fds of `path` and beneath (it was removed or replaced)."""
        for cached in [p for p in self._dirs if p and (p == path or p.startswith(path + "/"))]:
            os.close(self._dirs.pop(cached))

    def open_file(self, path: str) -> int | None:
        """A read-only fd of regular file `path`, never through a link; None if it is not one."""
        fd, name = self.parent(path)
        if fd is None:
            return None
        try:
            # O_NONBLOCK: a fifo put there must not hang the reader.
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            os.close(file_fd)
            return None
        return file_fd

    @staticmethod
    def _why(parent_fd: int, name: str, exc: OSError) -> str:
        try:
            info = os.lstat(name, dir_fd=parent_fd)
        except OSError:
            return _describe(exc)
        if stat.S_ISLNK(info.st_mode):
            return "is a symbolic link in the workspace (never followed)"
        if not stat.S_ISDIR(info.st_mode):
            return "is not a directory in the workspace"
        return _describe(exc)


def _nearest_open(path: str, known: OrderedDict[str, int]) -> int:
    """Where the longest directory in `known` above `path` ends in it (0: the root).
    Scans the few fds held rather than building every prefix of a deep path."""
    parent = path.rfind("/")
    if parent <= 0 or path[:parent] in known:  # the common case: a walk parents first
        return max(parent, 0)
    best = 0
    for key in known:
        if best < len(key) < len(path) and path[len(key)] == "/" and path.startswith(key):
            best = len(key)
    return best


def _describe(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "is a symbolic link or not a directory (never followed)"
    return f"cannot be opened ({exc.strerror})"
