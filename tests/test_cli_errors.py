"""Bad input: one clear line, exit 125, and nothing starts (no container at all)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.refusal import refused
from tests.support.vg import Caller

P = ["run", "-p", "test-untrusted"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "-p", "no-such-profile", "--", "true"],
         "vectraguard: unknown profile 'no-such-profile'; available profiles: agent-shell, aider, claude-code, codex, default, "
         "dev, generic, test-best-effort, test-default, test-noexec, test-python, test-tight, test-untrusted, untrusted"),
        (["check", "--"],
         "vectraguard check: no command given; vectraguard check [OPTIONS] -- CMD [ARG...]   or   "
         "vectraguard check [OPTIONS] -- 'CMD LINE'"),
        (["approvals", "grant", "--", " "],
         "vectraguard approvals grant: no command given; vectraguard approvals grant [OPTIONS] -- CMD [ARG...]   "
         "or   vectraguard approvals grant [OPTIONS] -- 'CMD LINE'"),
        (["approvals", "revoke"],
         "vectraguard approvals revoke: give approval ids, or --all; `vectraguard approvals list` shows the ids"),
        (["check", "-p", "nope", "--", "true"],
         "vectraguard: unknown profile 'nope'; available profiles: agent-shell, aider, claude-code, codex, default, "
         "dev, generic, test-best-effort, test-default, test-noexec, test-python, test-tight, test-untrusted, untrusted"),
        (["run", "-p", "../etc/passwd", "--", "true"],
         "vectraguard: '../etc/passwd' is not a valid profile name; profile names are lowercase letters, "
         "digits, '.', '_' and '-'"),
        ([*P, "--mount", "/tmp", "--", "true"],
         "vectraguard: --mount '/tmp': expected SRC:DST, SRC:DST:ro or SRC:DST:rw; paths may not contain ':'"),
        ([*P, "--mount", ".:/data:rwx", "--", "true"],
         "vectraguard: --mount '.:/data:rwx': expected SRC:DST, SRC:DST:ro or SRC:DST:rw; "
         "paths may not contain ':'"),
        ([*P, "--mount", "/no/such/dir:/data", "--", "true"],
         "vectraguard: command line: mount source '/no/such/dir' does not exist or cannot be resolved "
         "(No such file or directory)"),
        ([*P, "--mount", "/:/host", "--", "true"],
         "vectraguard: command line: refusing to mount / (the whole host filesystem)"),
        ([*P, "--mount", "/root:/home-dir", "--", "true"],
         "vectraguard: command line: refusing to mount /root: it exposes /root (your home directory itself); "
         "mount a project directory instead"),
        ([*P, "--mount", "~/.ssh:/keys", "--", "true"],
         "vectraguard: command line: mount source '~/.ssh' would need shell expansion; write the absolute "
         "path; Vectra Guard never expands ~, $VAR or $(...)"),
        ([*P, "--mount", ".:relative", "--", "true"],
         "vectraguard: command line: mount target 'relative' must be an absolute path"),
        ([*P, "--mount", ".:/proc/x", "--", "true"],
         "vectraguard: command line: mount target /proc/x is reserved for the sandbox runtime"),
        ([*P, "--memory", "12x", "--", "true"],
         "vectraguard run: argument --memory: '12x' is not a size (expected e.g. 512Mi, 2G or a byte count); "
         "see `vectraguard run --help`"),
        ([*P, "--memory", "0", "--", "true"],
         "vectraguard run: argument --memory: size must be greater than zero, got '0'; "
         "see `vectraguard run --help`"),
        (["logs", "list", "--limit", "99999999999999999999999"],
         "vectraguard logs list: argument --limit: sessions must be between 1 and 1000000, "
         "got '99999999999999999999999'; see `vectraguard logs list --help`"),
        (["logs", "list", "--limit", "-1"],
         "vectraguard logs list: argument --limit: sessions must be between 1 and 1000000, got '-1'; "
         "see `vectraguard logs list --help`"),
        (["logs", "list", "--status", "bogus"],
         "vectraguard logs list: argument --status: invalid choice: 'bogus'; choose from 'ok', 'failed', 'timeout', "
         "'oom', 'killed', 'interrupted', 'refused', 'incomplete', 'started', 'checked/allow', 'checked/ask', "
         "'checked/deny'; see `vectraguard logs list --help`"),
        ([*P, "--timeout", "soon", "--", "true"],
         "vectraguard run: argument --timeout: 'soon' is not a duration (expected e.g. 30s, 10m, 2h or seconds); "
         "see `vectraguard run --help`"),
        ([*P, "--timeout", "-5", "--", "true"],
         "vectraguard run: argument --timeout: '-5' is not a duration (expected e.g. 30s, 10m, 2h or seconds); "
         "see `vectraguard run --help`"),
        ([*P, "--cpus", "lots", "--", "true"],
         "vectraguard run: argument --cpus: 'lots' is not a number of CPUs (expected e.g. 1 or 0.5); "
         "see `vectraguard run --help`"),
        ([*P, "--env", "1BAD=x", "--", "true"],
         "vectraguard: --env '1BAD': not a valid variable name"),
        ([*P], "vectraguard: no command given; vectraguard run [OPTIONS] -- CMD [ARG...]"),
        ([*P, "--workdir", "src", "--", "true"],
         "vectraguard: --workdir 'src': must be an absolute path inside the sandbox"),
        (["run", "--image", "localhost/vectraguard/default:missing", "--", "true"],
         "vectraguard: image localhost/vectraguard/default:missing not found; build it with "
         "`vectraguard image build`"),
        (["run", "--image", "localhost/elsewhere:1", "--", "true"],
         "vectraguard: image localhost/elsewhere:1 not found; build or load localhost/elsewhere:1 into Podman "
         "first (no registry is contacted)"),
        (["run", "--bogus", "--", "true"],
         "vectraguard run: unrecognized arguments: --bogus; the sandboxed command and its options go after `--`, "
         "e.g. vectraguard run -- ls -la; see `vectraguard run --help`"),
        (["sandbox", "run", "--json", "--", "true"],
         "vectraguard sandbox run: unrecognized arguments: --json; the sandboxed command and its options go after "
         "`--`, e.g. vectraguard run -- ls -la; see `vectraguard sandbox run --help`"),
        # Commands that run no sandbox: no word about `--`.
        (["logs", "head", "--json"], "vectraguard logs head: unrecognized arguments: --json; "
         "see `vectraguard logs head --help`"),
        (["discard", "0123abcd", "--json"], "vectraguard discard: unrecognized arguments: --json; "
         "see `vectraguard discard --help`"),
        (["--json"], "vectraguard: unrecognized arguments: --json; see `vectraguard --help`"),
        # podman/docker habits: `exec -it ID bash`.
        (["exec", "-it", "abc", "bash"],
         "vectraguard exec: unrecognized arguments: -it; exec gives CMD no terminal (its stdin is passed when it is "
         "not a terminal); an interactive shell in a sandbox: `vectraguard sandbox shell`; the sandboxed command "
         "and its options go after `--`, e.g. vectraguard exec ID -- ls -la; see `vectraguard exec --help`"),
        # docker run habits (issue 18): what each means here.
        ([*P, "-v", "/tmp:/x", "--", "true"],
         "vectraguard run: unrecognized arguments: -v; -v: a host directory is mounted with --mount SRC:DST[:ro|rw] "
         "(read-only unless :rw); see `vectraguard run --help`"),
        ([*P, "-e", "FOO=bar", "--rm", "--", "true"],
         "vectraguard run: unrecognized arguments: -e --rm; -e: an environment variable is set with "
         "--env NAME[=VALUE]; --rm: sandboxes are always removed when their command ends: leave --rm out; "
         "see `vectraguard run --help`"),
        ([*P, "-it", "--", "sh"],
         "vectraguard run: unrecognized arguments: -it; -it: a run gets your terminal when it has one; an "
         "interactive shell: vectraguard sandbox shell; see `vectraguard run --help`"),
        (["run", "-p", "8080:3000", "--", "true"],
         "vectraguard: '8080:3000' is not a valid profile name; -p is --profile here; a port is published with "
         "--publish 8080:3000 (e.g. vectraguard run --publish 8080:3000 -- npm run dev)"),
        (["--set", "limits.cpus=1", "run", "--", "true"],
         "vectraguard: --set is an option of the command (run, sandbox shell, ...), not of vectraguard itself: "
         "give it after the command; e.g. vectraguard run --set limits.cpus=1 -- ...; see `vectraguard --help`"),
        (["-v", "--profile", "dev", "sandbox", "shell"],
         "vectraguard: --profile is an option of the command (run, sandbox shell, ...), not of vectraguard itself: "
         "give it after the command; e.g. vectraguard sandbox shell --profile dev -- ...; see `vectraguard --help`"),
        # vectraguard's own options given after the command: say where they go.
        (["run", "-q", "--", "true"],
         "vectraguard run: -q is an option of vectraguard itself, not of `run`: give it before the command; "
         "e.g. vectraguard -q run ...; see `vectraguard --help`"),
        (["logs", "list", "-vv", "--quiet"],
         "vectraguard logs list: -vv --quiet are options of vectraguard itself, not of `logs list`: give them before "
         "the command; e.g. vectraguard -vv --quiet logs list ...; see `vectraguard --help`"),
        (["ps", "--verbose"],
         "vectraguard ps: --verbose is an option of vectraguard itself, not of `ps`: give it before the command; "
         "e.g. vectraguard --verbose ps ...; see `vectraguard --help`"),
        (["run", "--version"],
         "vectraguard run: --version is an option of vectraguard itself, not of `run`: give it before the command; "
         "e.g. vectraguard --version; see `vectraguard --help`"),
        # After a command given without `--`, an option is the command's.
        (["run", "-p", "test-untrusted", "true", "-q"],
         "vectraguard run: unrecognized arguments: -q; the sandboxed command and its options go after `--`, "
         "e.g. vectraguard run -- ls -la; see `vectraguard run --help`"),
    ],
)
def test_bad_input_is_refused_with_one_line(root: Caller, workspace: Path, args: list[str], expected: str) -> None:
    assert refused(root, args, workspace) == expected


def test_workspace_that_is_the_home_directory_is_refused(root: Caller) -> None:
    home = Path("/root")
    message = refused(root, [*P, "--", "true"], home)
    # The profile's path depends on where Vectra Guard is installed.
    assert message.startswith("vectraguard: working directory: refusing to mount /root: it exposes /root (your "
                              "home directory itself); cd into a project directory, or run with --workspace none "
                              "(workspace set by /")
    assert message.endswith("/profiles/untrusted.yaml:11)")


def test_workspace_none_runs_from_home(root: Caller) -> None:
    result = root.run([*P, "--workspace", "none", "--", "pwd"], cwd=Path("/root"))
    assert (result.returncode, result.stdout) == (0, b"/home/sandbox\n")


def test_unreadable_mount_source_is_refused(rootless: Caller, rootless_workspace: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="vg-unreadable-"))
    base.chmod(0o755)
    secret = base / "secret"
    secret.mkdir(mode=0o700)  # root's, and the rootless caller may not read it
    message = refused(rootless, ["run", "-p", "test-best-effort", "--mount", f"{secret}:/s", "--", "true"],
                      rootless_workspace)
    assert message == f"vectraguard: command line: mount source {secret} is not readable"
    shutil.rmtree(base)


def test_invalid_profile_file_is_reported_located_and_nothing_runs(root: Caller, workspace: Path) -> None:
    profile = root.config_home / "vectraguard" / "profiles.d" / "broken.yaml"
    profile.write_text("extends: untrusted\nlimits:\n  memory: 1Gi\n  memory: 2Gi\n  cpu: 2\nnetwork:\n  mode: no\n")
    try:
        before = set(root.sandboxes())
        result = root.run(["run", "-p", "broken", "--", "true"], cwd=workspace)
        assert result.returncode == 125
        assert set(root.sandboxes()) == before
        assert result.stderr.decode().splitlines() == [
            f"vectraguard: {profile} is not a valid configuration file",
            f"  {profile}:4: limits.memory: duplicate key (first set on line 3)",
        ]
        profile.write_text("extends: untrusted\nlimits:\n  cpu: 2\nnetwork:\n  mode: no\n")
        result = root.run(["run", "-p", "broken", "--", "true"], cwd=workspace)
        assert result.returncode == 125
        lines = result.stderr.decode().splitlines()
        assert lines[0] == f"vectraguard: {profile} is not a valid configuration file"
        assert lines[1].startswith(f"  {profile}:3: limits: unknown key 'cpu' (did you mean 'cpus'?)")
        assert lines[2] == f"  {profile}:5: network.mode: 'no' is not one of none, allowlist, full (did you mean 'none'?)"
    finally:
        profile.unlink()


def test_no_subcommand_prints_help_and_fails(root: Caller, workspace: Path) -> None:
    result = root.run([], cwd=workspace)
    assert result.returncode == 125
    assert b"usage: vectraguard" in result.stderr


def test_command_help_and_version_succeed(root: Caller, workspace: Path) -> None:
    assert root.run(["run", "--help"], cwd=workspace).returncode == 0
    version = root.run(["--version"], cwd=workspace)
    assert version.returncode == 0 and version.stdout.startswith(b"vectraguard ")


def test_manpage_is_generated_from_the_parser() -> None:
    page = (Path(__file__).resolve().parent.parent / "man" / "vectraguard.1").read_text()
    for option in ("--profile", "--mount", "--memory", "--timeout", "--workspace", "image build", "doctor"):
        assert option.replace("-", "\\-") in page or option in page, option
    assert subprocess.run(["man", "-l", "-P", "cat", "--warnings=", str(Path(__file__).resolve().parent.parent / "man" / "vectraguard.1")],
                          capture_output=True, check=False).returncode in (0, 16)


def test_proxy_variables_are_not_passed_by_name(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--env", "HTTPS_PROXY", "--", "env"], cwd=workspace,
                      extra_env={"HTTPS_PROXY": "http://proxy.invalid:3128"})
    assert result.returncode == 125
    assert result.stderr.decode().startswith("vectraguard: --env HTTPS_PROXY: proxy settings are not passed")


def test_set_cannot_change_the_profile_chain(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--set", 'include=["allow-workspace-write"]', "--", "true"], cwd=workspace)
    assert result.returncode == 125
    assert "extends and include belong in profile files" in result.stderr.decode()


BOMB = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefghi", "bcdefghij"))


@pytest.mark.parametrize(("content", "expected"), [
    (BOMB.encode(), ":1: a: YAML anchors and aliases are not allowed (write the value out)"),
    (b"extends: untrusted\nimage: !!python/object/apply:os.system [id]\n",
     ":2: image: tag !!python/object/apply:os.system is not allowed"),
    (b"extends: untrusted\ndescription: caf\xe9\n", ":2: not valid UTF-8"),
    (b"extends: untrusted\nlimits:\n" + b"  " * 40 + b"x: 1\n" + b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
     "nested deeper than 32 levels"),
    (b"# " + b"x" * (1 << 20) + b"\n", "larger than the 1024 KiB limit"),
    (b"extends: untrusted\nlimits:\n  memory: -5\n  timeout: 99999d\n",
     ":3: limits.memory: size must be greater than zero, got -5"),
    (b"extends: untrusted\nfilesystem:\n  mounts:\n    - {source: /srv, target: /x, mode: yes}\n",
     ":4: filesystem.mounts.0.mode: 'yes' is not one of ro, rw"),
])
def test_bad_profile_files_are_refused_located_with_no_run(root: Caller, workspace: Path, content: bytes,
                                                            expected: str) -> None:
    path = root.config_home / "vectraguard" / "profiles.d" / "hostile.yaml"
    path.write_bytes(content)
    try:
        before = set(root.sandboxes())
        result = root.run(["run", "-p", "hostile", "--", "true"], cwd=workspace)
        assert result.returncode == 125
        assert set(root.sandboxes()) == before
        message = result.stderr.decode()
        assert f"{path}{expected}" in message or expected in message, message
        assert "Traceback" not in message
    finally:
        path.unlink()


def test_the_statuses_logs_list_takes_are_the_statuses_records_have() -> None:
    from vectraguard.audit.record import CHECKED_STATUSES, STATUSES
    from vectraguard.cli import LOG_STATUSES

    assert sorted(LOG_STATUSES) == sorted((*STATUSES, *CHECKED_STATUSES))
