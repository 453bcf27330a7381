"""Mount sources held open from the check to the mount, and proof that the
sandbox got them (the CVE-2021-30465 class: check-then-mount races).

A mount source is checked by path (vectraguard/sandbox/mounts.py), then
Podman's OCI runtime mounts whatever the path names *later*. Anyone who can
write a directory on that path — another sandbox with a read-write mount of
it, for one — can swap it for a symlink in between (`renameat2` with
`RENAME_EXCHANGE`) and get `~/.ssh` mounted instead.

So every bind source is opened once, `O_PATH | O_NOFOLLOW`, one component at
a time from `/` (a symlink anywhere on the path fails the open), the object
is checked through that descriptor, and the descriptor stays open for the
run. After the container is initialised (its mounts exist) and before its
command starts, `verify` walks to each target inside the container's root
(`/proc/PID/root`, again without following symlinks) and compares device
and inode with the held descriptor, and reads the container's mount table:
each bind target must be a mount point with the asked-for `ro`, `nosuid`,
`nodev`, and nothing Vectra Guard did not ask for may be mounted below it.
Any difference refuses the run; the caller removes the container.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from vectraguard.errors import PolicyError
from vectraguard.records import record

_WALK_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class Held:
    """A checked mount source, open for the rest of the run.

    `fd` is an O_PATH descriptor (closed only when the process exits: the
    kernel then cannot reuse the inode number for something else). Frozen;
    equal, hashed and shown by everything but `fd` (a plain class, not a
    record, for that one exception)."""

    path: str  # the canonical path it was opened by
    fd: int
    device: int
    inode: int
    mode: int  # st_mode: type and permission bits
    uid: int
    gid: int

    def __init__(self, path: str, fd: int, device: int, inode: int, mode: int, uid: int, gid: int) -> None:
        fields = {"path": path, "fd": fd, "device": device, "inode": inode, "mode": mode, "uid": uid, "gid": gid}
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _identity(self) -> tuple[str, int, int, int, int, int]:
        return (self.path, self.device, self.inode, self.mode, self.uid, self.gid)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Held)
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return (f"Held(path={self.path!r}, device={self.device!r}, inode={self.inode!r}, mode={self.mode!r}, "
                f"uid={self.uid!r}, gid={self.gid!r})")

    def __setattr__(self, name: str, value: object) -> None:
        # Imported only on this mistake: dataclasses costs ~6 ms at start-up.
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@record
class Expected:
    """What the sandbox must have at `target` once its mounts are made."""

    target: str  # normalized absolute path inside the sandbox
    # What must be there, or None when the source is one Vectra Guard made
    # itself from a held object (the overlay workspace, checked as it is mounted).
    held: Held | None
    read_only: bool


class ChangedWhileChecked(PolicyError):
    """A mount source was replaced between its check and its mount."""


def _walk(root_fd: int, relative: str, where: str) -> int:
    """An O_PATH descriptor for `relative` below `root_fd`, no symlink followed.
    OSError (ELOOP for a symlink on the way, ENOENT, ...) propagates."""
    fd = os.dup(root_fd)
    try:
        for name in (part for part in relative.split("/") if part):
            if name == "..":  # canonical paths have none; never climb out of the root
                raise OSError(0, f"'..' in {where}")
            child = os.open(name, _WALK_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            # O_PATH|O_NOFOLLOW opens a symlink itself rather than failing:
            # refuse it explicitly, for every component (the last included).
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(40, f"{where}: {name} is a symbolic link")
    except BaseException:
        os.close(fd)
        raise
    return fd


def hold(path: str, origin: str) -> Held:
    """Open the canonical absolute `path` and keep it open.

    PolicyError (ChangedWhileChecked) when any component is now a symlink or
    missing, or when the object's own path no longer reads `path`."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = _walk(root, path, path)
    except OSError as exc:
        raise ChangedWhileChecked(
            f"vectraguard: {origin}: mount source {path} changed while it was being checked "
            f"({exc.strerror or exc})",
            hint="something is renaming or replacing it; run again, and find out what") from None
    finally:
        os.close(root)
    try:
        now = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        now = ""
    if now != path:
        os.close(fd)
        raise ChangedWhileChecked(f"vectraguard: {origin}: mount source {path} changed while it was being "
                                  f"checked (it is now {now or 'unreachable'})")
    info = os.fstat(fd)
    return Held(path, fd, info.st_dev, info.st_ino, info.st_mode, info.st_uid, info.st_gid)


def lower_path(held: Held) -> str:
    """A path naming exactly the held object, for a mount this process makes
    (the kernel resolves /proc/self/fd/N to the descriptor's own file)."""
    return f"/proc/self/fd/{held.fd}"


def same_object(held: Held, fd: int) -> bool:
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino) == (held.device, held.inode)


@record
class MountEntry:
    """One line of /proc/PID/mountinfo (proc(5)): the parts checked here."""

    mount_point: str
    options: frozenset[str]  # per-mount options (ro/rw, nosuid, nodev, ...)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Fields per proc(5): ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER.
    Paths escape space, tab, newline and backslash as octal (\\040)."""
    entries = []
    for line in text.split("\n"):  # not splitlines(): a path may hold \r, \f, \x1c... unescaped
        fields = line.split(" ")
        if len(fields) < 6:
            continue
        entries.append(MountEntry(_unescape(fields[4]), frozenset(fields[5].split(","))))
    return entries


def _unescape(field_text: str) -> str:
    if "\\" not in field_text:
        return field_text
    out, i = bytearray(), 0
    raw = field_text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        digits = raw[i + 1:i + 4]
        if raw[i] == 0x5C and len(digits) == 3 and digits.isdigit():
            out.append(int(digits, 8) & 0xFF)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _below(path: str, parent: str) -> bool:
    return path != parent and path.startswith(parent.rstrip("/") + "/")


def verify(pid: int, expected: Iterable[Expected], requested_targets: Iterable[str], *,
           check_options: frozenset[str] = frozenset({"ro", "nosuid", "nodev"})) -> None:
    """Check, inside the initialised container `pid`, that each expected bind
    is the held object with its options, and that nothing is mounted below a
    bind but what was requested (`requested_targets`: every mount target of
    the spec). PolicyError naming the first difference. `check_options`: the
    per-mount options compared (runtime/interface.SandboxView.checked_options:
    those the mount table enforces for this engine and level)."""
    wanted = list(expected)
    if not wanted:
        return
    requested = set(requested_targets)
    try:
        with open(f"/proc/{pid}/mountinfo") as listing:
            table = parse_mountinfo(listing.read())
        root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PolicyError(f"vectraguard: cannot check the sandbox's mounts before it starts: {exc.strerror or exc}",
                          hint="the run was refused; `vectraguard doctor` checks the host") from None
    try:
        for item in wanted:
            _verify_one(root, table, item, requested, check_options)
    finally:
        os.close(root)


def _verify_one(root: int, table: list[MountEntry], item: Expected, requested: set[str],
                check_options: frozenset[str]) -> None:
    def refuse(why: str) -> PolicyError:
        return ChangedWhileChecked(
            f"vectraguard: refusing to start: the sandbox's mount at {item.target} {why}",
            details=(f"it should be {item.held.path} (device {item.held.device}, inode {item.held.inode})",)
            if item.held else (),
            hint="something replaced the mount source between its check and the mount (run again, and find out "
                 "what is renaming it); or, rootless, the source is a filesystem mounted after Podman's user "
                 "namespace was set up, which Podman cannot see (`podman system migrate` restarts it)")

    try:
        fd = _walk(root, item.target, item.target)
    except OSError as exc:
        raise refuse(f"cannot be reached without following a link ({exc.strerror or exc})") from None
    try:
        if item.held is not None and not same_object(item.held, fd):
            info = os.fstat(fd)
            raise refuse(f"is not what was checked (device {info.st_dev}, inode {info.st_ino})")
    finally:
        os.close(fd)
    at_target = [entry for entry in table if entry.mount_point == item.target]
    if not at_target:
        raise refuse("is not a mount point")
    options = at_target[-1].options  # the last one mounted there is the one visible
    missing = ({"nosuid", "nodev"} & check_options) - options
    if "ro" in check_options and item.read_only and "ro" not in options:
        missing.add("ro")
    if missing:
        raise refuse(f"lacks the options {', '.join(sorted(missing))}")
    extra = sorted(entry.mount_point for entry in table
                   if _below(entry.mount_point, item.target) and entry.mount_point not in requested)
    if extra:
        raise refuse(f"carries a filesystem mounted below it at {extra[0]}, which Vectra Guard did not ask for")
