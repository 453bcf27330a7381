"""The overlay that gives a sandbox a writable view of a read-only workspace.

Per session, in Vectra Guard's runtime directory (never in the workspace):

    workspaces/SESSION/layer    tmpfs, size-capped: upper/ and work/
    workspaces/SESSION/lower    rootful only: the workspace, id-mapped
    workspaces/SESSION/merged   the overlay; bound at the workspace target

The size cap is the tmpfs's `size=` (and `nr_inodes=`): the kernel fails
writes past it with ENOSPC inside the sandbox, and the layer never takes host
disk (its pages are memory, charged to the writer's memory cgroup, i.e. the
sandbox's memory limit). Overlay options: `redirect_dir=nofollow`,
`index=off`, `metacopy=off`, so the upper directory holds only plain files,
whiteouts (character devices 0:0) and opaque directories — the format
`harvest` reads (see the kernel's Documentation/filesystems/overlayfs.rst).

Rootless, this runs under `podman unshare` (helper.py): the mounts live in
the rootless user's mount namespace, where Podman's containers are created,
and use `userxattr` (`user.overlay.*` attributes). Rootful, they live in the
host's, and the lower layer is an id-mapped bind of the workspace: files the
workspace's owner owns appear owned by the sandbox user's host id, so the
sandbox can change them — in the layer only.
"""

from __future__ import annotations

import os
import platform
import re
import stat
from dataclasses import dataclass

from vectraguard import errors
from vectraguard.sandbox import held
from vectraguard.workspace import kernel

TMPFS_BYTES_PER_INODE = 4096  # nr_inodes = cap / this: empty files cannot take unbounded kernel memory
MIN_INODES = 16384


@dataclass(frozen=True)
class Mountpoints:
    """The session's mount points under the runtime directory."""

    base: str

    @property
    def layer(self) -> str:
        return os.path.join(self.base, "layer")

    @property
    def upper(self) -> str:
        return os.path.join(self.base, "layer", "upper")

    @property
    def work(self) -> str:
        return os.path.join(self.base, "layer", "work")

    @property
    def lower(self) -> str:
        return os.path.join(self.base, "lower")

    @property
    def merged(self) -> str:
        return os.path.join(self.base, "merged")


@dataclass(frozen=True)
class IdShift:
    """Rootful: the workspace owner's ids (on disk) and the sandbox user's ids on the host."""

    owner_uid: int
    owner_gid: int
    sandbox_uid: int
    sandbox_gid: int


def xattr_prefix(rootless: bool) -> str:
    """Where this overlay keeps its own attributes; a sandbox cannot write these
    (overlayfs escapes its own namespace when written through the overlay)."""
    return "user.overlay." if rootless else "trusted.overlay."


def missing_support(rootless: bool) -> str:
    """Why this host cannot provide an overlay workspace, or "" if it can."""
    try:
        with open("/proc/filesystems") as listing:
            if not any(line.split()[-1:] == ["overlay"] for line in listing):
                return "the kernel has no overlay filesystem (modprobe overlay)"
    except OSError:
        return "cannot read /proc/filesystems"
    release = tuple(int(n) for n in re.findall(r"\d+", platform.release())[:2])
    needed = (5, 11) if rootless else (5, 19)
    if release < needed:
        what = "overlayfs in a user namespace" if rootless else "id-mapped overlay layers"
        return f"{what} needs Linux {needed[0]}.{needed[1]} or newer (this is {platform.release()})"
    return ""


def prepare(points: Mountpoints) -> None:
    """The empty mount points (as the caller, before anything is mounted),
    in a directory of the caller's runtime directory that no one else can write."""
    from pathlib import Path

    from vectraguard.paths import ensure_private_dir

    parent = Path(points.base).parent
    ensure_private_dir(parent.parent)
    ensure_private_dir(parent)
    os.mkdir(points.base, 0o700)
    for path in (points.layer, points.lower, points.merged):
        os.mkdir(path, 0o700)


def mount(points: Mountpoints, workspace: str, cap: int, *, rootless: bool, shift: IdShift | None,
          identity: tuple[int, int] | None = None) -> None:
    """Mount the capped layer and the overlay. `identity`: the (device, inode)
    the workspace was checked as; the lower layer is that object or nothing
    (a check-then-mount race). OSError names the step that failed; what was
    mounted before it is taken down again (and the mount points removed)."""
    source = _hold(workspace, identity)
    try:
        _mount(points, source, cap, rootless=rootless, shift=shift)
    except BaseException:
        unmount(points)
        raise
    finally:
        os.close(source.fd)


def _hold(workspace: str, identity: tuple[int, int] | None) -> held.Held:
    try:
        source = held.hold(workspace, "the overlay workspace")
    except errors.PolicyError as exc:
        raise OSError(0, exc.message.removeprefix("vectraguard: ")) from None
    if identity is not None and (source.device, source.inode) != identity:
        os.close(source.fd)
        raise OSError(0, f"{workspace} is no longer the directory that was checked: something replaced it")
    return source


def _mount(points: Mountpoints, source: held.Held, cap: int, *, rootless: bool, shift: IdShift | None) -> None:
    inodes = max(MIN_INODES, cap // TMPFS_BYTES_PER_INODE)
    kernel.mount("tmpfs", points.layer, "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV,
                 f"size={cap},nr_inodes={inodes},mode=0700")
    os.mkdir(points.upper, stat.S_IMODE(source.mode))
    os.mkdir(points.work, 0o700)
    # Through the held descriptor, never by path again: the kernel resolves
    # /proc/self/fd/N to exactly the directory that was checked.
    lower = held.lower_path(source)
    if shift is not None:
        kernel.idmapped_bind(lower, points.lower, f"{shift.owner_uid} {shift.sandbox_uid} 1\n",
                             f"{shift.owner_gid} {shift.sandbox_gid} 1\n")
        lower = points.lower
        os.chown(points.upper, shift.sandbox_uid, shift.sandbox_gid)
    options = f"lowerdir={lower},upperdir={points.upper},workdir={points.work},redirect_dir=nofollow,index=off," \
              f"metacopy=off{',userxattr' if rootless else ''}"
    kernel.mount("overlay", points.merged, "overlay", kernel.MS_NOSUID | kernel.MS_NODEV, options)
    if os.statvfs(points.merged).f_fsid == os.statvfs(points.base).f_fsid:
        raise OSError(0, f"the overlay is not mounted on {points.merged}")


def usage(points: Mountpoints) -> tuple[int, bool]:
    """(bytes the layer holds, whether its cap was reached: under 1 MiB or no inodes left)."""
    info = os.statvfs(points.layer)
    used = (info.f_blocks - info.f_bfree) * info.f_frsize
    return used, info.f_bavail * info.f_frsize < (1 << 20) or info.f_favail == 0


def unmount(points: Mountpoints) -> None:
    """Take everything down and remove the mount points; safe to repeat."""
    for path in (points.merged, points.lower, points.layer):
        kernel.unmount(path)
    for path in (points.merged, points.lower, points.layer):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(points.base)
    except FileNotFoundError:
        pass
