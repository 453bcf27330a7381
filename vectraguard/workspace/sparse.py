"""Reading, hashing and copying files with holes (sparse files) by their
data extents, so a file whose logical size dwarfs its data costs only its
data in time and disk: the harvest's blobs, apply's writes and diff's
digests all go through here. Holes read as zeros, and digests count them so.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from typing import Any

CHUNK = 1 << 20
ZEROS = bytes(CHUNK)


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The [start, end) ranges below `size` where `fd` holds data, in order; between them
    are holes, which read as zeros. A filesystem that cannot tell has no holes."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return  # nothing but a hole up to the end
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield offset, size
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def read_range(fd: int, start: int, end: int) -> Iterator[bytes]:
    """[start, end) of `fd` in chunks; stops early if the file ends first."""
    while start < end:
        chunk = os.pread(fd, min(CHUNK, end - start), start)
        if not chunk:
            return
        yield chunk
        start += len(chunk)


def hash_zeros(digest: Any, count: int) -> None:
    """Feed `count` zero bytes (a hole) to `digest` without allocating them."""
    view = memoryview(ZEROS)
    while count > 0:
        step = min(count, CHUNK)
        digest.update(view[:step])
        count -= step


def copy(source: int, out: int | None = None) -> tuple[str, int]:
    """(SHA-256 hex, logical size) of `source`; with `out`, its data is also
    written there at the same offsets and `out` truncated to the logical size,
    so holes stay holes."""
    digest = hashlib.sha256()
    size = os.fstat(source).st_size
    at = 0
    for start, end in data_extents(source, size):
        hash_zeros(digest, start - at)
        at = start
        for chunk in read_range(source, start, end):
            digest.update(chunk)
            if out is not None:
                _write_at(out, chunk, at)
            at += len(chunk)
    hash_zeros(digest, size - at)
    if out is not None:
        os.ftruncate(out, size)
    return digest.hexdigest(), size


def file_digest(fd: int) -> str:
    """The SHA-256 of all of `fd`, reading only its data."""
    return copy(fd)[0]


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
