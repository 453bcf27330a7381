"""Each shipped profile produces the container it promises — checked inside.

The promise is read from `vectraguard profile show NAME --json`; the facts
from inside a real container of that profile (on the test image).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.vg import TEST_IMAGE, Caller
from vectraguard import units

INSIDE = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes "
          "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; "
          "ulimit -n; id -u; id -g; pwd; ls /sys/class/net; "
          "grep -E ' /(tmp|home/sandbox|workspace) ' /proc/self/mountinfo")


@pytest.mark.parametrize("name", ["default", "untrusted"])
def test_shipped_profile_is_what_the_container_gets(root: Caller, workspace: Path, name: str) -> None:
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
    assert mounts["/workspace"].split()[5].startswith(promised["filesystem"]["workspace"]["mode"])
