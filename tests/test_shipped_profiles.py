"""Each shipped profile produces the container it promises — checked inside.

The promise is read from `vectraguard profile show NAME --json`; the facts
from inside a real container of that profile (on the test image).
"""

from __future__ import annotations

import json
import pwd
from pathlib import Path

import pytest

from tests.support.vg import ROOTLESS_USER, TEST_IMAGE, Caller
from vectraguard import units

INSIDE = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes "
          "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; "
          "ulimit -n; id -u; id -g; pwd; ls /sys/class/net; "
          "grep -E ' /(tmp|home/sandbox|workspace) ' /proc/self/mountinfo")


@pytest.mark.parametrize("name", ["default", "untrusted", "dev"])
def test_shipped_profile_is_what_the_container_gets(root: Caller, workspace: Path, name: str) -> None:
    workspace.chmod(0o777)  # so that `dev`'s read-write workspace can be granted rootful
    promised = json.loads(root.run(["profile", "show", name, "--json"], cwd=workspace).stdout)
    result = root.run(["run", "-p", name, "--image", TEST_IMAGE, "--", "sh", "-c", INSIDE], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    memory = units.parse_size(promised["limits"]["memory"])
    assert int(lines[0]) == memory and int(lines[1]) == memory  # memory+swap capped at the same value
    assert int(lines[2]) == promised["limits"]["pids"]
    assert int(lines[3]) / int(lines[4]) == pytest.approx(promised["limits"]["cpus"])
    assert int(lines[5]) == promised["limits"]["nofile"]
    assert f"{lines[6]}:{lines[7]}" == promised["security"]["user"]
    assert lines[8] == promised["filesystem"]["workspace"]["target"]
    assert lines[9] == "lo"  # network: none
    mounts = {line.split()[4]: line for line in lines[10:]}
    tmp_size = units.parse_size(promised["filesystem"]["tmp_size"]) // 1024
    assert f"size={tmp_size}k" in mounts["/tmp"]
    assert f"size={units.parse_size(promised['filesystem']['home_size']) // 1024}k" in mounts["/home/sandbox"]
    workspace_mount, mode = mounts["/workspace"].split(), promised["filesystem"]["workspace"]["mode"]
    if mode == "overlay":  # writable inside, through an overlay whose lower layer is the real directory
        assert workspace_mount[5].startswith("rw") and workspace_mount[workspace_mount.index("-") + 1] == "overlay"
    else:
        assert workspace_mount[5].startswith(mode)


def test_dev_keeps_its_writes_for_review(rootless: Caller, rootless_workspace: Path) -> None:
    result = rootless.run(["run", "-p", "dev", "--image", TEST_IMAGE, "--set", "limits.enforcement=best-effort",
                           "--", "sh", "-c", "echo built > out.txt; cat out.txt"], cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"built\n"
    assert not (rootless_workspace / "out.txt").exists()
    assert "1 path(s) changed in the workspace (0 protected), kept for review" in result.stderr.decode()


def test_dev_rw_writes_the_workspace_as_the_rootless_caller(rootless: Caller, rootless_workspace: Path) -> None:
    result = rootless.run(["run", "-p", "dev", "--workspace", "rw", "--image", TEST_IMAGE,
                           "--set", "limits.enforcement=best-effort",
                           "--", "sh", "-c", "echo built > out.txt; id -u"], cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"1000\n"
    written = rootless_workspace / "out.txt"
    assert written.read_text() == "built\n"
    assert written.stat().st_uid == pwd.getpwnam(ROOTLESS_USER).pw_uid


def test_rootful_read_write_workspace_is_refused_before_anything_starts(root: Caller, workspace: Path) -> None:
    result = root.run(["run", "-p", "dev", "--workspace", "rw", "--image", TEST_IMAGE, "--", "touch", "x"],
                      cwd=workspace)
    assert result.returncode == 125
    assert result.stderr.decode() == (
        f"vectraguard: cannot give a rootful sandbox write access to {workspace} (owned by uid 0): each sandbox "
        "has a user namespace of its own; run vectraguard as a regular user (rootless: the sandbox then writes "
        "as you), or mount it read-only\n")
    assert not (workspace / "x").exists()

