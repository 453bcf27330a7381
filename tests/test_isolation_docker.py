"""The isolation suite (tests/test_isolation.py) again, every sandbox run on Docker Engine
(`--engine docker`, vectraguard/runtime/docker/), checked from inside; and what proves from
inside and from the record which engine ran.

Each test of test_isolation.py is imported here and runs with that module's LEVEL set to
`--engine docker`. The test dockerd runs with userns-remap (contrib/docker/dockerd.sh);
skipped when no Docker daemon answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_isolation as iso
from tests.support.vg import Caller
from tests.test_isolation import *

DOCKER = ["--engine", "docker"]


@pytest.fixture(scope="module", autouse=True)
def _on_docker(docker_test_image: str) -> Iterator[None]:
    """Module-wide: every run of the imported tests goes to Docker Engine, whose images are copied first."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(iso, "LEVEL", DOCKER)
        yield


def test_the_record_says_which_engine_ran(root: Caller, workspace: Path, data_dir: Path) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    assert root.run([*iso.UNTRUSTED, *DOCKER, "--", "true"], cwd=workspace, extra_env=private).returncode == 0
    assert root.last_session(workspace, private)["events"][0]["engine"] == "docker"
    assert root.run([*iso.UNTRUSTED, "--engine", "podman", "--", "true"], cwd=workspace,
                    extra_env=private).returncode == 0
    assert root.last_session(workspace, private)["events"][0]["engine"] == "podman"


def test_the_sandbox_uid_is_not_the_hosts(root: Caller, workspace: Path) -> None:
    """userns-remap: uid 1000 inside is a uid of the daemon's remapped range outside (checked from inside:
    the sandbox's uid_map does not map 1000 to 1000)."""
    out = iso.inside(root, workspace, "id -u; cat /proc/self/uid_map")
    lines = out.split()
    assert lines[0] == "1000"
    inside_start, outside_start, length = (int(x) for x in lines[1:4])
    assert inside_start == 0 and outside_start >= 65536 and length <= 65536, out
