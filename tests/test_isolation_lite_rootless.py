"""The isolation suite (tests/test_isolation.py) at `--isolation lite`,
rootless: every sandbox is started by the unprivileged test user, with
best-effort limits (rootless lite makes no cgroup: lite/limits.py).

Opt-in (marker `isolation_matrix`, run with VECTRAGUARD_TEST_ISOLATION_MATRIX=1):
the rootless subset that CI runs is in test_isolation_lite.py (posture,
refusals, runs as the caller). The tests of test_isolation.py take the
`root` and `workspace` fixtures; this module overrides both with the
rootless caller and its workspace, so each test runs unchanged as that
user. Where rootless lite differs by design, the test is replaced below.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_isolation as iso
from tests.support.vg import TEST_IMAGE, Caller
from tests.test_isolation import *
from tests.test_isolation_lite import (  # noqa: F401  (where lite shows a property its own way)
    test_net01_only_loopback_nothing_reachable,
    test_sec01_only_the_fixed_environment_reaches_the_sandbox,
)

LITE_ROOTLESS = ["--isolation", "lite", "--set", "limits.enforcement=best-effort"]
DEFAULT_IMAGE = "localhost/vectraguard/default:bookworm"

pytestmark = [
    pytest.mark.isolation_matrix,
    pytest.mark.skipif(os.environ.get("VECTRAGUARD_TEST_ISOLATION_MATRIX") != "1",
                       reason="the rootless isolation matrix is opt-in: VECTRAGUARD_TEST_ISOLATION_MATRIX=1"),
]


@pytest.fixture(scope="module")
def root(rootless: Caller) -> Caller:
    """Every test of this module runs as the rootless test user."""
    return rootless


@pytest.fixture
def workspace(rootless_workspace: Path) -> Path:
    return rootless_workspace


@pytest.fixture(scope="module")
def default_image() -> str:
    """The rootless user's own default image (checked by _at_lite_rootless), not root's."""
    return DEFAULT_IMAGE


@pytest.fixture(scope="module", autouse=True)
def _at_lite_rootless(rootless: Caller) -> Iterator[None]:
    for image in (TEST_IMAGE, DEFAULT_IMAGE):
        unpacked = rootless.run(["image", "unpack", image], cwd=Path("/"), timeout=600)
        if unpacked.returncode != 0:
            pytest.skip(f"{image} is not in the rootless user's Podman storage: "
                        f"{unpacked.stderr.decode(errors='replace').strip()}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(iso, "LEVEL", LITE_ROOTLESS)
        yield


# -- where rootless lite differs by design (each replaces the test of that name) --------------

def test_dos02_memory_bomb_is_killed_and_reported_as_oom(root: Caller, workspace: Path) -> None:
    pytest.skip("rootless lite has no cgroup: memory is not capped (best-effort limits, said on every run)")
