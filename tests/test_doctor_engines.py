"""`vectraguard doctor` on a host with Docker Engine and without Podman, and with the default profile on
either engine: it checks the engines present and the one the default profile's `engine` chooses, and
fails only on what a run would need (vectraguard/doctor/engine_checks.py).

"Without Podman" is a PATH without the `podman` program for the doctor process (a directory of links
to every other program of the system's directories): nothing is uninstalled. "Without Docker" is a
DOCKER_HOST naming a socket that does not exist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import Caller

SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@pytest.fixture(autouse=True)
def _images(docker_default_image: str) -> None:
    """The default image in Docker (skips when no daemon answers)."""


@pytest.fixture
def no_podman(tmp_path: Path) -> dict[str, str]:
    """A PATH with every program of the system's directories but `podman`."""
    directory = tmp_path / "path-without-podman"
    directory.mkdir()
    for system in SYSTEM_DIRS:
        if not os.path.isdir(system):
            continue
        for name in os.listdir(system):
            link = directory / name
            if name != "podman" and not link.exists() and not link.is_symlink():
                link.symlink_to(os.path.join(system, name))
    assert not (directory / "podman").exists()
    return {"PATH": str(directory)}


def doctor(caller: Caller, cwd: Path, extra_env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]]]:
    result = caller.run(["doctor", "--json"], cwd=cwd, timeout=300, extra_env=extra_env)
    assert result.stderr == b"", result.stderr.decode(errors="replace")  # no traceback, no noise
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0)
    return result.returncode, {check["check"]: check for check in report["checks"]}


def test_without_podman_the_default_profile_runs_on_docker_and_doctor_passes(root: Caller, tmp_path: Path,
                                                                               no_podman: dict[str, str]) -> None:
    status, checks = doctor(root, tmp_path, no_podman)
    failed = {name: c for name, c in checks.items() if c["status"] == "fail"}
    assert status == 0 and failed == {}, failed
    assert checks["engine (auto)"]["detail"] == "Docker Engine (Podman is not installed) for profile default"
    assert checks["podman"] == {"check": "podman", "status": "ok", "hint": "",
                                "detail": "not installed (not needed: profile default runs on Docker Engine)"}
    # Nothing only Podman's runs need is reported, nor asked of a Podman service.
    for podman_only in ("podman service", "podman engine", "oci runtime in use", "subordinate ids", "network",
                        "default image", "isolation gvisor"):
        assert podman_only not in checks, checks[podman_only]
    engine = checks["docker engine"]["detail"]
    for said in ("Docker 20.10", "(API 1.41)", "rootful", "cgroup cgroupfs", "runtime runc", "userns-remap on"):
        assert said in engine, engine
    assert checks["docker default image"]["status"] == "ok"
    assert checks["docker entry program"]["status"] == "ok"


def test_without_either_engine_doctor_fails_with_both_fixes(root: Caller, tmp_path: Path,
                                                            no_podman: dict[str, str]) -> None:
    status, checks = doctor(root, tmp_path, {**no_podman, "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert status == 1
    assert checks["engine (auto)"]["status"] == "fail"
    assert "podman is not installed" in checks["engine (auto)"]["detail"]
    assert checks["podman"]["status"] == "fail" and checks["podman"]["detail"] == "not found in PATH"
    assert checks["docker engine"]["status"] == "ok"  # optional for auto: the Podman row says what to install


def test_a_default_profile_on_docker_fails_on_docker_only_and_warns_of_podman(root: Caller, tmp_path: Path) -> None:
    """With Podman installed too: the image missing from both engines fails in Docker (the run needs it)
    and is a warning in Podman (no run of the default profile needs it there)."""
    config = tmp_path / "config"
    (config / "vectraguard" / "profiles.d").mkdir(parents=True)
    ref = "localhost/vectraguard/default:nosuchsuite"
    (config / "vectraguard" / "profiles.d" / "default.yaml").write_text(f"image: {ref}\nengine: docker\n")
    status, checks = doctor(root, tmp_path, {"XDG_CONFIG_HOME": str(config)})
    assert status == 1
    assert checks["engine (docker)"]["detail"] == "Docker Engine (as the profile says) for profile default"
    assert checks["docker default image"] == {
        "check": "docker default image", "status": "fail", "detail": f"{ref} is not in Docker's storage",
        "hint": "build it: vectraguard image build --engine docker --suite nosuchsuite"}
    podman_image = checks["default image"]
    assert podman_image["status"] == "warn"
    assert podman_image["detail"] == f"{ref} is not built (not needed: profile default runs on Docker Engine)"
    assert [name for name, c in checks.items() if c["status"] == "fail"] == ["docker default image"]
