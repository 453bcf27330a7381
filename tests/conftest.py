"""Shared fixtures: the test image, test profiles, and callers (root, rootless).

Everything here is real: the CLI runs as a subprocess, Podman runs real
containers, and the test image is built locally from Debian's busybox-static
plus the vgprobe probe (tests/probe/vgprobe.c), since no registry is reachable.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.terminal import Terminal
from tests.support.testimage import build_test_image
from tests.support.vg import ROOTLESS_USER, TEST_IMAGE, Caller

# The network tests widen the allowlist from the command line on purpose
# (--allow): they test the egress path. Asking about that is tested in
# test_approvals, with profiles that keep the shipped decisions.
WIDEN = "risk:\n  decisions:\n    network-widened: allow\n"
TEST_PROFILES = {
    # The shipped `untrusted` profile, on the test image.
    "test-untrusted": f"extends: untrusted\nimage: {TEST_IMAGE}\n{WIDEN}",
    # The shipped `untrusted` profile on its own image (python3), for clients busybox has not.
    "test-python": f"extends: untrusted\n{WIDEN}",
    # The shipped `default` profile (its risk decisions untouched), on the test image.
    "test-default": f"extends: default\nimage: {TEST_IMAGE}\n",
    # `untrusted` with short limits, so the limit tests end quickly.
    "test-tight": (f"extends: untrusted\nimage: {TEST_IMAGE}\n"
                   "limits:\n  memory: 64Mi\n  pids: 64\n  timeout: 5s\n  kill_grace: 2s\n"),
    # Nothing written to /tmp or $HOME may be executed.
    "test-noexec": f"extends: untrusted\nimage: {TEST_IMAGE}\nfilesystem:\n  noexec_tmpfs: true\n",
    # Opts into best-effort limits (needed for rootless on cgroups v1/hybrid).
    "test-best-effort": (f"extends: untrusted\nimage: {TEST_IMAGE}\n"
                         "limits:\n  pids: 64\n  timeout: 20s\n  kill_grace: 2s\n  enforcement: best-effort\n" + WIDEN),
}


def _shared_dir(prefix: str, owner: str | None = None) -> Path:
    """A directory the rootless user can read (pytest's tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if owner:
        shutil.chown(path, owner, owner)
    return path


def _write_profiles(config_home: Path, owner: str | None) -> None:
    profiles = config_home / "vectraguard" / "profiles.d"
    profiles.mkdir(parents=True)
    for name, text in TEST_PROFILES.items():
        (profiles / f"{name}.yaml").write_text(text)
    if owner:
        for path in [config_home, *config_home.rglob("*")]:
            shutil.chown(path, owner, owner)


def _session_caller(user: str | None) -> Iterator[Caller]:
    """A caller with its test profiles and test image; checks for leaks at the end."""
    config_home = _shared_dir(f"vg-config-{user or 'root'}-", user)
    image_dir = _shared_dir("vg-image-")
    try:
        _write_profiles(config_home, user)
        caller = Caller(user, config_home)
        build_test_image(caller.podman(), TEST_IMAGE, image_dir)
        before, pooled_before = set(caller.sandboxes()), set(caller.pooled())
        yield caller
        leaked = set(caller.sandboxes()) - before
        assert not leaked, f"sandboxes left behind by the test suite ({user or 'root'}): {leaked}"
        # Pools are kept on purpose (agent-shell keeps one): `pool stop` must remove them all.
        caller.run(["pool", "stop"], cwd=Path("/"))
        left = set(caller.pooled()) - pooled_before
        assert not left, f"pooled sandboxes `pool stop` left behind ({user or 'root'}): {left}"
    finally:
        shutil.rmtree(config_home, ignore_errors=True)
        shutil.rmtree(image_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def root() -> Iterator[Caller]:
    yield from _session_caller(None)


@pytest.fixture(scope="session")
def rootless() -> Iterator[Caller]:
    try:
        pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.fail(f"the rootless tests need the user {ROOTLESS_USER!r}: run contrib/test.sh, which creates it")
    yield from _session_caller(ROOTLESS_USER)


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A project directory readable by every sandbox user (userns maps ids)."""
    path = _shared_dir("vg-ws-")
    (path / "hello.txt").write_text("hello from the workspace\n")
    (path / "hello.txt").chmod(0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A private VECTRAGUARD_DATA_DIR for one test (audit store, layers, recordings), root's."""
    path = Path(tempfile.mkdtemp(prefix="vg-data-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rootless_workspace() -> Iterator[Path]:
    path = _shared_dir("vg-ws-rootless-", ROOTLESS_USER)
    (path / "hello.txt").write_text("hello from the workspace\n")
    shutil.chown(path / "hello.txt", ROOTLESS_USER, ROOTLESS_USER)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def podman_available() -> bool:
    return shutil.which("podman") is not None and subprocess.run(
        ["podman", "version"], capture_output=True, check=False).returncode == 0


def pytest_report_header() -> list[str]:
    return [f"podman: {'found' if podman_available() else 'NOT FOUND'}; rootless user {ROOTLESS_USER}; "
            f"uid {os.geteuid()}"]


@pytest.fixture
def hang_up_leftovers() -> Iterator[None]:
    """A failed test must not leave its shell (and sandbox) running."""
    yield
    for term in list(Terminal.live):
        try:
            os.kill(term.pid, signal.SIGHUP)
            term.wait()
        except (OSError, AssertionError):
            pass


@pytest.fixture(scope="session")
def default_image(root: Caller) -> str:
    """The default image (Debian, with git and python3), built if this machine has none; its ID."""
    work = Path(tempfile.mkdtemp(prefix="vg-default-image-"))
    result = root.run(["image", "build"], cwd=work, timeout=1200, extra_env={"VECTRAGUARD_DATA_DIR": str(work)})
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    shutil.rmtree(work)
    return result.stdout.decode().strip()


@pytest.fixture(scope="session")
def docker_test_image(root: Caller) -> str:
    """The test image copied into Docker Engine (tests/support/docker.py); its ID. Skips without a daemon."""
    from tests.support.docker import docker_available, docker_image
    reason = docker_available()
    if reason:
        pytest.skip(reason)
    return docker_image(TEST_IMAGE, root.podman())


@pytest.fixture(scope="session")
def docker_default_image(default_image: str) -> str:
    """The default image copied into Docker Engine, tagged with its Podman name; its ID. Skips without a daemon."""
    from tests.support.docker import docker_available, docker_image
    reason = docker_available()
    if reason:
        pytest.skip(reason)
    return docker_image(default_image)
