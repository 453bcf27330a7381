"""SHA-256 of short data without loading OpenSSL.

`hashlib` binds OpenSSL's libcrypto on import: ~2.5 ms of every
`vectraguard run` (bench/startup), to hash a few hundred bytes (an audit
record's chain hash, a profile digest, a cache key). CPython's own SHA-256
(`_sha256`, built in; `_sha2` from 3.12) gives the same digest (FIPS 180-4)
with nothing to load, but is ~6x slower on bulk data here (64 MiB: 220 ms
against OpenSSL's 37 ms with SHA-NI): streams and files — captured output,
recordings, workspace contents, scripts a line runs — keep `hashlib`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _builtin() -> Callable[..., Any]:
    try:
        from _sha256 import sha256  # CPython <= 3.11
    except ImportError:  # pragma: no cover - depends on the interpreter
        try:
            from _sha2 import sha256  # CPython >= 3.12
        except ImportError:
            from hashlib import sha256
    return sha256  # type: ignore[no-any-return]


_sha256 = _builtin()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 (64 lowercase hex digits) of `data`; meant for data of at
    most some hundreds of KiB (see above for larger)."""
    return str(_sha256(data).hexdigest())


def sha256_of(parts: list[bytes]) -> str:
    """Hex SHA-256 of the concatenation of `parts` (the same as sha256_hex(b"".join(parts)))."""
    digest = _sha256()
    for part in parts:
        digest.update(part)
    return str(digest.hexdigest())
