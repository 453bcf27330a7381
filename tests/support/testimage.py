"""The tests' container image: Debian's busybox-static plus the vgprobe probe.

No registry is reachable on the machines the tests run on, so the image is
assembled here from files on the host and loaded with `podman import`. The
tar goes to Podman on stdin, so it works the same for rootful storage and for
a rootless user reached through `runuser`, who could not read our temp files.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "probe" / "vgprobe.c"
HOST_BUSYBOX = Path("/bin/busybox")
SANDBOX_UID = 1000
PATH = "/usr/local/bin:/usr/bin:/bin"
PT_INTERP = 3

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:/home/sandbox:/bin/sh\n"
)
GROUP = f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\n"

# (path, mode, owner uid/gid)
DIRECTORIES: tuple[tuple[str, int, int], ...] = (
    ("bin", 0o755, 0),
    ("dev", 0o755, 0),
    ("etc", 0o755, 0),
    ("home", 0o755, 0),
    ("home/sandbox", 0o755, SANDBOX_UID),
    ("proc", 0o555, 0),
    ("root", 0o700, 0),
    ("sys", 0o555, 0),
    ("tmp", 0o1777, 0),
    ("usr", 0o755, 0),
    ("usr/bin", 0o755, 0),
    ("usr/local", 0o755, 0),
    ("usr/local/bin", 0o755, 0),
    ("workspace", 0o755, SANDBOX_UID),
)


class ImageBuildError(RuntimeError):
    """The test image could not be built; the message says which step failed."""


def build_test_image(podman: Sequence[str], tag: str, workdir: Path) -> str:
    """Build and import the busybox test image; return its image ID.

    `podman` is the argv prefix that runs Podman, e.g. ["podman"] or
    ["runuser", "-u", "vgtest", "--", "podman"]. Importing again under the
    same tag simply moves the tag to the new image.
    """
    busybox = _static_busybox()
    probe = compile_probe(workdir)
    layer = _rootfs_tar(busybox, _applets(busybox), probe)
    return _podman_import(podman, tag, layer)


def rootfs_layer(workdir: Path) -> bytes:
    """The test image's root filesystem as a tar (what build_test_image imports), for other engines."""
    busybox = _static_busybox()
    return _rootfs_tar(busybox, _applets(busybox), compile_probe(workdir))


def compile_probe(workdir: Path) -> Path:
    """Compile vgprobe statically into workdir, unless it is already up to date."""
    workdir.mkdir(parents=True, exist_ok=True)
    binary = workdir / "vgprobe"
    if binary.exists() and binary.stat().st_mtime >= PROBE_SOURCE.stat().st_mtime:
        return binary
    if shutil.which("gcc") is None:
        raise ImageBuildError("gcc not found: needed to compile tests/probe/vgprobe.c")
    # Compile beside the target and rename: parallel test workers sharing a
    # workdir never run a half-written binary.
    partial = workdir / f".vgprobe.{os.getpid()}"
    _run(["gcc", "-static", "-O2", "-o", str(partial), str(PROBE_SOURCE)], "compile vgprobe")
    partial.replace(binary)
    return binary


def _static_busybox() -> Path:
    # Nothing else goes into the image, so a dynamically linked busybox
    # would start without its libc.
    if not HOST_BUSYBOX.is_file():
        raise ImageBuildError(f"{HOST_BUSYBOX} not found: install busybox-static")
    if _elf_interpreter(HOST_BUSYBOX.read_bytes()):
        raise ImageBuildError(f"{HOST_BUSYBOX} is dynamically linked: install busybox-static")
    return HOST_BUSYBOX


def _elf_interpreter(elf: bytes) -> bool:
    """Whether the ELF image names a dynamic loader (has a PT_INTERP header)."""
    if elf[:4] != b"\x7fELF":
        raise ImageBuildError(f"{HOST_BUSYBOX} is not an ELF executable")
    order = "<" if elf[5] == 1 else ">"
    if elf[4] == 2:  # ELFCLASS64
        (phoff,) = struct.unpack_from(order + "Q", elf, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", elf, 0x36)
    else:
        (phoff,) = struct.unpack_from(order + "I", elf, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", elf, 0x2A)
    types = [struct.unpack_from(order + "I", elf, phoff + i * phentsize)[0] for i in range(phnum)]
    return PT_INTERP in types


def _applets(busybox: Path) -> list[str]:
    listing = _run([str(busybox), "--list"], "list busybox applets")
    return [name for name in listing.split() if name and "/" not in name and name != "busybox"]


def _rootfs_tar(busybox: Path, applets: list[str], probe: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member, data in _members(busybox, applets, probe):
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


Member = tuple[tarfile.TarInfo, bytes | None]  # None for directories and links


def _members(busybox: Path, applets: list[str], probe: Path) -> Iterator[Member]:
    for path, mode, owner in DIRECTORIES:
        yield _entry(path, tarfile.DIRTYPE, mode, owner), None
    files = (
        ("bin/busybox", 0o755, busybox.read_bytes()),
        ("usr/local/bin/vgprobe", 0o755, probe.read_bytes()),
        ("etc/passwd", 0o644, PASSWD.encode()),
        ("etc/group", 0o644, GROUP.encode()),
    )
    for path, mode, data in files:
        member = _entry(path, tarfile.REGTYPE, mode)
        member.size = len(data)
        yield member, data
    for name in applets:
        yield _entry(f"bin/{name}", tarfile.SYMTYPE, 0o777, link="busybox"), None
    yield _entry("usr/bin/env", tarfile.SYMTYPE, 0o777, link="/bin/env"), None


def _entry(path: str, kind: bytes, mode: int, owner: int = 0, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(path)
    member.type = kind
    member.mode = mode
    member.uid = member.gid = owner
    member.linkname = link
    member.mtime = 0  # same files, same tar: Podman stores the layer once
    return member


def _podman_import(podman: Sequence[str], tag: str, layer: bytes) -> str:
    argv = [
        *podman, "import", "--quiet",
        "--change", f"ENV PATH={PATH}",
        "--change", 'CMD ["/bin/sh"]',
        "-", tag,
    ]
    output = _run(argv, f"podman import {tag}", stdin=layer)
    lines = output.split()
    if not lines:
        raise ImageBuildError(f"podman import {tag}: printed no image ID")
    return lines[-1].removeprefix("sha256:")


def _run(argv: list[str], step: str, stdin: bytes | None = None) -> str:
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ImageBuildError(f"{step}: {error}") from error
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()
        raise ImageBuildError(f"{step}: exit {result.returncode}: {detail}")
    return result.stdout.decode(errors="replace")
