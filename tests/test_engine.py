"""Which engine runs a sandbox (runtime/engine.py): the profile's `engine`, `--engine`, the system policy,
and `image build --engine docker` (runtime/image_stores.py), against the real Podman and Docker daemons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import docker
from tests.support.refusal import refused
from tests.support.vg import Caller

P = ["run", "-p", "test-untrusted"]


@pytest.fixture(autouse=True)
def _images(docker_test_image: str) -> None:
    """The test image copied into Docker (skips when no daemon answers)."""


def _engine_of_last(root: Caller, workspace: Path, env: dict[str, str]) -> str:
    return str(root.last_session(workspace, env)["events"][0]["engine"])


def test_the_flag_or_a_set_key_names_the_engine_and_auto_is_podman_here(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    assert root.run([*P, "--set", "engine=docker", "--", "true"], cwd=workspace, extra_env=env).returncode == 0
    assert _engine_of_last(root, workspace, env) == "docker"
    assert root.run([*P, "--engine", "docker", "--", "true"], cwd=workspace, extra_env=env).returncode == 0
    assert _engine_of_last(root, workspace, env) == "docker"
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=env).returncode == 0  # auto: Podman is installed
    assert _engine_of_last(root, workspace, env) == "podman"


def test_the_default_engine_leaves_every_profiles_digest_as_it_was(root: Caller, workspace: Path) -> None:
    shown = json.loads(root.run(["profile", "show", "untrusted", "--json"], cwd=workspace).stdout)
    assert "engine" not in shown
    (workspace / ".vectraguard.yaml").write_text("version: 1\nprofiles:\n  on-docker:\n    extends: untrusted\n"
                                                 "    engine: docker\n")
    assert root.run(["trust"], cwd=workspace).returncode == 0
    named = json.loads(root.run(["profile", "show", "on-docker", "--json"], cwd=workspace).stdout)
    assert named["engine"] == {"name": "docker", "userns": "private"}


@pytest.mark.parametrize(("policy", "options", "expected"), [
    ("engine:\n  allowed: [podman]\n", ["--engine", "docker"], "engine.allowed"),
    ("engine:\n  userns_shared: false\n", ["--engine", "docker", "--set", "engine.userns=shared"],
     "engine.userns_shared"),
    ("", ["--engine", "docker", "--isolation", "lite"], "isolation lite"),
    ("", ["--engine", "docker", "--isolation", "gvisor"], "Podman only"),
    ("", ["--set", "engine=containerd"], "engine"),
])
def test_what_the_policy_or_the_engine_cannot_give_is_refused(root: Caller, workspace: Path, tmp_path: Path,
                                                              policy: str, options: list[str], expected: str) -> None:
    system = tmp_path / "etc"
    system.mkdir()
    if policy:
        (system / "policy.yaml").write_text("version: 1\n" + policy)
    result = root.run([*P, *options, "--", "true"], cwd=workspace, extra_env={"VECTRAGUARD_SYSTEM_DIR": str(system)})
    assert result.returncode == 125, result.stderr
    assert expected in result.stderr.decode(), result.stderr


def test_a_bad_engine_is_one_line(root: Caller, workspace: Path) -> None:
    message = refused(root, [*P, "--engine", "dockr", "--", "true"], workspace)
    assert "docker" in message


def test_image_build_imports_into_docker(root: Caller, workspace: Path) -> None:
    """The default image, built from Debian packages into Docker's storage (skipped when it is there
    already: then the build says so and gives its ID)."""
    result = root.run(["image", "build", "--engine", "docker"], cwd=workspace, timeout=1200)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    image_id = result.stdout.decode().strip()
    inspected = docker.call("GET", "/images/localhost/vectraguard/default:bookworm/json")
    assert inspected["Id"] == image_id
    assert inspected["Config"]["User"] == "1000:1000"
    assert inspected["Config"]["Labels"]["io.vectraguard.image"] == "default"


def test_doctor_reports_the_docker_daemon(root: Caller, workspace: Path) -> None:
    shown = root.run(["doctor", "--json"], cwd=workspace)
    found = {f["check"]: f for f in json.loads(shown.stdout)["checks"]}
    assert "userns-remap on" in found["docker engine"]["detail"], found["docker engine"]
    assert found["engine (auto)"]["detail"].startswith("Podman")


def test_a_project_file_cannot_accept_dockers_shared_uids(root: Caller, workspace: Path) -> None:
    (workspace / ".vectraguard.yaml").write_text("version: 1\nprofiles:\n  shared:\n    extends: untrusted\n"
                                                 "    engine: {name: docker, userns: shared}\n")
    result = root.run(["trust"], cwd=workspace)
    assert result.returncode == 125 and b"engine.userns" in result.stderr, result.stderr

