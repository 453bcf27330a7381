"""The isolation suite (tests/test_isolation.py) at `--isolation gvisor`,
rootless: every sandbox is started by the unprivileged test user, with
best-effort limits (rootless runsc cannot use cgroups: --ignore-cgroups).

Opt-in, like test_isolation_lite_rootless.py (marker `isolation_matrix`,
VECTRAGUARD_TEST_ISOLATION_MATRIX=1); the rootless gVisor test CI runs is
test_isolation_gvisor.py's test_rootless_gvisor_with_best_effort_limits.
Each test of test_isolation.py runs as the rootless user, with the
replacements of test_isolation_gvisor.py where gVisor shows a property its
own way; the tests below differ rootless by design.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_isolation as iso
import tests.test_isolation_gvisor as gv
from tests.support.vg import Caller
from tests.test_isolation import *

GVISOR_ROOTLESS = ["--isolation", "gvisor", "--set", "limits.enforcement=best-effort"]
DEFAULT_IMAGE = "localhost/vectraguard/default:bookworm"
# gVisor's replacements that hold rootless as they are (the rest name the rootful caller or its ids).
for _name in ("test_iso01_no_capabilities_no_new_privs_seccomp_non_root", "test_iso02_every_namespace_differs_from_the_host",
              "test_iso06_minimal_dev_no_mknod_no_kmsg", "test_iso07_kcore_and_keys_reveal_nothing",
              "test_priv04_dangerous_syscalls_are_blocked", "test_ordinary_syscalls_still_work",
              "test_fs01_writes_outside_the_mounts_fail_and_the_host_is_unchanged",
              "test_tmp_and_home_are_size_capped_nosuid_nodev_tmpfs", "test_net01_only_loopback_nothing_reachable"):
    if hasattr(gv, _name):
        globals()[_name] = getattr(gv, _name)

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
    return DEFAULT_IMAGE


@pytest.fixture(scope="module", autouse=True)
def _at_gvisor_rootless() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(iso, "LEVEL", GVISOR_ROOTLESS)
        yield


def test_dos02_memory_bomb_is_killed_and_reported_as_oom(root: Caller, workspace: Path) -> None:
    pytest.skip("rootless gVisor has no cgroup: memory is not capped (best-effort limits, said on every run)")
