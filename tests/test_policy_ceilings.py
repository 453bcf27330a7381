"""The system policy as an administrator meets it: doctor validates it and names
the profiles it refuses; shipped defaults above a ceiling are lowered, values
someone set beyond one are refused (config/ceilings.py, doctor/policy_checks.py)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PROFILES
from tests.support.vg import TEST_IMAGE, Caller

# The memory limit as the sandbox's own cgroup states it (v2, else v1).
READ_MEMORY_LIMIT = ["sh", "-c", ("cat /sys/fs/cgroup/memory.max 2>/dev/null || "
                                  "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")]


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Caller, dict[str, str]]]:
    """(a system directory of its own, a caller with its own config home, the environment naming both)."""
    base = Path(tempfile.mkdtemp(prefix="vg-policy-"))
    base.chmod(0o755)
    system, home, data = base / "etc", base / "config", base / "data"
    (system / "profiles.d").mkdir(parents=True)
    profiles = home / "vectraguard" / "profiles.d"
    profiles.mkdir(parents=True)
    data.mkdir(mode=0o700)
    for name, text in TEST_PROFILES.items():
        (profiles / f"{name}.yaml").write_text(text)
    yield system, Caller(None, home), {"VECTRAGUARD_SYSTEM_DIR": str(system), "VECTRAGUARD_DATA_DIR": str(data)}
    shutil.rmtree(base, ignore_errors=True)


def _doctor(caller: Caller, cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]]]:
    result = caller.run(["doctor", "--json"], cwd=cwd, timeout=300, extra_env=env)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0)
    return result.returncode, {check["check"]: check for check in report["checks"]}


def test_doctor_fails_on_an_invalid_policy_and_says_where(dirs: tuple[Path, Caller, dict[str, str]],
                                                         workspace: Path) -> None:
    system, caller, env = dirs
    policy = system / "policy.yaml"
    policy.write_text("version: 1\nlimits:\n  max:\n    memroy: 1Gi\n")
    status, checks = _doctor(caller, workspace, env)
    assert status == 1
    found = checks["system policy"]
    assert found["status"] == "fail"
    assert found["detail"].startswith(f"{policy} is invalid, so every run is refused: {policy}:4: limits.max: ")
    assert "memroy" in found["detail"] and str(policy) in found["hint"]
    # As a run reads it: refused, located, whatever the profile.
    refused = caller.run(["run", "-p", "test-untrusted", "--", "true"], cwd=workspace, extra_env=env)
    assert refused.returncode == 125 and f"{policy}:4" in refused.stderr.decode()


def test_doctor_fails_when_the_policy_refuses_the_default_profile(dirs: tuple[Path, Caller, dict[str, str]],
                                                                  workspace: Path) -> None:
    system, caller, env = dirs
    (system / "policy.yaml").write_text("version: 1\nnetwork:\n  modes: [full]\n")
    status, checks = _doctor(caller, workspace, env)
    assert status == 1
    assert checks["system policy"]["status"] == "ok"
    default = checks["policy: profile default"]
    assert default["status"] == "fail"
    # The shipped file, wherever the vectraguard under test has it (a checkout's, or the installed share/).
    assert re.search(r"/profiles/default\.yaml:\d+: network\.mode: none is not an allowed network mode \(full\)",
                     default["detail"]), default["detail"]
    assert "(runs without -p use it)" in default["detail"]
    assert checks["policy: profile untrusted"]["status"] == "warn"  # the others are listed too


def test_doctor_names_an_etc_profile_beyond_a_ceiling(dirs: tuple[Path, Caller, dict[str, str]],
                                                     workspace: Path) -> None:
    system, caller, env = dirs
    (system / "policy.yaml").write_text("version: 1\nlimits:\n  max:\n    memory: 256Mi\n")
    big = system / "profiles.d" / "big.yaml"
    big.write_text("extends: untrusted\nlimits:\n  memory: 1Gi\n")
    status, checks = _doctor(caller, workspace, env)
    assert status == 0  # a warning: runs of `big` are refused, every other profile runs
    found = checks["policy: profile big"]
    assert found["status"] == "warn"
    assert found["detail"] == (f"refused by the system policy: {big}:3: limits.memory: 1Gi is above the maximum "
                               f"256Mi; refused by policy rule limits.max.memory ({system / 'policy.yaml'}:4)")
    assert found["hint"].startswith(f"the system profile {big} sets a value beyond the policy")
    # Issue 18: the summary above those lines said "profiles ok"; it says the refusal too.
    assert checks["profiles"]["status"] == "warn"
    assert checks["profiles"]["detail"].endswith("; the system policy refuses 1: big"), checks["profiles"]["detail"]
    assert checks["profiles"]["hint"] == ("see the `policy: profile NAME` lines below: runs of those profiles are "
                                          "refused")
    # The shipped defaults above it are lowered, not refused: default still passes.
    assert "policy: profile default" not in checks
    assert "limits.memory -> 256Mi" in checks["system policy"]["detail"]


def test_a_shipped_default_above_a_ceiling_is_lowered_and_the_run_proceeds(
        dirs: tuple[Path, Caller, dict[str, str]], workspace: Path) -> None:
    """test-untrusted takes its memory limit (512Mi) from the shipped `untrusted` profile."""
    system, caller, env = dirs
    policy = system / "policy.yaml"
    policy.write_text("version: 1\nlimits:\n  max:\n    memory: 256Mi\n")
    result = caller.run(["run", "-p", "test-untrusted", "--", *READ_MEMORY_LIMIT], cwd=workspace, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert int(result.stdout) == 256 << 20  # seen from inside the sandbox's own cgroup
    assert result.stderr.decode() == (
        "vectraguard: notice: shipped defaults above the system policy's ceilings were lowered: "
        f"limits.memory 512Mi -> 256Mi ({policy}:4)\n")
    quiet = caller.run(["-q", "run", "-p", "test-untrusted", "--", "true"], cwd=workspace, extra_env=env)
    assert (quiet.returncode, quiet.stderr) == (0, b"")
    # `profile show --explain` shows the value runs get, set by the policy.
    shown = caller.run(["profile", "show", "test-untrusted", "--explain", "--json"], cwd=workspace, extra_env=env)
    [memory] = [row for row in json.loads(shown.stdout) if row["key"] == "limits.memory"]
    assert memory == {"key": "limits.memory", "value": "256Mi", "set by": f"{policy}:4"}


def test_a_value_someone_set_beyond_a_ceiling_is_refused(dirs: tuple[Path, Caller, dict[str, str]],
                                                         workspace: Path) -> None:
    system, caller, env = dirs
    policy = system / "policy.yaml"
    policy.write_text("version: 1\nlimits:\n  max:\n    memory: 256Mi\n")
    mine = caller.config_home / "vectraguard" / "profiles.d" / "mine.yaml"
    mine.write_text(f"extends: untrusted\nimage: {TEST_IMAGE}\nlimits:\n  memory: 300Mi\n")
    for args, origin in [(["-p", "mine"], f"{mine}:4"), (["-p", "test-untrusted", "--memory", "1Gi"], "command line")]:
        refused = caller.run(["run", *args, "--", "true"], cwd=workspace, extra_env=env)
        stderr = refused.stderr.decode()
        assert refused.returncode == 125, stderr
        assert "vectraguard: the system policy refuses this run" in stderr
        assert f"{origin}: limits.memory: " in stderr
        assert f"refused by policy rule limits.max.memory ({policy}:4)" in stderr
        assert "lowered" not in stderr


def test_doctor_fails_when_the_policys_mount_roots_refuse_a_run_from_here(
        dirs: tuple[Path, Caller, dict[str, str]], workspace: Path) -> None:
    """A valid policy whose mount_roots admit nothing: every run is refused, so doctor is not "ready"."""
    system, caller, env = dirs
    (system / "policy.yaml").write_text("version: 1\nfilesystem:\n  mount_roots: [/nonexistent-root]\n")
    status, checks = _doctor(caller, workspace, env)
    assert (status, checks["system policy"]["status"]) == (1, "ok")
    here = checks["a run here"]
    assert here["status"] == "fail"
    assert f"{workspace} is outside the allowed mount roots (/nonexistent-root)" in here["detail"]
    assert str(system / "policy.yaml") in here["detail"]
    (system / "policy.yaml").write_text(f"version: 1\nfilesystem:\n  mount_roots: [{workspace.parent}]\n")
    status, checks = _doctor(caller, workspace, env)
    assert checks["a run here"]["status"] == "ok", checks["a run here"]
