"""Images unpacked on disk, for isolation `lite` (bubblewrap binds the tree read-only as `/`).

Layout under paths.rootfs_dir() (0700, the unpacking user's):

    <hex>/              the image's root filesystem; <hex> is Podman's image ID (sha256, 64 hex digits)
    <hex>.json          its completion record, written last: a tree without one does not exist
    refs/<quoted ref>   "sha256:<hex>\\n": the tree a reference names (urllib.parse.quote, safe="")
    .lock               flock(2)ed by every writer (unpack, ref change, removal); lookup never takes it
    .partial-<hex>-*    a tree being unpacked; one left by a killed writer goes at the next write

The tree comes from Podman: a container created from the image (never
started, always removed) is exported through the REST API
(GET /libpod/containers/{id}/export, a plain tar of its root filesystem)
and unpacked entry by entry, streaming, by `_Extractor` — not by
tarfile.extractall, whose `data` filter refuses the absolute symlinks every
Debian image has (/etc/alternatives), and resolves relative ones on the host.

Since a custom image may be hostile, the unpack never follows a link on the
host: every path is walked from the tree's top with O_NOFOLLOW, so an entry
under a symlink is refused, and a name with `..` or a hard link to a name
not in the tree is refused. Leading slashes are stripped (as tar does).
Symlinks are kept verbatim: they resolve inside the sandbox, whose `/` is
the tree. Device nodes and FIFOs are skipped (bubblewrap gives the sandbox
its own /dev). Everything is owned by the unpacking user, not by the tar's
ids, and keeps only its read and execute bits: no write, setuid, setgid or
sticky bits (directories keep at least r-x for their owner, so the tree can
be removed). Modification times are kept (Python checks .pyc files by them).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, cast

from vectraguard import paths
from vectraguard.errors import ImageNotFound, PolicyError, RuntimeUnavailable
from vectraguard.images.importer import existing_id
# What a run needs is in unpacked_root.py (imports little); re-exported here.
from vectraguard.images.unpacked_root import _HEX, UnpackedRoot, _complete_tree, _ref_file, lookup  # noqa: F401
from vectraguard.runtime.podman_api import error_message, podman_errors

if TYPE_CHECKING:
    from podman import PodmanClient

Report = Callable[[str], None]
LABEL_UNPACK = "io.vectraguard.unpack"  # the throw-away container an unpack exports; value: the image hex
_KEEP_BITS = 0o555  # read and execute only
_DIR_OWNER_BITS = 0o500
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MiB = 1 << 20
_CRAFTED = "an image exported by Podman never has such an entry: this one was crafted"


class Readable(Protocol):
    """What the unpack reads a tar from: a binary file, or Podman's export response."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class UnpackStats:
    """What one unpack wrote; also the completion record's body."""

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    skipped: int = 0  # device nodes, FIFOs and tar entry types with no meaning here
    bytes: int = 0  # regular files' contents
    seconds: float = 0.0


# --- writing: image build and image unpack --------------------------------------------


def unpack_image(client: PodmanClient, ref: str, *, report: Report, root: Path | None = None) -> UnpackedRoot:
    """Make sure the image `ref` names in Podman's storage is unpacked, and that refs/ says so.

    Unpacks only when the image's tree is not complete yet. Raises
    ImageNotFound, RuntimeUnavailable (Podman, disk full, permission) or
    PolicyError (an entry the unpack refuses); no partial tree is left.
    """
    root = root or paths.rootfs_dir()
    ref_file = _ref_file(ref)
    image_id = existing_id(client, ref)
    if image_id is None:
        raise ImageNotFound(f"vectraguard: there is no image {ref} in Podman's storage",
                            hint="build it with `vectraguard image build`, or load it into Podman first")
    hex_id = _hex_of(image_id)
    with _writer_lock(root):
        found = _complete_tree(root, hex_id)
        if found is None:
            report(f"unpacking {ref} for isolation lite…")
            with _exported(client, hex_id) as stream:
                found, stats = _unpack_locked(stream, hex_id, root)
            report(f"unpacked {stats.bytes / _MiB:.0f} MiB ({stats.files} files) in {stats.seconds:.1f} s "
                   f"into {found.path}")
        _write_atomically(root / "refs", ref_file, f"{image_id}\n")
    return found


def unpack_stream(stream: Readable, image_id: str, root: Path | None = None) -> tuple[UnpackedRoot, UnpackStats]:
    """Unpack the root-filesystem tar read from `stream` as the tree of `image_id` ("sha256:<hex>").

    If that tree is complete already, the stream is not read and the stats
    are zero. A concurrent unpack of the same ID waits for this one and then
    finds its tree. Raises as unpack_image does.
    """
    root = root or paths.rootfs_dir()
    hex_id = _hex_of(image_id)
    with _writer_lock(root):
        found = _complete_tree(root, hex_id)
        if found is not None:
            return found, UnpackStats()
        return _unpack_locked(stream, hex_id, root)


def set_ref(ref: str, image_id: str, root: Path | None = None) -> None:
    """Point `ref` at the tree of `image_id` (replacing what it named), atomically."""
    root = root or paths.rootfs_dir()
    ref_file, hex_id = _ref_file(ref), _hex_of(image_id)
    with _writer_lock(root):
        _write_atomically(root / "refs", ref_file, f"sha256:{hex_id}\n")


def discard_unreferenced(image_id: str, root: Path | None = None) -> bool:
    """Remove the tree of `image_id` (an image a rebuild replaced) unless a ref still names it.

    True if it was removed. The completion record goes first, so a lookup
    never finds a tree being removed.
    """
    root = root or paths.rootfs_dir()
    hex_id = _hex_of(image_id)
    with _writer_lock(root):
        refs = root / "refs"
        named = {path.read_text(encoding="ascii").strip() for path in refs.iterdir()} if refs.is_dir() else set()
        if f"sha256:{hex_id}" in named or not (root / hex_id).exists():
            return False
        (root / f"{hex_id}.json").unlink(missing_ok=True)
        remove_tree(root / hex_id)
    return True


def _hex_of(image_id: str) -> str:
    hex_id = image_id.removeprefix("sha256:")
    if not _HEX.fullmatch(hex_id):
        raise RuntimeUnavailable(f"vectraguard: {image_id!r} is not a Podman image ID (sha256:<64 hex digits>)")
    return hex_id


@contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    # Root's trees are reached by path by the unprivileged user a rootful lite
    # sandbox's bubblewrap runs as (lite/support.py): bubblewrap resolves bind
    # sources by name after entering its user namespace, even those given as
    # descriptors (bubblewrap issue #570). So root's store is searchable by
    # others (never listable or writable); a user's stays private.
    paths.ensure_own_dir(root, searchable=os.geteuid() == 0)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _unpack_locked(stream: Readable, hex_id: str, root: Path) -> tuple[UnpackedRoot, UnpackStats]:
    """Under the writer lock: unpack beside the tree, then move it into place and write the record."""
    for leftover in root.glob(".partial-*"):  # every writer holds the lock: these are a killed one's
        remove_tree(leftover)
    partial = root / f".partial-{hex_id}-{secrets.token_hex(4)}"
    started = time.monotonic()
    try:
        partial.mkdir(mode=0o700)
        stats = _extract(stream, partial, root)
        _add_mount_points(partial)
        partial.chmod(0o555)  # the tree's own `/`, as the image has it (minus write bits)
        stats.seconds = round(time.monotonic() - started, 3)
        os.sync()  # the record promises a whole tree, also after a power cut
        final = root / hex_id
        if final.exists():  # a tree without its record: a writer killed between rename and record
            remove_tree(final)
        partial.rename(final)
        _write_atomically(root, f"{hex_id}.json", json.dumps({"id": f"sha256:{hex_id}", **asdict(stats)}) + "\n")
    except OSError as exc:
        remove_tree(partial)
        raise _disk_error(exc, root) from None
    except BaseException:
        remove_tree(partial)
        raise
    return UnpackedRoot(final, f"sha256:{hex_id}"), stats


# Files a `lite` sandbox mounts something onto inside a directory of the
# image, which it binds read-only (lite/plan.py): runc makes a missing one
# itself, bubblewrap cannot in a read-only directory. Made empty (0444)
# where the image has the directory and not the file.
MOUNT_POINTS = ("etc/hosts",)


def _add_mount_points(top: Path) -> None:
    import stat

    for relative in MOUNT_POINTS:
        parent, name = os.path.split(relative)
        directory = top / parent
        try:
            info = os.lstat(directory)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode) or os.path.lexists(directory / name):
            continue
        os.chmod(directory, info.st_mode | stat.S_IWUSR)
        try:
            fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
            os.close(fd)
        finally:
            os.chmod(directory, stat.S_IMODE(info.st_mode))


def _extract(stream: Readable, top: Path, root: Path) -> UnpackStats:
    try:
        # Stream mode ("r|") only ever calls read(), and never seeks.
        with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|") as archive, _Extractor(top) as extractor:
            for member in archive:
                extractor.add(archive, member)
            extractor.finish()
            return extractor.stats
    except tarfile.TarError as exc:
        raise RuntimeUnavailable(f"vectraguard: the image's filesystem did not arrive as a whole tar ({exc})",
                                 hint="check Podman's service log; then retry") from None


def _disk_error(exc: OSError, root: Path) -> RuntimeUnavailable:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RuntimeUnavailable(f"vectraguard: no space left to unpack the image under {root}",
                                  hint="free some space there, or point VECTRAGUARD_ROOTFS_DIR elsewhere")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RuntimeUnavailable(f"vectraguard: cannot write under {root} to unpack the image ({exc.strerror})",
                                  hint="check the directory's owner and mount, or point VECTRAGUARD_ROOTFS_DIR "
                                  "at a directory of yours")
    return RuntimeUnavailable(f"vectraguard: unpacking the image under {root} failed: {exc}")


def _write_atomically(directory: Path, name: str, text: str) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".new-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
        os.replace(temporary, directory / name)
    except BaseException:
        os.unlink(temporary)
        raise


def remove_tree(path: Path) -> None:
    """Remove an unpacked (read-only) tree: directories become writable for us first."""
    if not path.exists():
        return
    for _, _, _, dir_fd in os.fwalk(path):  # never follows symlinks
        os.fchmod(dir_fd, 0o700)
    shutil.rmtree(path)


# --- exporting from Podman ------------------------------------------------------------


@contextmanager
def _exported(client: PodmanClient, hex_id: str) -> Iterator[Readable]:
    """The image's root filesystem as a tar stream, from a container that is always removed."""
    specgen = {"image": hex_id, "command": ["true"], "name": f"vectraguard-unpack-{secrets.token_hex(4)}",
               "labels": {LABEL_UNPACK: hex_id}, "netns": {"nsmode": "none"}}
    with podman_errors("creating a container to export the image"):
        created = client.api.post("/containers/create", data=json.dumps(specgen),
                                  headers={"Content-Type": "application/json"})
    if created.status_code >= 400:
        raise RuntimeUnavailable(f"vectraguard: podman could not create a container to export the image: "
                                 f"{error_message(created)}", hint="run `vectraguard doctor`")
    cid = str(created.json()["Id"])
    try:
        with podman_errors("exporting the image's filesystem"):
            response = client.api.get(f"/containers/{cid}/export", stream=True)
            if response.status_code >= 400:
                raise RuntimeUnavailable(f"vectraguard: podman export failed: {error_message(response)}",
                                         hint="run `vectraguard doctor`")
            response.raw.decode_content = True
            yield _ExportStream(response.raw)
    finally:
        _remove_container(client, cid)


class _ExportStream:
    """The export response as a file for tarfile; a broken connection is Podman's failure, not the disk's."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        from urllib3.exceptions import HTTPError

        try:
            return self.raw.read(size)
        except (OSError, HTTPError) as exc:
            raise RuntimeUnavailable(f"vectraguard: the image's filesystem stopped arriving from Podman ({exc})",
                                     hint="check Podman's service log; then retry") from None


def _remove_container(client: PodmanClient, cid: str) -> None:
    import requests

    try:
        client.api.delete(f"/containers/{cid}", params={"force": True})
    except requests.RequestException:
        raise RuntimeUnavailable(f"vectraguard: could not remove the export container {cid[:12]}",
                                 hint=f"remove it with: podman rm --force {cid[:12]}") from None


# --- the unpack itself ----------------------------------------------------------------


@dataclass
class _Extractor:
    """Writes tar members under `top`, never following a link on the host (see the module docstring)."""

    top: Path
    stats: UnpackStats = field(default_factory=UnpackStats)
    # relative directory -> (mode, mtime), applied once every entry is written
    directories: dict[tuple[str, ...], tuple[int, float]] = field(default_factory=dict)
    top_fd: int = -1

    def __enter__(self) -> _Extractor:
        self.top_fd = os.open(self.top, _OPEN_DIR)
        self.directories[()] = (0o755, time.time())
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.top_fd)

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _parts(member.name)
        if member.isdir():
            self._directory(parts, member)
            return
        if not parts:
            raise _refused(member, "is not a directory, but names the tree's top")
        if member.ischr() or member.isblk() or member.isfifo() or not (
                member.isreg() or member.issym() or member.islnk()):
            self.stats.skipped += 1
            return
        parent = self._open_dir(parts[:-1], member)
        try:
            self._clear(parent, parts[-1], member)
            if member.isreg():
                self._file(archive, member, parent, parts[-1])
            elif member.issym():
                os.symlink(member.linkname, parts[-1], dir_fd=parent)
                self.stats.symlinks += 1
            else:
                self._hardlink(member, parent, parts[-1])
        finally:
            os.close(parent)

    def finish(self) -> None:
        """Directories read-only, with their times, deepest first (a child's entry touches its parent)."""
        for parts, (mode, mtime) in sorted(self.directories.items(), key=lambda item: -len(item[0])):
            fd = self._open_dir(parts, None, create=False)
            try:
                os.fchmod(fd, (mode & _KEEP_BITS) | _DIR_OWNER_BITS)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)

    def _directory(self, parts: list[str], member: tarfile.TarInfo) -> None:
        if parts:
            parent = self._open_dir(parts[:-1], member)
            try:
                if not _is_dir(parent, parts[-1]):
                    self._clear(parent, parts[-1], member)
                    os.mkdir(parts[-1], 0o700, dir_fd=parent)
            finally:
                os.close(parent)
            self.stats.directories += 1
        self.directories[tuple(parts)] = (member.mode, member.mtime)

    def _file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str) -> None:
        source = archive.extractfile(member)
        assert source is not None  # a regular member always has a body
        with os.fdopen(os.open(name, _CREATE_FILE, 0o600, dir_fd=parent), "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()  # before utime: a later write would set the time again
            os.fchmod(out.fileno(), member.mode & _KEEP_BITS)
            os.utime(out.fileno(), (member.mtime, member.mtime))
        self.stats.files += 1
        self.stats.bytes += member.size

    def _hardlink(self, member: tarfile.TarInfo, parent: int, name: str) -> None:
        target = _parts(member.linkname, member)
        if not target:
            raise _refused(member, "is a hard link to the tree's top")
        try:
            source_dir = self._open_dir(target[:-1], member, create=False)
        except FileNotFoundError:
            raise _refused(member, f"is a hard link to {member.linkname}, which is not in the image") from None
        try:
            info = os.lstat(target[-1], dir_fd=source_dir)
            if stat.S_ISDIR(info.st_mode):
                raise _refused(member, f"is a hard link to the directory {member.linkname}")
            os.link(target[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise _refused(member, f"is a hard link to {member.linkname}, which is not in the image") from None
        finally:
            os.close(source_dir)
        self.stats.hardlinks += 1

    def _open_dir(self, parts: list[str] | tuple[str, ...], member: tarfile.TarInfo | None, *,
                  create: bool = True) -> int:
        """An fd of the directory `parts` below the top, each step O_NOFOLLOW; missing ones made (0700)."""
        fd = os.dup(self.top_fd)
        for depth, part in enumerate(parts):
            if create and not _is_dir(fd, part):
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                    self.directories.setdefault(tuple(parts[:depth + 1]), (0o755, time.time()))
                except FileExistsError:
                    pass  # not a directory: the open below refuses it
            try:
                next_fd = os.open(part, _OPEN_DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR) or member is None:
                    raise
                raise _refused(member, f"would be written through {'/'.join(parts[:depth + 1])}, "
                                       "which is a symlink or a file") from None
            finally:
                os.close(fd)
            fd = next_fd
        return fd

    def _clear(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        """A later entry replaces an earlier one (as tar does), but never a directory."""
        try:
            info = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            raise _refused(member, "would replace a directory")
        os.unlink(name, dir_fd=parent)


def _is_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode)
    except FileNotFoundError:
        return False


def _parts(name: str, link_of: tarfile.TarInfo | None = None) -> list[str]:
    """A member name (or the target of hard link `link_of`) as components below the top:
    leading slashes and `.` dropped, `..` refused."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        if link_of is not None:
            raise _refused(link_of, f"is a hard link to {name!r}, which climbs out with '..'")
        raise PolicyError(f"vectraguard: refusing to unpack this image: the entry {name!r} climbs out with '..'",
                          hint=_CRAFTED)
    return parts


def _refused(member: tarfile.TarInfo, why: str) -> PolicyError:
    return PolicyError(f"vectraguard: refusing to unpack this image: the entry {member.name!r} {why}", hint=_CRAFTED)
