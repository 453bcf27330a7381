"""Bounded capture of a stream for the audit record: head, tail, size, SHA-256.

Memory stays bounded whatever the command prints (a 1 GB flood, megabyte
lines without newlines): the head keeps the first HEAD bytes, the tail the
last TAIL bytes, and the digest covers every byte. Bytes are kept raw —
escape sequences, NULs and invalid UTF-8 are the evidence, not noise.
"""

from __future__ import annotations

from typing import Any

from vectraguard.digests import sha256_hex

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 64 * 1024


class StreamCapture:
    """One output stream's capture: bounded head and tail, the byte count, the digest."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.digest: Any = None  # hashlib's, made at the first byte (digests.py: OpenSSL only for output)

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.digest is None:
            import hashlib

            self.digest = hashlib.sha256()
        self.digest.update(data)
        room = HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > TAIL_BYTES:
                del self.tail[: len(self.tail) - TAIL_BYTES]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def summary(self) -> dict[str, Any]:
        whole = self.digest.hexdigest() if self.digest is not None else sha256_hex(b"")
        return {"bytes": self.total, "sha256": whole, "truncated": self.truncated,
                "head_sha256": sha256_hex(bytes(self.head)), "tail_sha256": sha256_hex(bytes(self.tail))}


class OutputCapture:
    """A sink wrapper: passes output on and captures stdout (1) and stderr (2)."""

    def __init__(self) -> None:
        self.streams = {1: StreamCapture(), 2: StreamCapture()}

    def feed(self, stream: int, data: bytes) -> None:
        capture = self.streams.get(stream)
        if capture is not None:
            capture.feed(data)
