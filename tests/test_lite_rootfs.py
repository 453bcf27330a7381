"""Images unpacked on disk for isolation lite (vectraguard/images/unpacked.py).

The unpack runs on tar streams made here, hostile ones included, into real
directories; one test unpacks the real default image through Podman (the
`image unpack` command) and checks that no container is left.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vectraguard import paths
from vectraguard.errors import PolicyError, RuntimeUnavailable
from vectraguard.images import unpacked
from vectraguard.images.unpacked import UnpackedRoot, UnpackStats

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64
DEFAULT_REF = "localhost/vectraguard/default:bookworm"
MTIME = 1_700_000_000
REPO = Path(__file__).resolve().parent.parent


# --- making tar streams ---------------------------------------------------------------


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, data: bytes = b"",
          link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, MTIME, link
    info.uid = info.gid = 4242  # ids the unpack must not give its files
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info, data


def tar_stream(*entries: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return buffer


def directory(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.DIRTYPE, mode=mode)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A private rootfs directory; its read-only trees are removed afterwards."""
    path = tmp_path / "rootfs"
    yield path
    unpacked.remove_tree(path)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A directory on the host that hostile entries aim at: it must stay empty."""
    path = tmp_path / "host"
    path.mkdir()
    return path


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in (".lock", "refs"))


# --- a well-formed tree ---------------------------------------------------------------


def test_a_debian_like_tree_is_unpacked_read_only_with_links_kept(root: Path) -> None:
    stream = tar_stream(
        directory("./"), directory("./usr/"), directory("./usr/bin/"), directory("./etc/"),
        entry("./usr/bin/mawk", mode=0o755, data=b"#!mawk\n"),
        entry("./usr/bin/su", mode=0o4755, data=b"su"),
        entry("./usr/bin/wall", mode=0o2755, data=b"wall"),
        entry("./etc/shadow", mode=0o640, data=b"root:*:\n"),
        entry("./etc/alternatives", tarfile.SYMTYPE, link="/usr/bin/mawk"),
        entry("./usr/bin/awk", tarfile.SYMTYPE, link="/etc/alternatives"),
        entry("./bin", tarfile.SYMTYPE, link="usr/bin"),
        entry("./usr/bin/mawk-too", tarfile.LNKTYPE, link="./usr/bin/mawk"),
        directory("./tmp/", 0o1777), directory("./dev/"),
        entry("./dev/null", tarfile.CHRTYPE, mode=0o666), entry("./dev/sda", tarfile.BLKTYPE, mode=0o660),
        entry("./dev/fifo", tarfile.FIFOTYPE, mode=0o666),
        entry("./etc/later/file", data=b"parent not listed first"),
    )
    tree, stats = unpacked.unpack_stream(stream, ID_A, root)

    assert tree == UnpackedRoot(root / ("a" * 64), ID_A)
    assert (tree.path / "usr/bin/mawk").read_bytes() == b"#!mawk\n"
    assert (tree.path / "etc/later/file").read_bytes() == b"parent not listed first"
    assert os.readlink(tree.path / "usr/bin/awk") == "/etc/alternatives"  # absolute: resolves in the sandbox
    assert os.readlink(tree.path / "bin") == "usr/bin"
    assert (tree.path / "usr/bin/mawk-too").stat().st_ino == (tree.path / "usr/bin/mawk").stat().st_ino
    assert sorted(os.listdir(tree.path / "dev")) == []  # device nodes and FIFOs skipped
    modes = {name: stat.S_IMODE((tree.path / name).lstat().st_mode)
             for name in ("", "usr/bin/mawk", "usr/bin/su", "usr/bin/wall", "etc/shadow", "tmp", "etc/later")}
    assert modes == {"": 0o555, "usr/bin/mawk": 0o555, "usr/bin/su": 0o555, "usr/bin/wall": 0o555,
                     "etc/shadow": 0o440, "tmp": 0o555, "etc/later": 0o555}
    for path in [tree.path, *tree.path.rglob("*")]:
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()), path
    assert (tree.path / "usr/bin/mawk").stat().st_mtime == MTIME
    assert (tree.path / "usr").stat().st_mtime == MTIME  # set after its children were written
    assert stats.files == 5 and stats.symlinks == 3 and stats.hardlinks == 1 and stats.skipped == 3
    assert stats.bytes == len(b"#!mawk\nsuwallroot:*:\nparent not listed first")
    record = json.loads((root / f"{'a' * 64}.json").read_text())
    assert record["id"] == ID_A and record["files"] == 5
    assert leftovers(root) == ["a" * 64, f"{'a' * 64}.json"]


def test_a_later_entry_replaces_an_earlier_one_and_a_symlink_is_replaced_not_followed(root: Path,
                                                                                     host: Path) -> None:
    target = host / "passwd"
    target.write_text("host\n")
    tree, _ = unpacked.unpack_stream(tar_stream(
        entry("etc/passwd", tarfile.SYMTYPE, link=str(target)),
        entry("etc/passwd", data=b"image\n"),
        entry("etc/motd", data=b"one"), entry("etc/motd", data=b"two"),
    ), ID_A, root)
    assert (tree.path / "etc/passwd").read_bytes() == b"image\n"
    assert not (tree.path / "etc/passwd").is_symlink()
    assert (tree.path / "etc/motd").read_bytes() == b"two"
    assert target.read_text() == "host\n"


# --- hostile entries -------------------------------------------------------------------


def test_absolute_names_land_inside_the_tree(root: Path, host: Path) -> None:
    tree, _ = unpacked.unpack_stream(tar_stream(entry(f"{host}/planted", data=b"x")), ID_A, root)
    assert os.listdir(host) == []
    assert (tree.path / str(host).lstrip("/") / "planted").read_bytes() == b"x"


@pytest.mark.parametrize(("entries", "message"), [
    ([entry("../x", data=b"x")],
     "vectraguard: refusing to unpack this image: the entry '../x' climbs out with '..'"),
    ([directory("usr/"), entry("usr/../../x", data=b"x")],
     "vectraguard: refusing to unpack this image: the entry 'usr/../../x' climbs out with '..'"),
    ([entry("escape", tarfile.SYMTYPE, link="{host}"), entry("escape/pwned", data=b"x")],
     "vectraguard: refusing to unpack this image: the entry 'escape/pwned' would be written through escape, "
     "which is a symlink or a file"),
    ([entry("escape", tarfile.SYMTYPE, link="../../host"), directory("escape/sub/")],
     "vectraguard: refusing to unpack this image: the entry 'escape/sub' would be written through escape, "
     "which is a symlink or a file"),
    ([directory("a/"), entry("a/up", tarfile.SYMTYPE, link="../../.."), entry("a/up/host/pwned", data=b"x")],
     "vectraguard: refusing to unpack this image: the entry 'a/up/host/pwned' would be written through a/up, "
     "which is a symlink or a file"),
    ([entry("escape", tarfile.SYMTYPE, link="{host}"), entry("x", tarfile.LNKTYPE, link="escape/secret")],
     "vectraguard: refusing to unpack this image: the entry 'x' would be written through escape, "
     "which is a symlink or a file"),
    ([entry("etc/passwd-link", tarfile.LNKTYPE, link="/etc/passwd")],
     "vectraguard: refusing to unpack this image: the entry 'etc/passwd-link' is a hard link to /etc/passwd, "
     "which is not in the image"),
    ([entry("x", tarfile.LNKTYPE, link="../etc/passwd")],
     "vectraguard: refusing to unpack this image: the entry 'x' is a hard link to '../etc/passwd', "
     "which climbs out with '..'"),
    ([directory("d/"), entry("d", data=b"x")],
     "vectraguard: refusing to unpack this image: the entry 'd' would replace a directory"),
], ids=["dotdot", "dotdot-inside", "symlink-then-file", "symlink-then-dir", "relative-symlink-up",
        "hardlink-through-symlink", "hardlink-to-host-passwd", "hardlink-dotdot", "file-over-dir"])
def test_hostile_entries_are_refused_and_leave_nothing(root: Path, host: Path,
                                                       entries: list[tuple[tarfile.TarInfo, bytes]],
                                                       message: str) -> None:
    (host / "secret").write_text("s")
    for info, _ in entries:
        info.linkname = info.linkname.replace("{host}", str(host))
    passwd_links = os.stat("/etc/passwd").st_nlink
    with pytest.raises(PolicyError) as refused:
        unpacked.unpack_stream(tar_stream(*entries), ID_A, root)
    assert refused.value.message == message
    assert os.listdir(host) == ["secret"] and (host / "secret").stat().st_nlink == 1
    assert os.stat("/etc/passwd").st_nlink == passwd_links
    assert not (root.parent / "x").exists()
    assert leftovers(root) == []  # no tree, no partial tree
    unpacked.set_ref("localhost/hostile:1", ID_A, root)
    assert unpacked.lookup("localhost/hostile:1", root) is None


def test_a_hard_link_to_etc_passwd_links_the_images_own_copy(root: Path) -> None:
    host_passwd = os.stat("/etc/passwd")
    tree, _ = unpacked.unpack_stream(tar_stream(
        entry("etc/passwd", data=b"image:x:0:0::/:/bin/sh\n"), entry("etc/passwd-link", tarfile.LNKTYPE, link="/etc/passwd"),
    ), ID_A, root)
    linked = (tree.path / "etc/passwd-link").stat()
    assert linked.st_ino == (tree.path / "etc/passwd").stat().st_ino != host_passwd.st_ino
    assert (tree.path / "etc/passwd-link").read_bytes() == b"image:x:0:0::/:/bin/sh\n"
    assert os.stat("/etc/passwd").st_nlink == host_passwd.st_nlink


def test_a_stream_that_is_not_a_whole_tar_leaves_nothing(root: Path) -> None:
    whole = tar_stream(entry("big", data=b"x" * 100_000)).getvalue()
    with pytest.raises(RuntimeUnavailable, match="did not arrive as a whole tar"):
        unpacked.unpack_stream(io.BytesIO(whole[:50_000]), ID_A, root)
    assert leftovers(root) == []


# --- completion, refs and replacing -----------------------------------------------------


def test_lookup_finds_only_complete_trees(root: Path) -> None:
    assert unpacked.lookup(DEFAULT_REF, root) is None  # nothing at all
    tree, _ = unpacked.unpack_stream(tar_stream(entry("f", data=b"x")), ID_A, root)
    assert unpacked.lookup(DEFAULT_REF, root) is None  # a tree no ref names
    unpacked.set_ref(DEFAULT_REF, ID_A, root)
    assert unpacked.lookup(DEFAULT_REF, root) == tree
    assert (root / "refs" / "localhost%2Fvectraguard%2Fdefault%3Abookworm").read_text() == f"{ID_A}\n"
    (root / f"{'a' * 64}.json").unlink()  # as if the writer died before its record
    assert unpacked.lookup(DEFAULT_REF, root) is None
    # The next unpack of that ID replaces the incomplete tree, and removes a killed writer's partial one.
    (root / f".partial-{'b' * 64}-dead").mkdir()
    again, stats = unpacked.unpack_stream(tar_stream(entry("g", data=b"y")), ID_A, root)
    assert stats.files == 1 and sorted(os.listdir(again.path)) == ["g"]
    assert unpacked.lookup(DEFAULT_REF, root) == again
    assert leftovers(root) == ["a" * 64, f"{'a' * 64}.json"]


@pytest.mark.parametrize("ref", ["", "..", ".", "a" * 300, "bad\nref"])
def test_lookup_of_a_ref_that_cannot_be_a_file_name_is_none(root: Path, ref: str) -> None:
    assert unpacked.lookup(ref, root) is None


def test_a_ref_moves_to_the_new_image_and_the_old_tree_goes_when_no_ref_names_it(root: Path) -> None:
    old, _ = unpacked.unpack_stream(tar_stream(entry("old", data=b"1")), ID_A, root)
    unpacked.set_ref(DEFAULT_REF, ID_A, root)
    unpacked.set_ref("localhost/other:1", ID_A, root)
    new, _ = unpacked.unpack_stream(tar_stream(entry("new", data=b"2")), ID_B, root)
    unpacked.set_ref(DEFAULT_REF, ID_B, root)
    assert unpacked.lookup(DEFAULT_REF, root) == new
    assert unpacked.discard_unreferenced(ID_A, root) is False  # localhost/other:1 still names it
    assert (old.path / "old").read_bytes() == b"1"
    unpacked.set_ref("localhost/other:1", ID_B, root)
    assert unpacked.discard_unreferenced(ID_A, root) is True
    assert not old.path.exists() and not (root / f"{'a' * 64}.json").exists()
    assert unpacked.lookup(DEFAULT_REF, root) == new and unpacked.lookup("localhost/other:1", root) == new
    assert leftovers(root) == ["b" * 64, f"{'b' * 64}.json"]
    assert not [p for p in (root / "refs").iterdir() if p.name.startswith(".")]  # no temporary ref files


def test_concurrent_unpacks_of_one_image_make_one_tree(root: Path) -> None:
    data = tar_stream(*(entry(f"d{i}/f{j}", data=os.urandom(4096)) for i in range(20) for j in range(20))).getvalue()
    results: list[tuple[UnpackedRoot, UnpackStats]] = []
    failures: list[BaseException] = []

    def unpack() -> None:
        try:
            results.append(unpacked.unpack_stream(io.BytesIO(data), ID_A, root))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=unpack) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert {tree for tree, _ in results} == {UnpackedRoot(root / ("a" * 64), ID_A)}
    assert sorted(stats.files for _, stats in results) == [0, 0, 0, 400]  # one unpacked, three found it
    assert len(list((root / ("a" * 64)).rglob("f*"))) == 400
    assert leftovers(root) == ["a" * 64, f"{'a' * 64}.json"]


# --- failure: disk full -----------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_one_clear_error_and_leaves_no_partial_tree(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        root = small / "rootfs"
        with pytest.raises(RuntimeUnavailable) as full:
            unpacked.unpack_stream(tar_stream(entry("big", data=b"x" * (4 << 20))), ID_A, root)
        assert full.value.lines() == [f"vectraguard: no space left to unpack the image under {root}; "
                                      "free some space there, or point VECTRAGUARD_ROOTFS_DIR elsewhere"]
        assert leftovers(root) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


# --- where trees live --------------------------------------------------------------------


def test_rootfs_dir_is_shared_not_per_data_dir_and_never_mountable(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("VECTRAGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VECTRAGUARD_ROOTFS_DIR", raising=False)
    expected = Path("/var/lib/vectraguard/rootfs") if os.geteuid() == 0 else tmp_path / "xdg/vectraguard/rootfs"
    assert paths.rootfs_dir() == expected
    assert str(expected) in paths.own_state() and "/var/lib/vectraguard" in paths.own_state()
    monkeypatch.setenv("VECTRAGUARD_ROOTFS_DIR", str(tmp_path / "elsewhere"))
    assert paths.rootfs_dir() == tmp_path / "elsewhere"
    assert str(tmp_path / "elsewhere") in paths.own_state()


# --- the one real test with Podman ----------------------------------------------------


def _podman_has(ref: str) -> bool:
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


def _export_containers() -> list[str]:
    listed = subprocess.run(["podman", "ps", "-a", "--filter", f"label={unpacked.LABEL_UNPACK}", "--format",
                             "{{.ID}}"], capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.mark.skipif(not _podman_has(DEFAULT_REF), reason=f"{DEFAULT_REF} is not in Podman's storage "
                    "(vectraguard image build)")
def test_image_unpack_exports_the_default_image_through_podman(root: Path) -> None:
    env = {**os.environ, "VECTRAGUARD_ROOTFS_DIR": str(root), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "vectraguard", "image", "unpack", DEFAULT_REF]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    tree = unpacked.lookup(DEFAULT_REF, root)
    assert tree is not None and done.stdout == f"{tree.path}\n"
    image_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", DEFAULT_REF],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert tree.image_id == f"sha256:{image_id}"
    assert f"vectraguard: unpacking {DEFAULT_REF} for isolation lite…\n" in done.stderr
    assert f"MiB (" in done.stderr and f" s into {tree.path}\n" in done.stderr
    for program in ("usr/bin/python3", "usr/bin/git"):
        assert os.access(tree.path / program, os.X_OK), program
    assert not [p for p in tree.path.rglob("*") if not p.is_symlink() and p.lstat().st_mode & 0o7222]
    assert _export_containers() == []
    # Once unpacked, a second call finds the tree without exporting again.
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and again.stdout == done.stdout and "unpacking" not in again.stderr


def test_a_reference_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    """Found by a blind attack: `image unpack $'\\xff'` was an internal error (UnicodeEncodeError)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "vectraguard", "image", "unpack", b"\xff".decode(errors="surrogateescape")],
                          capture_output=True, env={**os.environ, "VECTRAGUARD_ROOTFS_DIR": str(tmp_path)}, timeout=120)
    assert done.returncode == 125 and b"not UTF-8" in done.stderr and b"internal error" not in done.stderr, done.stderr
    assert unpacked.lookup(b"\xff".decode(errors="surrogateescape"), tmp_path) is None
