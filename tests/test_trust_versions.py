"""`vectraguard trust` shows what changed since the version last trusted, and
trust is per (file, content): a version trusted before runs again without a
new trust, a version never trusted refuses, `untrust` forgets every version
(config/trust.py, config/widening.py, commands/trust.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import TEST_IMAGE, Caller

FIRST = f"version: 1\ndefault_profile: team\nprofiles:\n  team:\n    extends: untrusted\n    image: {TEST_IMAGE}\n"
# Wider in every way trust must point out; a mount source carrying an escape sequence.
WIDER = FIRST + (
    "    env:\n      allow: [AWS_SECRET_ACCESS_KEY]\n"
    "    network:\n      mode: allowlist\n      allow: [evil.example.com]\n"
    '    filesystem:\n      mounts:\n        - {source: "/srv/\\e]0;owned\\a\\e[2J", target: /data, mode: rw}\n'
    '      protected: ["**/.git", "!.git/objects", "!.git/hooks"]\n'
    "    risk:\n      decisions:\n        destructive: allow\n"
    "    limits:\n      memory: 1Gi\n")
THIRD = FIRST + "    limits:\n      pids: 64\n"


@pytest.fixture
def project(root: Caller, workspace: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """(the project file's path in a repository, an environment with a trust store of its own)."""
    data = Path(tempfile.mkdtemp(prefix="vg-trust-data-"))
    (workspace / ".git").mkdir()
    yield workspace / ".vectraguard.yaml", {"VECTRAGUARD_DATA_DIR": str(data)}
    shutil.rmtree(data, ignore_errors=True)


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)


def _runs(root: Caller, cwd: Path, env: dict[str, str]) -> int:
    result = root.run(["run", "--", "cat", "hello.txt"], cwd=cwd, extra_env=env)
    if result.returncode == 0:
        assert result.stdout == b"hello from the workspace\n"
    return result.returncode


def test_trust_shows_what_widens_since_the_last_trusted_version(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    _write(path, FIRST)
    first = root.run(["trust"], cwd=path.parent, extra_env=env)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout.decode().startswith(f"first trust of {path}: what it changes from your own profiles")
    _write(path, WIDER)
    second = root.run(["trust"], cwd=path.parent, extra_env=env)
    assert second.returncode == 0, second.stderr.decode()
    shown = second.stdout.decode()
    lines = shown.splitlines()
    assert lines[0].startswith(f"{path} changed since you trusted it (")
    assert lines[1] == "  profile team:"
    widened = {line.strip() for line in lines if line.startswith("    WIDENS  ")}
    assert widened == {
        "WIDENS  network.mode: none -> allowlist",
        "WIDENS  env.allow: environment names passed in added: AWS_SECRET_ACCESS_KEY",
        "WIDENS  network.allow: destinations added: evil.example.com",
        "WIDENS  filesystem.mounts: new rw mount /srv/\\x1b]0;owned\\x07\\x1b[2J -> /data",
        "WIDENS  limits.memory: 512Mi -> 1Gi",
        "WIDENS  risk.decisions.destructive: ask -> allow",
        "WIDENS  filesystem.protected: exceptions added: !.git/hooks",
    } | {line.strip() for line in lines if line.startswith("    WIDENS  filesystem.protected: protected paths removed: ")}
    assert any(".envrc" in line for line in widened if "protected paths removed" in line)
    # Fewer exceptions protect more: listed, not marked.
    assert any(line.startswith("    changed filesystem.protected: exceptions removed: !.git/refs") for line in lines)
    # The file itself, line by line, after the summary; nothing from it reaches the terminal raw.
    assert "    +    network:" in lines and "    +      mode: allowlist" in lines
    assert "\x1b" not in shown and "\x07" not in shown


def test_a_version_trusted_before_runs_again_and_a_new_one_does_not(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    for text in (FIRST, WIDER):
        _write(path, text)
        assert root.run(["trust"], cwd=path.parent, extra_env=env).returncode == 0
    _write(path, FIRST)  # e.g. `git checkout main` again
    assert _runs(root, path.parent, env) == 0
    already = root.run(["trust"], cwd=path.parent, extra_env=env)
    assert already.stdout.decode().startswith(f"{path} is already trusted in this version")
    _write(path, THIRD)
    refused = root.run(["run", "--", "true"], cwd=path.parent, extra_env=env)
    assert refused.returncode == 125
    assert f"{path} is not trusted (new or changed since you trusted it)" in refused.stderr.decode()
    listed = json.loads(root.run(["trust", "list", "--json"], cwd=path.parent, extra_env=env).stdout)
    assert [(row["path"], row["state"], row["versions"]) for row in listed] == [
        (str(path), "changed (not trusted)", 2)]


def test_untrust_forgets_every_version(root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    for text in (FIRST, THIRD):
        _write(path, text)
        assert root.run(["trust"], cwd=path.parent, extra_env=env).returncode == 0
    untrusted = root.run(["untrust"], cwd=path.parent, extra_env=env)
    assert untrusted.stdout.decode() == f"no longer trusted: {path}\n"
    for text in (FIRST, THIRD):
        _write(path, text)
        assert _runs(root, path.parent, env) == 125
    kept = Path(env["VECTRAGUARD_DATA_DIR"]) / "trusted"
    assert not any(kept.iterdir())  # the contents went with the versions
    again = root.run(["trust"], cwd=path.parent, extra_env=env)
    assert again.stdout.decode().startswith(f"first trust of {path}")


@pytest.mark.parametrize("store", [
    {"PATH": {}},  # neither versions nor sha256
    {"PATH": {"versions": []}},  # no version at all
    {"PATH": {"versions": [{"sha256": 7}]}},
    {"PATH": ["not", "a", "map"]},
    {"PATH": "x"},
    {"PATH": {"versions": None}},
    [],  # not an empty store: taken for one, the next `trust` deleted every kept version's content
])
def test_a_trust_store_of_the_wrong_shape_refuses_with_one_line(
        root: Caller, project: tuple[Path, dict[str, str]], store: dict[str, object] | list[object]) -> None:
    """Valid JSON that is not a trust store: every run and `trust` refuse, naming the file; never a traceback."""
    path, env = project
    _write(path, FIRST)
    trust_json = Path(env["VECTRAGUARD_DATA_DIR"]) / "trust.json"
    trust_json.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(store, dict):
        store = {str(path) if k == "PATH" else k: v for k, v in store.items()}
    trust_json.write_text(json.dumps(store))
    for args in (["trust"], ["run", "--", "true"]):
        result = root.run(args, cwd=path.parent, extra_env=env)
        message = result.stderr.decode()
        assert result.returncode == 125, message
        assert "Traceback" not in message
        assert f"the trust store {trust_json} is unreadable (not a trust store" in message
