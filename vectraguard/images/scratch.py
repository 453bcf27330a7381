"""Temporary directories for one image build, removed on every way out.

Two of them: a private one (0700) for the rootfs tarball, and mmdebstrap's
TMPDIR, where it builds the chroot. Giving mmdebstrap a TMPDIR of our own
means that whatever it leaves behind when interrupted at an awkward moment
(it can leave its gpg home) goes away with ours. In unshare mode (rootless)
the chroot is entered by subordinate ids, which must be able to traverse
that directory: it is 0711 then — enterable, not listable.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildDirs:
    tarball: Path  # where mmdebstrap writes the rootfs
    mmdebstrap_tmp: Path  # its TMPDIR


@contextmanager
def build_dirs(*, rootless: bool) -> Iterator[BuildDirs]:
    private = Path(tempfile.mkdtemp(prefix="vectraguard-image-"))
    if rootless:
        chroots = Path(tempfile.mkdtemp(prefix="vectraguard-mmdebstrap-"))
        chroots.chmod(0o711)
    else:
        chroots = private / "mmdebstrap"
        chroots.mkdir()
    try:
        yield BuildDirs(private / "rootfs.tar", chroots)
    finally:
        for directory in {chroots, private}:
            _remove(directory)


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        # Only files owned by subordinate ids resist: a killed unshare-mode mmdebstrap.
        print(f"vectraguard: warning: could not remove {directory}; "
              f"remove it with: podman unshare rm -rf {directory}", file=sys.stderr)
