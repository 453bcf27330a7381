"""A seccomp profile compiled to BPF (seccomp_bpf.py), kept on disk: what a
`lite` run calls. A hit costs a read of the profile, a builtin SHA-256, a
readlink and a stat; only a miss imports the compiler and libseccomp's
binding."""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

# Bump when the output for the same profile and libseccomp changes: it is part
# of the cache file's name.
COMPILER_REVISION = 1
LIBRARY = "libseccomp.so.2"
# Where Debian and Ubuntu keep it (the multiarch directory first); elsewhere
# the version is asked of the library itself (seccomp_bpf.libseccomp_version).
LIBRARY_DIRS = tuple(d for d in (f"/usr/lib/{getattr(sys.implementation, '_multiarch', '')}", "/usr/lib64",
                                 "/usr/lib", "/lib") if not d.endswith("/"))
_VERSIONED = re.compile(r"libseccomp\.so\.(\d+\.\d+\.\d+)")


def cached_bpf(path: str, cache_dir: Path) -> Path:
    """The compiled profile at `path`, as a file in `cache_dir`.

    `cache_dir` is the caller's private directory (owned by the caller, not
    writable by group or others, else ValueError). The file is named from the
    SHA-256 of the profile's bytes, libseccomp's version and
    COMPILER_REVISION, written once (temporary file, fsync, rename).
    ValueError (and OSError) from the compiler on a miss."""
    from vectraguard.digests import sha256_hex

    _check_private(cache_dir)
    data = Path(path).read_bytes()
    target = cache_dir / f"{sha256_hex(data)}-libseccomp{library_version()}-r{COMPILER_REVISION}.bpf"
    try:
        if stat.S_ISREG(os.lstat(target).st_mode):
            return target
    except FileNotFoundError:
        pass
    from vectraguard.lite import seccomp_bpf

    _write_atomic(target, seccomp_bpf.compile_profile(path))
    return target


def library_version() -> str:
    """libseccomp's version, "major.minor.micro": from the name of the file
    its soname links to (libseccomp.so.2 -> libseccomp.so.2.5.4), else asked
    of the library (ctypes)."""
    for directory in LIBRARY_DIRS:
        found = _VERSIONED.fullmatch(os.path.basename(os.path.realpath(os.path.join(directory, LIBRARY))))
        if found:
            return found.group(1)
    from vectraguard.lite.seccomp_bpf import libseccomp_version

    return libseccomp_version()


def _check_private(cache_dir: Path) -> None:
    info = os.lstat(cache_dir)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ValueError(f"seccomp cache {cache_dir}: not a private directory of uid {os.geteuid()}")


def _write_atomic(target: Path, data: bytes) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
