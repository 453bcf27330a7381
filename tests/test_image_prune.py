"""`vectraguard image prune` removes Vectra Guard's untagged images and nothing else; `image list`
says which packages a variant holds (vectraguard/images/prune.py, commands/image.py).

Everything happens in a Podman storage of the test's own (`--root`, `--runroot`), served by a
Podman service the test starts and reached through $CONTAINER_HOST: the host's images, which
other runs use, are never listed or touched.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import podman_service
from tests.support.vg import Caller
from vectraguard.images import recipe


@pytest.fixture
def storage(root: Caller) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    """Podman's global flags for a private storage, the env that points vectraguard at its service, a tar."""
    place = Path(tempfile.mkdtemp(prefix="vg-prune-"))
    flags = ["--root", str(place / "root"), "--runroot", str(place / "run"), "--storage-driver", "vfs"]
    tar = place / "rootfs.tar"
    with tarfile.open(tar, "w") as archive:
        data = b"prune test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    try:
        with podman_service(root, flags, place / "podman.sock") as sock:
            yield flags, {"CONTAINER_HOST": f"unix://{sock}"}, tar
    finally:
        # Only this storage's containers and images (never `system reset`: it also removes the host's networks).
        for args in (["rm", "--all", "--force"], ["rmi", "--all", "--force"]):
            subprocess.run(["podman", *flags, *args], capture_output=True, timeout=120, check=False)
        subprocess.run(["umount", "--recursive", "--quiet", str(place / "run")], capture_output=True, check=False)
        shutil.rmtree(place, ignore_errors=True)


def _podman(flags: list[str], *args: str) -> str:
    done = subprocess.run(["podman", *flags, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _import(flags: list[str], tar: Path, labels: dict[str, str], name: str | None = None) -> str:
    changes = [word for key, value in labels.items() for word in ("--change", f"LABEL {key}={value}")]
    return _podman(flags, "import", "--quiet", *changes, str(tar), *([name] if name else [])).removeprefix("sha256:")


def test_prune_removes_only_vectraguards_untagged_images(root: Caller, workspace: Path,
                                                         storage: tuple[list[str], dict[str, str], Path]) -> None:
    flags, env, tar = storage
    old = _import(flags, tar, {recipe.LABEL: "default", "n": "1"})  # what a rebuild leaves: labelled, no tag
    tagged = _import(flags, tar, {recipe.LABEL: "variant", recipe.LABEL_PACKAGES: "jq,make", "n": "2"},
                     "localhost/vectraguard/variant:bookworm-test")
    foreign = _import(flags, tar, {"n": "3"})  # someone else's dangling image
    in_use = _import(flags, tar, {recipe.LABEL: "default", "n": "4"})
    container = _podman(flags, "create", in_use, "/hello.txt")
    listed = json.loads(root.run(["image", "list", "--json"], cwd=workspace, extra_env=env).stdout)
    assert {entry["id"].removeprefix("sha256:") for entry in listed} == {old, tagged, in_use}  # labelled only
    table = root.run(["image", "list"], cwd=workspace, extra_env=env).stdout.decode().splitlines()
    assert table[0].split() == ["ref", "id", "created", "size", "packages"]
    assert any(line.startswith("localhost/vectraguard/variant:bookworm-test") and line.endswith("jq, make")
               for line in table), table

    pruned = root.run(["image", "prune"], cwd=workspace, extra_env=env)
    lines = pruned.stdout.decode().splitlines()
    assert pruned.returncode == 1, pruned.stderr  # one could not be removed: said, and the status says so
    assert f"removed {old[:12]} (default, " in lines[0] or f"removed {old[:12]} (default, " in lines[1], lines
    kept = next(line for line in lines if line.startswith(f"kept {in_use[:12]} (default): "))
    assert "container" in kept, kept
    assert lines[-1].startswith("1 removed (")
    left = set(_podman(flags, "images", "--all", "--no-trunc", "--format", "{{.ID}}").split())
    assert {i.removeprefix("sha256:") for i in left} == {tagged, foreign, in_use}

    _podman(flags, "rm", container)
    again = root.run(["image", "prune", "--json"], cwd=workspace, extra_env=env)
    assert again.returncode == 0, again.stderr
    assert [(item["id"], item["removed"]) for item in json.loads(again.stdout)] == [(f"sha256:{in_use}", True)]
    nothing = root.run(["image", "prune"], cwd=workspace, extra_env=env)
    assert nothing.returncode == 0 and nothing.stdout == b"nothing to prune: no untagged Vectra Guard image\n"
