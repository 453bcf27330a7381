"""`vectraguard image build|list`: a real mmdebstrap build, imported into real Podman.

The build downloads from the Debian mirror (~30-60 s); the session builds
the default image once (rootful, a --rebuild over the image the machine
has) and once rootless. Failure tests stop before any download.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.support.vg import DEFAULT_IMAGE_REF, ROOTLESS_USER, Caller

BUILD_TIMEOUT = 1200
PACKAGE_COMMANDS = "bash curl git python3 less file xz unzip ps"


def inspect(caller: Caller, ref: str) -> dict[str, Any] | None:
    argv, env = caller.argv(["podman", "image", "inspect", "--format", "json", ref])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def current_id(caller: Caller) -> str:
    image = inspect(caller, DEFAULT_IMAGE_REF)
    assert image is not None, f"{DEFAULT_IMAGE_REF} is not in Podman's storage"
    return f"sha256:{image['Id']}"


def private_dir(owner: str | None = None) -> Path:
    path = Path(tempfile.mkdtemp(prefix="vg-data-"))
    if owner:
        shutil.chown(path, owner, owner)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """Where the build record goes (VECTRAGUARD_DATA_DIR), not the real user's data."""
    path = private_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Build(NamedTuple):
    result: subprocess.CompletedProcess[bytes]
    replaced: str | None  # the image ID the build replaced, None when the machine had none


@pytest.fixture(scope="session")
def build(root: Caller, data_dir: Path) -> Build:
    """One real build over whatever the machine already has (hence --rebuild): the build every test here
    looks at, and the rebuild (each build costs ~50 s)."""
    before = inspect(root, DEFAULT_IMAGE_REF)
    result = root.run(["image", "build", "--rebuild"], cwd=data_dir, timeout=BUILD_TIMEOUT,
                      extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return Build(result, f"sha256:{before['Id']}" if before else None)


@pytest.fixture(scope="session")
def built(build: Build) -> subprocess.CompletedProcess[bytes]:
    return build.result


def test_build_reports_its_phases_and_prints_the_image_id(built: subprocess.CompletedProcess[bytes]) -> None:
    stderr = built.stderr.decode()
    image_id = built.stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == len("sha256:") + 64
    assert "vectraguard: building rootfs of Debian bookworm with mmdebstrap" in stderr
    assert "vectraguard: importing into Podman…\n" in stderr
    assert f"vectraguard: done: {DEFAULT_IMAGE_REF} {image_id} (" in stderr
    # mmdebstrap's own chatter is shown only with -v
    assert "I: " not in stderr


def test_image_is_labelled_and_configured_for_the_sandbox_user(root: Caller, built: Any) -> None:
    image = inspect(root, DEFAULT_IMAGE_REF)
    assert image is not None
    assert image["Labels"]["io.vectraguard.image"] == "default"
    assert image["Labels"]["io.vectraguard.suite"] == "bookworm"
    config = image["Config"]
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/workspace"
    assert config["Cmd"] == ["/bin/bash"]


def test_sandbox_runs_as_the_image_user_1000(root: Caller, built: Any, workspace: Path) -> None:
    result = root.run(["run", "--", "sh", "-c", "id -u; id -un; echo ~"], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"1000\nsandbox\n/home/sandbox\n"


def test_image_has_the_tools_a_sandbox_needs(root: Caller, built: Any, workspace: Path) -> None:
    result = root.run(["run", "--", "sh", "-c", f"for c in {PACKAGE_COMMANDS}; do command -v $c; done"],
                      cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert len(result.stdout.splitlines()) == len(PACKAGE_COMMANDS.split())


def test_image_carries_no_host_dns_configuration(built: Any) -> None:
    # Podman mounts its own /etc/hostname and resolv.conf into containers, so
    # look at the image's files themselves.
    mounted = subprocess.run(["podman", "image", "mount", DEFAULT_IMAGE_REF], capture_output=True, text=True, timeout=60, check=True)
    try:
        etc = Path(mounted.stdout.strip()) / "etc"
        assert (etc / "resolv.conf").read_bytes() == b""
        assert (etc / "hostname").read_bytes() == b"sandbox\n"
        assert "sandbox:x:1000:1000:" in (etc / "passwd").read_text()
    finally:
        subprocess.run(["podman", "image", "unmount", DEFAULT_IMAGE_REF], capture_output=True, timeout=60, check=False)


def test_build_record_names_the_image(root: Caller, built: Any, data_dir: Path) -> None:
    path = data_dir / "images" / "default.json"
    record = json.loads(path.read_text())
    assert record["ref"] == DEFAULT_IMAGE_REF
    assert record["id"] == current_id(root)
    assert record["suite"] == "bookworm"
    assert {"bash", "ca-certificates", "curl", "git", "python3"} <= set(record["packages"])
    assert datetime.fromisoformat(record["built_at"]).tzinfo is not None
    assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)


def test_second_build_skips_and_names_the_existing_image(root: Caller, built: Any, data_dir: Path) -> None:
    image_id = current_id(root)
    result = root.run(["image", "build"], cwd=data_dir, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert result.returncode == 0
    assert result.stderr.decode() == (f"vectraguard: {DEFAULT_IMAGE_REF} already exists ({image_id}); "
                                      "skipping the build (--rebuild builds it again)\n")
    assert result.stdout.decode() == f"{image_id}\n"


def test_list_shows_the_image(root: Caller, built: Any, data_dir: Path) -> None:
    image_id = current_id(root)
    table = root.run(["image", "list"], cwd=data_dir)
    assert table.returncode == 0
    lines = table.stdout.decode().splitlines()
    assert lines[0].split() == ["ref", "id", "created", "size", "packages"]
    row = next(line.split() for line in lines[2:] if line.startswith(DEFAULT_IMAGE_REF + " "))
    assert row[1] == image_id.removeprefix("sha256:")[:12]
    assert row[-1] == "MiB"

    listed = root.run(["image", "list", "--json"], cwd=data_dir)
    entries = json.loads(listed.stdout)
    entry = next(e for e in entries if e["ref"] == DEFAULT_IMAGE_REF)
    assert entry["id"] == image_id
    assert entry["kind"] == "default"
    assert entry["size"] > 50 << 20
    # only Vectra Guard's images: the busybox test image carries no label
    assert all(e["kind"] for e in entries)


def test_bad_suite_is_refused_before_anything_runs(root: Caller, data_dir: Path) -> None:
    result = root.run(["image", "build", "--suite=-x"], cwd=data_dir)
    assert result.returncode == 125
    stderr = result.stderr.decode()
    assert stderr.startswith("vectraguard: --suite '-x' is not a Debian suite name")
    assert "use a codename such as bookworm or trixie" in stderr


def test_missing_mmdebstrap_is_a_clear_error(root: Caller, built: Any, tmp_path: Path) -> None:
    (tmp_path / "podman").symlink_to(subprocess.check_output(["sh", "-c", "command -v podman"], text=True).strip())
    before = current_id(root)
    result = root.run(["image", "build", "--rebuild"], cwd=tmp_path, extra_env={"PATH": str(tmp_path)})
    assert result.returncode == 125
    stderr = result.stderr.decode()
    assert "vectraguard: mmdebstrap is not installed (it builds the image from Debian packages)" in stderr
    assert "apt-get install mmdebstrap" in stderr
    assert current_id(root) == before


def test_unreachable_mirror_fails_closed_and_keeps_the_image(root: Caller, built: Any, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mirror = f"http://127.0.0.1:{port}/debian"
    before = current_id(root)
    result = root.run(["-v", "image", "build", "--rebuild", "--mirror", mirror], cwd=tmp_path, timeout=300,
                      extra_env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 125
    stderr = result.stderr.decode()
    assert f"vectraguard: the Debian mirror {mirror} is unreachable" in stderr
    assert "or pass --mirror URL of a reachable Debian mirror" in stderr
    assert f"E: Failed to fetch {mirror}/dists/bookworm/InRelease" in stderr  # apt's own reason, as a detail
    assert "I: running apt-get update..." in stderr  # -v passes mmdebstrap's output through
    assert current_id(root) == before
    assert list(tmp_path.iterdir()) == []  # no rootfs tar, no mmdebstrap chroot left behind


def test_interrupted_build_cleans_up(root: Caller, built: Any, tmp_path: Path) -> None:
    before = current_id(root)
    work = tmp_path / "tmp"
    work.mkdir()
    argv, env = root.argv(root.vg(["image", "build", "--rebuild"]), {"TMPDIR": str(work)})
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    assert first.startswith("vectraguard: building rootfs")
    # Wait until mmdebstrap has made its chroot, then Ctrl-C the whole job.
    _wait_for(lambda: any(work.rglob("mmdebstrap.*")), proc)
    os.killpg(proc.pid, signal.SIGINT)
    rest = proc.communicate(timeout=180)[1].decode()
    assert proc.returncode == 130
    assert "vectraguard: interrupted" in rest
    assert list(work.iterdir()) == []  # neither our rootfs tar nor mmdebstrap's chroot
    assert current_id(root) == before


def _wait_for(condition: Any, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if condition() or proc.poll() is not None:
            return
        time.sleep(0.1)


def test_rebuild_builds_a_new_image_and_drops_the_old_one(root: Caller, build: Build, data_dir: Path) -> None:
    replaced = build.replaced
    if replaced is None:
        pytest.skip("the machine had no default image before the build: nothing was rebuilt")
        return
    new = current_id(root)
    stderr = build.result.stderr.decode()
    assert "vectraguard: building rootfs of Debian bookworm" in stderr
    assert build.result.stdout.decode() == f"{new}\n"
    assert json.loads((data_dir / "images" / "default.json").read_text())["id"] == new
    if new != replaced:  # the same bytes would give the same ID
        assert f"vectraguard: removed the image it replaces ({replaced})" in stderr
        assert inspect(root, replaced) is None


def test_rootless_build_works_through_mmdebstrap_unshare_mode(rootless: Caller, rootless_workspace: Path) -> None:
    data = private_dir(ROOTLESS_USER)
    try:
        built = rootless.run(["image", "build", "--rebuild"], cwd=data, timeout=BUILD_TIMEOUT,
                             extra_env={"VECTRAGUARD_DATA_DIR": str(data)})
        assert built.returncode == 0, built.stderr.decode(errors="replace")
        assert built.stdout.decode() == f"{current_id(rootless)}\n"
        assert json.loads((data / "images" / "default.json").read_text())["id"] == current_id(rootless)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    # The rootless user's own storage; best-effort limits, as rootless cgroups v1 needs.
    result = rootless.run(["run", "-p", "test-best-effort", "--image", DEFAULT_IMAGE_REF, "--", "sh", "-c", "id -u; id -un"],
                          cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"1000\nsandbox\n"
