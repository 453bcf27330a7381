"""Bind mounts carry exactly one filesystem, and only one the sandbox user can
use (issue 12 items 3 and 4), checked with real sandboxes from inside.

A filesystem mounted below a mount source (a tmpfs at `ws/sub`) kept its own
`rw`, `suid` and `dev` inside a read-only mount when binds were recursive;
now binds are not recursive, and a source with anything mounted below it is
refused before anything starts with a message that says what to do. A
workspace the sandbox user cannot read made runc fail late ("chdir to cwd
... permission denied"); now it is refused first, naming owner and mode.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import ROOTLESS_USER, Caller


@pytest.fixture
def with_submount(request: pytest.FixtureRequest) -> Iterator[tuple[Caller, Path]]:
    """(caller, a directory the caller owns with a tmpfs mounted at sub/)."""
    caller: Caller = request.getfixturevalue(request.param)
    base = Path(tempfile.mkdtemp(prefix="vg-submount-"))
    base.chmod(0o755)
    (base / "sub").mkdir()
    (base / "file.txt").write_text("top\n")
    for path in (base, base / "sub", base / "file.txt"):
        path.chmod(0o755 if path.is_dir() else 0o644)
        if caller.user:
            shutil.chown(path, caller.user, caller.user)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", str(base / "sub")], check=True)
    try:
        yield caller, base
    finally:
        subprocess.run(["umount", "-l", str(base / "sub")], check=False)
        shutil.rmtree(base, ignore_errors=True)


PROFILE = {"root": "test-untrusted", "rootless": "test-best-effort"}


@pytest.mark.parametrize("with_submount", ["root", "rootless"], indirect=True)
@pytest.mark.parametrize("how", ["workspace", "mount-ro"])
def test_a_source_with_a_filesystem_mounted_below_it_is_refused(with_submount: tuple[Caller, Path], how: str) -> None:
    caller, base = with_submount
    profile = PROFILE["root" if caller.user is None else "rootless"]
    args = [] if how == "workspace" else ["--workspace", "none", "--mount", f"{base}:/data:ro"]
    result = caller.run(["run", "-p", profile, *args, "--", "touch", "/workspace/sub/x", "/data/sub/x"], cwd=base)
    err = result.stderr.decode()
    assert result.returncode != 0, "a run whose source carries a submount started"
    assert f"{base}/sub" in err and "mounted below" in err and "--mount" in err, err
    assert "Traceback" not in err and "runc" not in err, err
    assert not list((base / "sub").iterdir()), "the sandbox wrote into the filesystem mounted below its read-only mount"


@pytest.mark.parametrize("with_submount", ["root"], indirect=True)
def test_the_submount_mounted_on_its_own_is_read_only_nosuid_nodev_inside(with_submount: tuple[Caller, Path]) -> None:
    """The advice the refusal gives, followed: the tmpfs as a mount of its own.
    (Root only: a filesystem root mounts after the rootless user's Podman set
    up its namespace is not seen there at all, and the run is refused by the
    check that the sandbox got what was checked.)"""
    caller, base = with_submount
    profile = PROFILE["root" if caller.user is None else "rootless"]
    result = caller.run(["run", "-p", profile, "--workspace", "none", "--mount", f"{base / 'sub'}:/data:ro", "--",
                         "sh", "-c", "touch /data/x; grep ' /data ' /proc/self/mountinfo"], cwd=base)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "Read-only file system" in err, err
    options = out.split()[5].split(",")
    assert {"ro", "nosuid", "nodev"} <= set(options), out
    assert not list((base / "sub").iterdir())


def test_binds_are_not_recursive_in_the_spec(root: Caller, workspace: Path) -> None:
    """What Podman is asked for (`vectraguard inspect`-like dry compile through the CLI is not available:
    the container itself says it): no mount below the workspace that Vectra Guard did not ask for."""
    result = root.run(["run", "-p", "test-untrusted", "--", "cat", "/proc/self/mountinfo"], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode()
    below = [line.split()[4] for line in result.stdout.decode().splitlines()
             if line.split()[4].startswith("/workspace/")]
    assert below == [], below


def test_a_workspace_the_sandbox_cannot_read_is_refused_before_anything_starts(root: Caller) -> None:
    private = Path(tempfile.mkdtemp())  # mode 0700, owned by root: what `mktemp -d` gives
    try:
        result = root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=private)
        err = result.stderr.decode()
        assert result.returncode != 0
        assert str(private) in err and "0700" in err and "uid 0" in err and "chmod o+rx" in err, err
        assert "runc" not in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        private.chmod(0o755)  # the advice, followed, works
        assert root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=private).returncode == 0
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_rootless_read_only_mount_of_a_private_directory_is_refused(rootless: Caller) -> None:
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    private = base / "private"
    private.mkdir(mode=0o700)
    shutil.chown(private, ROOTLESS_USER, ROOTLESS_USER)
    try:
        result = rootless.run(["run", "-p", "test-best-effort", "--workspace", "none", "--mount",
                               f"{private}:/data:ro", "--", "ls", "/data"], cwd=base)
        err = result.stderr.decode()
        assert result.returncode != 0 and str(private) in err and "0700" in err, err
        assert "runc" not in err and "Traceback" not in err, err
        # Read-write, the rootless sandbox runs as the caller, who owns it: that works.
        ok = rootless.run(["run", "-p", "test-best-effort", "--workspace", "none", "--mount",
                           f"{private}:/data:rw", "--", "ls", "/data"], cwd=base)
        assert ok.returncode == 0, ok.stderr.decode()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_hidden_home_entries_are_refused_read_write_and_allowed_read_only(rootless: Caller) -> None:
    """Python runs ~/.local/lib/python*/site-packages/*.pth at every start on
    the host: a read-write mount of any hidden entry of a home is a way out."""
    home = Path("/home") / ROOTLESS_USER
    target = home / ".local" / "lib"
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    for path in (home / ".local", target):
        shutil.chown(path, ROOTLESS_USER, ROOTLESS_USER)
    try:
        for source in (target, home / ".vimrc-dir-test"):
            source.mkdir(exist_ok=True)
            shutil.chown(source, ROOTLESS_USER, ROOTLESS_USER)
            refused = rootless.run(["run", "-p", "test-best-effort", "--workspace", "none", "--mount",
                                    f"{source}:/x:rw", "--", "touch", "/x/planted.pth"], cwd=Path("/tmp"))
            err = refused.stderr.decode()
            assert refused.returncode == 125 and "read-write" in err and "host reads and runs" in err, err
            assert not (source / "planted.pth").exists()
            allowed = rootless.run(["run", "-p", "test-best-effort", "--workspace", "none", "--mount",
                                    f"{source}:/x:ro", "--", "ls", "/x"], cwd=Path("/tmp"))
            assert allowed.returncode == 0, allowed.stderr.decode()
    finally:
        shutil.rmtree(home / ".vimrc-dir-test", ignore_errors=True)
        if created:
            shutil.rmtree(target, ignore_errors=True)


def test_a_read_write_mount_of_a_checkout_gets_the_workspace_guards(rootless: Caller) -> None:
    base = Path(tempfile.mkdtemp(prefix="vg-checkout-"))
    base.chmod(0o755)
    repo = base / "repo"
    (repo / ".git" / "hooks").mkdir(parents=True)
    (repo / ".git" / "config").write_text("[core]\n")
    subprocess.run(["chown", "-R", f"{ROOTLESS_USER}:{ROOTLESS_USER}", str(repo)], check=True)
    try:
        result = rootless.run(["run", "-p", "test-best-effort", "--workspace", "none", "--yes", "--mount",
                               f"{repo}:/r:rw", "--", "sh", "-c",
                               "echo x > /r/.git/hooks/post-checkout; echo y >> /r/.git/config; echo z > /r/ok"],
                              cwd=base)
        assert (repo / "ok").exists(), result.stderr.decode()  # the mount is read-write ...
        assert not (repo / ".git" / "hooks" / "post-checkout").exists()  # ... but not where git runs things
        assert (repo / ".git" / "config").read_text() == "[core]\n"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("mounts", [
    ["--mount", "{a}:/x:ro", "--mount", "{b}:/x/y:rw"],
    ["--mount", "{a}:/home:ro"],
    ["--mount", "{a}:/home/sandbox:ro"],
    ["--mount", "{a}:/tmp:ro"],
])
def test_mount_targets_that_nest_or_cover_the_sandboxs_own_are_one_located_line(
        root: Caller, workspace: Path, mounts: list[str]) -> None:
    other = Path(tempfile.mkdtemp(prefix="vg-other-"))
    other.chmod(0o777)
    try:
        args = [m.format(a=workspace, b=other) for m in mounts]
        result = root.run(["run", "-p", "test-untrusted", "--workspace", "none", *args, "--", "true"], cwd=workspace)
        err = result.stderr.decode()
        assert result.returncode == 125, err
        assert err.startswith("vectraguard: command line: mount target"), err
        assert len(err.strip().splitlines()) == 1 and "runc" not in err and "Podman" not in err, err
    finally:
        shutil.rmtree(other, ignore_errors=True)
