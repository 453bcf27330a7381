"""Just enough of inotify(7) to learn that a directory changed.

The fork server watches the directories its code was imported from: any
entry created, written, moved, deleted or changed there means the code in
its memory may no longer be the installed one. The standard library has no
inotify; ctypes calls libc's three functions.
"""

from __future__ import annotations

import ctypes
import os
import sys

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
CHANGES = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
           | IN_DELETE_SELF | IN_MOVE_SELF)
EVENT_HEADER = 16  # struct inotify_event: int wd; uint32 mask, cookie, len; then len bytes of name
IGNORED_NAMES = frozenset({b"__pycache__"})  # the interpreter writes bytecode there; it is not source


class Watch:
    """An inotify instance watching `directories` for changes (CHANGES).
    OSError when inotify is unavailable or a directory cannot be watched."""

    def __init__(self, directories: list[str]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), "inotify_init1")
        for directory in directories:
            if libc.inotify_add_watch(self.fd, os.fsencode(directory), CHANGES) < 0:
                errno = ctypes.get_errno()
                os.close(self.fd)
                raise OSError(errno, os.strerror(errno), directory)

    def changed(self) -> bool:
        """Whether anything but bytecode changed since the last call (reads
        what is queued, never waits)."""
        changed = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return changed
            if not data:
                return changed
            offset = 0
            while offset + EVENT_HEADER <= len(data):
                length = int.from_bytes(data[offset + 12:offset + 16], sys.byteorder)
                name = data[offset + EVENT_HEADER:offset + EVENT_HEADER + length].rstrip(b"\0")
                if name not in IGNORED_NAMES:
                    changed = True
                offset += EVENT_HEADER + length

    def close(self) -> None:
        os.close(self.fd)

