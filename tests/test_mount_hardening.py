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
