"""`vectraguard paths`: the directories in effect (vectraguard/paths.py), with the
XDG_* and VECTRAGUARD_* overrides of the caller's environment applied."""

from __future__ import annotations

import json
import pwd
from pathlib import Path

from tests.support.vg import Caller

NAMES = ["config", "system", "data", "recordings", "layers", "runtime", "cache", "rootfs"]


def _paths(caller: Caller, cwd: Path, env: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    result = caller.run(["paths", "--json"], cwd=cwd, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == NAMES
    assert all(row["what"] for row in rows)
    return {row["name"]: (row["path"], row["set_by"]) for row in rows}


def test_overrides_are_applied_and_named(root: Caller, workspace: Path, data_dir: Path, tmp_path: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "VECTRAGUARD_SYSTEM_DIR": str(tmp_path / "etc"), "VECTRAGUARD_ROOTFS_DIR": str(tmp_path / "rootfs"),
           "XDG_DATA_HOME": str(tmp_path / "ignored")}  # VECTRAGUARD_DATA_DIR wins over it
    found = _paths(root, workspace, env)
    assert found == {
        "config": (f"{root.config_home}/vectraguard", "XDG_CONFIG_HOME"),
        "system": (str(tmp_path / "etc"), "VECTRAGUARD_SYSTEM_DIR"),
        "data": (str(data_dir), "VECTRAGUARD_DATA_DIR"),
        "recordings": (f"{data_dir}/recordings", "VECTRAGUARD_DATA_DIR"),
        "layers": (f"{data_dir}/workspaces", "VECTRAGUARD_DATA_DIR"),
        "runtime": ("/run/vectraguard", "default"),
        "cache": (f"{tmp_path}/cache/vectraguard", "XDG_CACHE_HOME"),
        "rootfs": (str(tmp_path / "rootfs"), "VECTRAGUARD_ROOTFS_DIR"),
    }
    # What it names is where a run really keeps its records.
    ran = root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=workspace, extra_env=env)
    assert ran.returncode == 0, ran.stderr.decode()
    assert (Path(found["data"][0]) / "audit.db").is_file()


def test_a_users_defaults(rootless: Caller, rootless_workspace: Path) -> None:
    home = pwd.getpwnam("vgtest").pw_dir
    uid = pwd.getpwnam("vgtest").pw_uid
    found = _paths(rootless, rootless_workspace)
    assert found["data"] == (f"{home}/.local/share/vectraguard", "default")
    assert found["layers"] == (f"{home}/.local/share/vectraguard/workspaces", "default")
    assert found["cache"] == (f"{home}/.cache/vectraguard", "default")
    assert found["rootfs"] == (f"{home}/.local/share/vectraguard/rootfs", "default")
    assert found["runtime"] == (f"/tmp/vectraguard-{uid}", "default")  # no XDG_RUNTIME_DIR in the test's environment
    text = rootless.run(["paths"], cwd=rootless_workspace)
    assert text.returncode == 0 and f"/tmp/vectraguard-{uid}" in text.stdout.decode()
