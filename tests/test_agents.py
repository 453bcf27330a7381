"""AI agent sessions: `agent list`, `agent start` with a fake agent on real Podman,
the agents' image recipes, and (opt-in) a real agent image.

The fake agent is a shell script in an agent definition on the test image: it
prints what it can see and do from inside its sandbox, and the tests check
that against the definition (environment allowlist, egress allowlist to a
server the test starts on loopback, a repository writable through an overlay
whose changes reach the host only through `apply`, which holds back planted
.git/hooks and .git/config, a home that persists between sessions).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import ROOTLESS_USER, TEST_IMAGE, Caller, outcome
from tests.support.web import serve
from vectraguard.config import profiles
from vectraguard.images import recipe

SECRET = "sk-fake-0123456789abcdef"

# What the fake agent does, in one session; $1 is the first argument after --.
FAKE_AGENT = r"""
echo "args=$*"
echo "pwd=$(pwd)"
echo "env=$(env | cut -d= -f1 | sort | tr '\n' ,)"
echo "key_len=${#FAKE_AGENT_API_KEY}"
wget -q -O - "http://127.0.0.1:$ALLOWED_PORT/allowed" && echo allowed=reached || echo allowed=failed
wget -q -O - "http://127.0.0.1:$OTHER_PORT/other" >/dev/null 2>&1 && echo other=reached || echo other=blocked
cd /workspace
echo "written by $1" > agent-output.txt && echo workspace=written
for f in .git/hooks/pre-commit .git/config; do
  echo evil >> "$f" 2>/dev/null && echo "$f=written" || echo "$f=refused"
done
echo "home_before=$(cat ~/state 2>/dev/null || echo empty)"
echo "$1" >> ~/state && echo home_write=ok
"""


@pytest.fixture
def servers() -> Iterator[tuple[tuple[int, list[str]], tuple[int, list[str]]]]:
    """Two loopback web servers: the agent's allowlisted 'provider API', and one it may not reach."""
    with serve() as allowed, serve() as other:
        yield allowed, other


def _write_agent(caller: Caller, name: str, text: str) -> Path:
    path = caller.config_home / "vectraguard" / "profiles.d" / f"{name}.yaml"
    path.write_text(text)
    if caller.user:
        shutil.chown(path, caller.user, caller.user)
    return path


def _fake_agent_definition(allowed_port: int, other_port: int, *, best_effort: bool) -> str:
    return json.dumps({
        "description": "a fake agent for the tests",
        "extends": "generic",
        "image": TEST_IMAGE,
        "env": {"allow": ["FAKE_AGENT_API_KEY"],
                "set": {"ALLOWED_PORT": str(allowed_port), "OTHER_PORT": str(other_port)}},
        "network": {"mode": "allowlist", "allow": [f"127.0.0.1/32:{allowed_port}"]},
        "limits": {"timeout": "60s", **({"enforcement": "best-effort"} if best_effort else {})},
        "agent": {"command": ["sh", "-c", FAKE_AGENT, "fake-agent"]},
    })  # JSON is YAML 1.2


def _repository(owner: str | None, *, world_writable: bool = False) -> Path:
    """A git work tree with a subdirectory, as a user would start an agent in."""
    repo = Path(tempfile.mkdtemp(prefix="vg-agent-repo-"))
    (repo / ".git" / "hooks").mkdir(parents=True)
    (repo / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (repo / "src").mkdir()
    (repo / "README").write_text("a repository\n")
    for path in [repo, *repo.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
        if owner:
            shutil.chown(path, owner, owner)
    if world_writable:  # what a rootful sandbox may be given read-write (see mount_plan)
        repo.chmod(0o777)
    return repo


def _lines(output: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.decode().splitlines() if "=" in line)


def _remove_volume(caller: Caller, name: str) -> None:
    argv, env = caller.argv(["podman", "volume", "rm", "--force", name])
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=60)


def test_a_fake_agent_sees_only_what_its_definition_grants_and_keeps_its_home(
        rootless: Caller, servers: tuple[tuple[int, list[str]], tuple[int, list[str]]]) -> None:
    """The acceptance test of `agent start`, rootless (agents run as their user)."""
    (allowed_port, allowed_hits), (other_port, other_hits) = servers
    definition = _write_agent(rootless, "test-agent",
                              _fake_agent_definition(allowed_port, other_port, best_effort=True))
    repo = _repository(ROOTLESS_USER)
    data = Path(tempfile.mkdtemp(prefix="vg-agent-data-"))
    shutil.chown(data, ROOTLESS_USER, ROOTLESS_USER)
    env = {"FAKE_AGENT_API_KEY": SECRET, "OTHER_SECRET": "must-not-pass", "VECTRAGUARD_DATA_DIR": str(data)}
    _remove_volume(rootless, "vectraguard-agent-test-agent")
    try:
        first = rootless.run(["agent", "start", "test-agent", "--", "session-one"], cwd=repo / "src",
                             extra_env=env, timeout=180)
        assert first.returncode == 0, first.stderr.decode()
        seen = _lines(first.stdout)
        assert seen["args"] == "session-one"
        assert seen["pwd"] == "/workspace/src"  # the whole repository, entered where the user was
        names = set(seen["env"].strip(",").split(","))
        assert "FAKE_AGENT_API_KEY" in names and "OTHER_SECRET" not in names
        assert seen["key_len"] == str(len(SECRET))
        assert (seen["allowed"], seen["other"]) == ("reached", "blocked")
        assert allowed_hits == ["/allowed"] and other_hits == []
        assert seen["workspace"] == "written"
        # The agent's writes (planted hooks and config included) are in its layer, not in the repository...
        assert (seen[".git/hooks/pre-commit"], seen[".git/config"]) == ("written", "written")
        assert not (repo / "agent-output.txt").exists()
        layer = re.search(r"kept for review in session ([0-9a-f]+):", first.stderr.decode())
        assert layer, first.stderr.decode()
        # ...until the user applies them: the ordinary file arrives as theirs, the protected ones are held back.
        applied = rootless.run(["apply", layer.group(1)], cwd=repo, extra_env=env)
        assert applied.returncode == 0, applied.stderr.decode()
        assert (repo / "agent-output.txt").read_text() == "written by session-one\n"
        assert (repo / "agent-output.txt").stat().st_uid == (repo / "README").stat().st_uid  # the user's own
        assert not (repo / ".git" / "hooks" / "pre-commit").exists()
        assert (repo / ".git" / "config").read_text() == "[core]\n\tbare = false\n"
        assert (seen["home_before"], seen["home_write"]) == ("empty", "ok")

        second = rootless.run(["agent", "start", "test-agent", "--", "session-two"], cwd=repo, extra_env=env,
                              timeout=180)
        assert second.returncode == 0, second.stderr.decode()
        again = _lines(second.stdout)
        assert again["pwd"] == "/workspace"
        # The home volume persisted, and is still writable.
        assert (again["home_before"], again["home_write"]) == ("session-one", "ok")

        listed = json.loads(rootless.run(["logs", "list", "--agent", "test-agent", "--json"], cwd=repo,
                                         extra_env=env).stdout)
        assert len(listed) == 2
        assert {(row["agent"], row["profile"], row["status"]) for row in listed} == {("test-agent", "test-agent", "ok")}
        shown = [json.loads(rootless.run(["logs", "show", row["id"], "--json"], cwd=repo, extra_env=env).stdout)
                 for row in listed]
        # The recorded command is the definition's, then the arguments.
        assert sorted(s["events"][0]["argv"][-1] for s in shown) == ["session-one", "session-two"]
        assert all(s["events"][0]["argv"][:2] == ["sh", "-c"] for s in shown)
        started, finished = shown[0]["events"][0], outcome(shown[0]["events"])
        assert "FAKE_AGENT_API_KEY" in started["env_names"] and "OTHER_SECRET" not in started["env_names"]
        cast = Path(finished["recording"]["path"]).read_text().splitlines()
        assert json.loads(cast[0])["version"] == 2
        assert any("home_before=" in json.loads(line)[2] for line in cast[1:])
        # The key's value is nowhere in the audit store or the recordings.
        for path in data.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
        with contextlib.closing(sqlite3.connect(data / "audit.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        _remove_volume(rootless, "vectraguard-agent-test-agent")
        definition.unlink()
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def test_a_rootful_agent_home_stays_writable_across_user_namespaces(root: Caller) -> None:
    """Rootful, every sandbox gets a fresh id range: the home volume is handed to each one."""
    definition = _write_agent(root, "test-agent-rootful", json.dumps({
        "extends": "generic", "image": TEST_IMAGE, "limits": {"timeout": "60s"},
        "agent": {"command": ["sh", "-c", 'cat ~/state 2>/dev/null; echo "$1" >> ~/state && echo ok', "agent"]},
    }))
    repo = _repository(None, world_writable=True)
    _remove_volume(root, "vectraguard-agent-test-agent-rootful")
    try:
        outputs = []
        for word in ("one", "two", "three"):
            result = root.run(["agent", "start", "test-agent-rootful", "--", word], cwd=repo, timeout=120)
            assert result.returncode == 0, result.stderr.decode()
            outputs.append(result.stdout.decode().split())
        assert outputs == [["ok"], ["one", "ok"], ["one", "two", "ok"]]
    finally:
        _remove_volume(root, "vectraguard-agent-test-agent-rootful")
        definition.unlink()
        shutil.rmtree(repo, ignore_errors=True)


def test_agent_list_shows_the_shipped_agents_and_the_users_own(root: Caller, workspace: Path) -> None:
    definition = _write_agent(root, "my-agent", "extends: generic\nagent:\n  command: [my-agent, --fast]\n")
    try:
        result = root.run(["agent", "list", "--json"], cwd=workspace)
    finally:
        definition.unlink()
    assert result.returncode == 0, result.stderr.decode()
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"claude-code", "codex", "aider", "generic", "my-agent"} <= set(rows)
    assert "default" not in rows and "untrusted" not in rows  # profiles without an agent section
    assert rows["my-agent"]["command"] == "my-agent --fast"
    assert rows["claude-code"]["network"] == "api.anthropic.com:443, console.anthropic.com:443, claude.ai:443"
    assert rows["my-agent"]["defined in"].endswith("profiles.d/my-agent.yaml")


@pytest.mark.parametrize(("args", "message"), [
    (["agent", "start", "test-untrusted", "--", "true"], "profile 'test-untrusted' is not an agent definition"),
    (["agent", "start", "generic"], "agent 'generic' names no command: give it after --"),
    (["agent", "start", "no-such-agent"], "unknown agent 'no-such-agent'; available agents: aider, claude-code"),
    (["agent", "start", "generic", "--agent", "other", "--", "true"], "contradicts it"),
])
def test_agent_start_refusals_are_clear_and_recorded(root: Caller, workspace: Path, args: list[str],
                                                     message: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="vg-agent-data-"))
    try:
        env = {"VECTRAGUARD_DATA_DIR": str(data)}
        result = root.run(args, cwd=workspace, extra_env=env)
        assert result.returncode == 125
        assert message in result.stderr.decode()
        assert b"Traceback" not in result.stderr
        [row] = json.loads(root.run(["logs", "list", "--json"], cwd=workspace, extra_env=env).stdout)
        assert (row["status"], row["agent"]) == ("refused", args[2])
    finally:
        shutil.rmtree(data, ignore_errors=True)


# --- image recipes --------------------------------------------------------------------------


@pytest.fixture
def shipped_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VECTRAGUARD_SYSTEM_DIR", str(tmp_path / "etc"))


@pytest.mark.parametrize(("name", "program", "packages"), [
    ("claude-code", "claude", ["nodejs", "npm"]),
    ("codex", "codex", ["nodejs", "npm"]),
    ("aider", "aider", ["python3-venv"]),
])
def test_each_shipped_agent_has_a_recipe_for_its_image(shipped_only: None, name: str, program: str,
                                                       packages: list[str]) -> None:
    profile = profiles.resolve(name, [])
    assert profile.agent is not None and profile.agent.command == (program,)
    r = profile.agent.recipe
    plan = recipe.agent_plan(name, profile.image, "bookworm", r.debian, r.npm, r.pip)
    assert plan.ref == f"localhost/vectraguard/agent-{name}:bookworm" and plan.kind == f"agent-{name}"
    assert set(recipe.PACKAGES) | set(packages) == set(plan.packages)
    installs = [hook for hook in plan.hooks if " install " in hook]
    assert installs and all(package in " ".join(installs) for package in (*r.npm, *r.pip))
    # The build's CA copy and the host's resolver never stay in the image.
    assert plan.hooks[-2] == f'rm -f "$1{recipe.BUILD_CA}"'
    assert plan.hooks[-1] == recipe.CLEANUP_HOOKS[-1]


def test_a_recipe_can_only_build_into_vectraguards_own_names() -> None:
    from vectraguard.errors import UsageError

    with pytest.raises(UsageError, match="which Vectra Guard does not build"):
        recipe.agent_plan("x", "docker.io/library/node:20", "bookworm", ("nodejs",), (), ())


def test_image_build_for_a_profile_that_is_not_an_agent_is_refused(root: Caller, workspace: Path) -> None:
    result = root.run(["image", "build", "--agent", "test-untrusted"], cwd=workspace)
    assert result.returncode == 125
    assert b"profile 'test-untrusted' is not an agent definition" in result.stderr


@pytest.mark.real_agent_image
@pytest.mark.skipif(os.environ.get("VECTRAGUARD_TEST_REAL_AGENT") != "1",
                    reason="builds a real agent image from Debian and the npm registry (several minutes); "
                    "set VECTRAGUARD_TEST_REAL_AGENT=1 to run it")
def test_a_real_agent_image_builds_and_its_agent_runs(rootless: Caller, rootless_workspace: Path) -> None:
    """Opt-in (VECTRAGUARD_TEST_REAL_AGENT=1): builds the claude-code image from Debian
    and the npm registry, then runs `claude --version` in its agent sandbox."""
    build = rootless.run(["image", "build", "--agent", "claude-code"], cwd=rootless_workspace, timeout=1800)
    assert build.returncode == 0, build.stderr.decode()[-3000:]
    result = rootless.run(["agent", "start", "claude-code", "--set", "limits.enforcement=best-effort", "--",
                           "--version"], cwd=rootless_workspace, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Claude Code" in result.stdout

