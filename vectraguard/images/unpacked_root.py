"""Finding an image's unpacked root filesystem: what a `lite` run calls.

The layout (written by images/unpacked.py, `image build` and `image
unpack`): under paths.rootfs_dir(), `<hex>/` is the tree of the image whose
ID is sha256:<hex>, `<hex>.json` its completion record (written last), and
`refs/<quoted ref>` names the ID a reference stands for. Kept apart from the
writer so that a run imports almost nothing to find its tree.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from vectraguard import paths
from vectraguard.errors import UsageError

_HEX = re.compile(r"[0-9a-f]{64}")


class UnpackedRoot(NamedTuple):
    path: Path  # the tree, to bind read-only as the sandbox's /
    image_id: str  # "sha256:<hex>"


def lookup(ref: str, root: Path | None = None) -> UnpackedRoot | None:
    """The complete tree `ref` names, or None (never unpacked, unpacking, removed, unreadable).

    Cheap enough for every run: one small read and two stats, no lock, no Podman.
    """
    root = root or paths.rootfs_dir()
    try:
        image_id = (root / "refs" / _ref_file(ref)).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError, UsageError):
        return None
    hex_id = image_id.removeprefix("sha256:")
    if not (image_id.startswith("sha256:") and _HEX.fullmatch(hex_id)):
        return None
    return _complete_tree(root, hex_id)


def _complete_tree(root: Path, hex_id: str) -> UnpackedRoot | None:
    try:
        if not (stat.S_ISREG((root / f"{hex_id}.json").stat().st_mode)
                and stat.S_ISDIR((root / hex_id).lstat().st_mode)):
            return None
    except OSError:
        return None
    return UnpackedRoot(root / hex_id, f"sha256:{hex_id}")


def _ref_file(ref: str) -> str:
    """The file name under refs/ for `ref`: percent-quoted, so one name, never a path."""
    try:
        name = quote(ref, safe="")
    except UnicodeEncodeError:  # bytes of the command line that are not UTF-8 (surrogate escapes)
        raise UsageError(f"vectraguard: {ref!r} is not an image reference (it is not UTF-8)") from None
    if not ref or ref.startswith(".") or len(name) > 255 or not ref.isprintable():
        raise UsageError(f"vectraguard: {ref!r} is not an image reference")
    return name
