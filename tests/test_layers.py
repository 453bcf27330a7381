"""Layers end to end through the real CLI: precedence, merge rules, provenance,
project trust, the system policy's ceilings — and what reaches the container."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import ROOTLESS_USER, TEST_IMAGE, Caller


@pytest.fixture
def system_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vg-etc-"))
    (path / "profiles.d").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def repo(workspace: Path) -> Path:
    """A repository with a .git directory; the workspace is its subdirectory `src`."""
    (workspace / ".git").mkdir()
    (workspace / "src").mkdir()
    (workspace / "src").chmod(0o755)
    return workspace


@pytest.fixture
def user_profile(root: Caller) -> Iterator[Path]:
    path = root.config_home / "vectraguard" / "profiles.d" / "layered.yaml"
    yield path
    path.unlink(missing_ok=True)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o644)
    return path


def explain(caller: Caller, name: str, cwd: Path, env: dict[str, str], *extra: str) -> dict[str, tuple[str, str]]:
    result = caller.run(["profile", "show", name, "--explain", "--json", *extra], cwd=cwd, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    return {row["key"]: (row["value"], row["set by"]) for row in json.loads(result.stdout)}


def project_file(repo: Path, text: str) -> Path:
    return write(repo / ".vectraguard.yaml", "version: 1\n" + text)


def trust(caller: Caller, repo: Path, env: dict[str, str]) -> None:
    result = caller.run(["trust", str(repo)], cwd=repo, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()


LAYERED = f"extends: untrusted\nimage: {TEST_IMAGE}\nlimits:\n  memory: 300Mi\n"


def test_precedence_shipped_system_user_project_command_line(
        root: Caller, repo: Path, system_dir: Path, user_profile: Path) -> None:
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
    cwd = repo / "src"
    system = write(system_dir / "profiles.d" / "layered.yaml", LAYERED + "  pids: 90\n  cpus: 0.5\n")
    values = explain(root, "layered", cwd, env)
    assert values["limits.memory"] == ("300Mi", f"{system}:4")
    assert values["limits.nofile"][1].endswith("/profiles/untrusted.yaml:18")  # shipped
    write(user_profile, "limits:\n  memory: 200Mi\n  pids: 80\n")
    values = explain(root, "layered", cwd, env)
    assert values["limits.memory"] == ("200Mi", f"{user_profile}:2")
    assert values["limits.cpus"] == ("0.5", f"{system}:6")  # maps deep-merge: untouched keys stay
    project = project_file(repo, "profiles:\n  layered:\n    limits:\n      memory: 100Mi\n")
    trust(root, repo, env)
    values = explain(root, "layered", cwd, env)
    assert values["limits.memory"] == ("100Mi", f"{project}:5")
    assert values["limits.pids"] == ("80", f"{user_profile}:3")
    values = explain(root, "layered", cwd, env, "--ignore-project")
    assert values["limits.memory"] == ("200Mi", f"{user_profile}:2")
    # The command line is the highest layer, and the container gets the result.
    run = root.run(["run", "-p", "layered", "--set", "limits.memory=50Mi", "--set", "limits.pids=40", "--",
                    "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"],
                   cwd=cwd, extra_env=env)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.split() == [str(50 << 20).encode(), b"40"]


def test_merge_rules_lists_replace_mounts_merge_by_target_set_appends(
        root: Caller, repo: Path, system_dir: Path, user_profile: Path) -> None:
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
    for name in ("one", "two"):
        (repo / name).mkdir()
        (repo / name).chmod(0o755)
        write(repo / name / "id", f"{name}\n")
    write(system_dir / "profiles.d" / "layered.yaml", LAYERED + (
        "env:\n  allow: [ALPHA, BETA]\nfilesystem:\n  mounts:\n"
        f"    - {{source: {repo}/one, target: /one}}\n    - {{source: {repo}/one, target: /two}}\n"))
    write(user_profile, f"env:\n  allow: [GAMMA]\nfilesystem:\n  mounts:\n    - {{source: {repo}/two, target: /two}}\n")
    result = root.run(["run", "-p", "layered", "--set", "env.allow+=DELTA", "--",
                       "sh", "-c", "cat /one/id /two/id; env | grep -E '^(ALPHA|BETA|GAMMA|DELTA)=' | sort"],
                      cwd=repo, extra_env={**env, "ALPHA": "a", "BETA": "b", "GAMMA": "g", "DELTA": "d"})
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["one", "two", "DELTA=d", "GAMMA=g"]
    values = explain(root, "layered", repo, env)
    assert values["env.allow"] == ("GAMMA", f"{user_profile}:2")


def test_an_untrusted_project_file_refuses_until_trusted_and_an_edit_revokes(
        root: Caller, repo: Path, system_dir: Path) -> None:
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
    cwd = repo / "src"
    project = project_file(repo, f"default_profile: team\nprofiles:\n  team:\n    extends: untrusted\n"
                                 f"    image: {TEST_IMAGE}\n    env:\n      set:\n        TEAM: yes-team\n")
    refused = root.run(["run", "--", "true"], cwd=cwd, extra_env=env)
    assert refused.returncode == 125
    assert refused.stderr.decode() == (
        f"vectraguard: {project} is not trusted (new or changed since you trusted it); read it, then "
        f"`vectraguard trust {repo}`; or run with --ignore-project\n")
    ignored = root.run(["run", "--ignore-project", "-p", "test-untrusted", "--", "sh", "-c", "echo ${TEAM:-none}"],
                       cwd=cwd, extra_env=env)
    assert ignored.stdout == b"none\n"
    trust(root, cwd, env)  # from a subdirectory: the file is found upward
    used = root.run(["run", "--", "sh", "-c", "echo $TEAM"], cwd=cwd, extra_env=env)
    assert (used.returncode, used.stdout) == (0, b"yes-team\n"), used.stderr
    with project.open("a") as handle:
        handle.write("        MORE: x\n")
    assert root.run(["run", "--", "true"], cwd=cwd, extra_env=env).returncode == 125
    listing = root.run(["trust", "list", "--json"], cwd=cwd, extra_env=env)
    states = {row["path"]: row["state"] for row in json.loads(listing.stdout)}
    assert states[str(project)] == "changed (not trusted)"
    trust(root, repo, env)
    assert root.run(["run", "--", "true"], cwd=cwd, extra_env=env).returncode == 0
    assert root.run(["untrust", str(repo)], cwd=cwd, extra_env=env).stdout == f"no longer trusted: {project}\n".encode()
    assert root.run(["run", "--", "true"], cwd=cwd, extra_env=env).returncode == 125


def test_unsafe_project_files_are_refused(root: Caller, repo: Path, workspace: Path, system_dir: Path) -> None:
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
    outside = Path(tempfile.mkdtemp(prefix="vg-outside-"))
    try:
        write(outside / "evil.yaml", "version: 1\n")
        (repo / ".vectraguard.yaml").symlink_to(outside / "evil.yaml")
        result = root.run(["trust", str(repo)], cwd=repo, extra_env=env)
        assert result.returncode == 125
        assert "is a symlink out of the repository" in result.stderr.decode()
        (repo / ".vectraguard.yaml").unlink()
        project = project_file(repo, "")
        project.chmod(0o666)
        result = root.run(["trust", str(repo)], cwd=repo, extra_env=env)
        assert result.stderr.decode().startswith(f"vectraguard: {project} is writable by every user; chmod o-w")
        project.chmod(0o644)
        shutil.chown(project, ROOTLESS_USER)
        result = root.run(["trust", str(repo)], cwd=repo, extra_env=env)
        assert "is owned by another user" in result.stderr.decode()
        assert result.returncode == 125
    finally:
        shutil.rmtree(outside)


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 2\n", ".vectraguard.yaml:1: version: 1 was expected"),
    ("version: 1\nprofiles:\n  x:\n    limits:\n      cpu: 2\n",
     ".vectraguard.yaml:5: profiles.x.limits: unknown key 'cpu' (did you mean 'cpus'?)"),
    ("version: 1\nprofiles:\n  x:\n    extends: nowhere\n", "unknown profile 'nowhere' (extended by profile 'x')"),
    ("version: 1\nprofiles:\n  x:\n    network:\n      mode: no\n",
     ".vectraguard.yaml:5: profiles.x.network.mode: 'no' is not one of none, allowlist, full"),
    ("version: 1\nversion: 1\n", ".vectraguard.yaml:2: version: duplicate key (first set on line 1)"),
])
def test_bad_project_files_cannot_be_trusted(root: Caller, repo: Path, system_dir: Path, text: str,
                                             expected: str) -> None:
    write(repo / ".vectraguard.yaml", text)
    result = root.run(["trust", str(repo)], cwd=repo, extra_env={"VECTRAGUARD_SYSTEM_DIR": str(system_dir)})
    assert result.returncode == 125
    assert expected in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


POLICY = "version: 1\nlimits:\n  max:\n    memory: 256Mi\nfilesystem:\n  workspace_modes: [ro, none]\n"


def test_a_trusted_project_asking_beyond_the_policy_is_refused_within_it_runs(
        root: Caller, repo: Path, system_dir: Path) -> None:
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
    policy = write(system_dir / "policy.yaml", POLICY)
    project = project_file(repo, f"profiles:\n  big:\n    extends: untrusted\n    image: {TEST_IMAGE}\n"
                                 "    limits:\n      memory: 1Gi\n    filesystem:\n      workspace:\n"
                                 "        mode: rw\n")
    trust(root, repo, env)
    result = root.run(["run", "-p", "big", "--", "true"], cwd=repo, extra_env=env)
    assert result.returncode == 125
    assert result.stderr.decode().splitlines() == [
        "vectraguard: the system policy refuses this run",
        f"  {project}:7: limits.memory: 1Gi is above the maximum 256Mi; refused by policy rule limits.max.memory "
        f"({policy}:4)",
        f"  {project}:10: filesystem.workspace.mode: rw is not an allowed workspace mode (ro, none); refused by "
        f"policy rule filesystem.workspace_modes ({policy}:6)",
    ]
    within = root.run(["run", "-p", "big", "--set", "limits.memory=128Mi", "--workspace", "ro", "--",
                       "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], cwd=repo, extra_env=env)
    assert (within.returncode, within.stdout) == (0, f"{128 << 20}\n".encode()), within.stderr


def test_policy_denied_paths_and_mount_roots(root: Caller, repo: Path, system_dir: Path) -> None:
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
    (repo / "data").mkdir()
    (repo / "data").chmod(0o755)
    write(system_dir / "policy.yaml", f"version: 1\nfilesystem:\n  denied_paths: [{repo}/data]\n")
    result = root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=repo, extra_env=env)
    assert result.returncode == 125
    assert f"it exposes {repo}/data (denied by the system policy)" in result.stderr.decode()
    write(system_dir / "policy.yaml", "version: 1\nfilesystem:\n  mount_roots: [/nonexistent-root]\n")
    result = root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=repo / "src", extra_env=env)
    assert result.returncode == 125
    assert f"{repo}/src is outside the allowed mount roots (/nonexistent-root)" in result.stderr.decode()


def test_an_invalid_policy_refuses_every_run(root: Caller, workspace: Path, system_dir: Path) -> None:
    policy = write(system_dir / "policy.yaml", "version: 1\nlimits:\n  max:\n    memroy: 1Gi\n")
    result = root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=workspace,
                      extra_env={"VECTRAGUARD_SYSTEM_DIR": str(system_dir)})
    assert result.returncode == 125
    assert f"{policy}:4: limits.max: unknown key 'memroy' (did you mean 'memory'?)" in result.stderr.decode()


@pytest.mark.parametrize(("flag", "message"), [
    ("limits.memory", "expected KEY=VALUE or KEY+=VALUE"),
    ("limits.cpu=2", "command line: limits: unknown key 'cpu' (did you mean 'cpus'?)"),
    ("limits.pids=lots", "command line: limits.pids: expected integer, got str 'lots'"),
    ("limits.memory+=1", "command line: limits.memory: expected string or integer, got list [1]"),
    ("$(id)=1", "expected KEY=VALUE or KEY+=VALUE"),
])
def test_bad_set_flags(root: Caller, workspace: Path, flag: str, message: str) -> None:
    result = root.run(["run", "-p", "test-untrusted", "--set", flag, "--", "true"], cwd=workspace)
    assert result.returncode == 125
    assert message in result.stderr.decode()


def test_profile_validate_reports_every_problem(root: Caller, workspace: Path) -> None:
    bad = write(workspace / "bad.yaml", "extends: untrusted\nlimits:\n  memory: 12x\n  timeout: 0\nnetwork:\n  mode: no\n")
    good = write(workspace / "good.yaml", "extends: untrusted\n")
    result = root.run(["profile", "validate", str(good), str(bad)], cwd=workspace)
    assert result.returncode == 1
    assert result.stdout.decode() == f"ok  {good}\n"
    assert f"{bad}:6: network.mode: 'no' is not one of none, allowlist, full" in result.stderr.decode()
    write(bad, "extends: untrusted\nlimits:\n  memory: 12x\n  timeout: 0\n")
    result = root.run(["profile", "validate", str(bad)], cwd=workspace)
    lines = result.stderr.decode().splitlines()
    assert lines[1:] == [f"  {bad}:3: limits.memory: '12x' is not a size (expected e.g. 512Mi, 2G or a byte count)",
                         f"  {bad}:4: limits.timeout: duration must be greater than zero, got 0"]


def test_profile_list_and_show(root: Caller, workspace: Path) -> None:
    listing = root.run(["profile", "list", "--json"], cwd=workspace)
    rows: list[dict[str, Any]] = json.loads(listing.stdout)
    names = [row["name"] for row in rows]
    assert {"default", "untrusted", "test-untrusted"} <= set(names)
    shown = json.loads(root.run(["profile", "show", "untrusted", "--json"], cwd=workspace).stdout)
    assert shown["limits"]["memory"] == "512Mi" and shown["network"]["mode"] == "none"
    missing = root.run(["profile", "show", "nope"], cwd=workspace)
    assert missing.returncode == 125 and missing.stderr.startswith(b"vectraguard: unknown profile 'nope'")


def test_the_trust_store_and_config_can_never_be_mounted(root: Caller, workspace: Path, system_dir: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="vg-data-"))
    try:
        env = {"VECTRAGUARD_DATA_DIR": str(data), "VECTRAGUARD_SYSTEM_DIR": str(system_dir)}
        for source in (data, root.config_home / "vectraguard", system_dir):
            result = root.run(["run", "-p", "test-untrusted", "--mount", f"{source}:/x", "--", "true"],
                              cwd=workspace, extra_env=env)
            assert result.returncode == 125
            assert "(Vectra Guard's own state)" in result.stderr.decode(), result.stderr
    finally:
        shutil.rmtree(data)
