"""Typos get a suggestion (vectraguard/suggest.py): unknown commands, subcommands,
choices, options and profile names answer "did you mean …" in one located line,
exit 125, and nothing starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.refusal import refused
from tests.support.vg import Caller
from vectraguard import cli

PROFILES = ("agent-shell, aider, claude-code, codex, default, dev, generic, test-best-effort, test-default, "
            "test-noexec, test-python, test-tight, test-untrusted, untrusted")
# Every command, in the parser's order (the list grows with the commands; its format is what is tested).
COMMANDS = ", ".join(repr(name) for name, _, _ in cli._COMMAND_PARSERS)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["rnu"],
         (f"vectraguard: argument COMMAND: invalid choice: 'rnu' (did you mean 'run'?); choose from {COMMANDS}; "
         "see `vectraguard --help`")),
        (["logs", "lsit"],
         ("vectraguard logs: argument SUBCOMMAND: invalid choice: 'lsit' (did you mean 'list'?); choose from "
         "'list', 'show', 'verify', 'head', 'export', 'prune', 'replay'; see `vectraguard logs --help`")),
        (["run", "--network", "ful", "--", "true"],
         ("vectraguard run: argument --network: invalid choice: 'ful' (did you mean 'full'?); choose from "
         "'none', 'allowlist', 'full'; see `vectraguard run --help`")),
        (["run", "--profle", "x"],
         ("vectraguard run: unrecognized arguments: --profle (did you mean --profile?); "
         "see `vectraguard run --help`")),
        (["run", "--profle=test-untrusted", "--", "true"],
         ("vectraguard run: unrecognized arguments: --profle=test-untrusted (did you mean --profile?); "
         "see `vectraguard run --help`")),
        (["logs", "list", "--stauts", "ok"],
         ("vectraguard logs list: unrecognized arguments: --stauts (did you mean --status?) ok; "
         "see `vectraguard logs list --help`")),
        (["run", "-p", "untrsted", "--", "true"],
         f"vectraguard: unknown profile 'untrsted' (did you mean 'untrusted'?); available profiles: {PROFILES}"),
        (["profile", "show", "untrsted"],
         f"vectraguard: unknown profile 'untrsted' (did you mean 'untrusted'?); available profiles: {PROFILES}"),
        # An agent is looked for among agents (profiles with an `agent` section), not among every profile.
        (["agent", "start", "claude-cod"],
         ("vectraguard: unknown agent 'claude-cod' (did you mean 'claude-code'?); available agents: aider, "
          "claude-code, codex, generic; `vectraguard agent list` describes them")),
        (["agent", "start", "claude"],
         ("vectraguard: unknown agent 'claude' (did you mean 'claude-code'?); available agents: aider, "
          "claude-code, codex, generic; `vectraguard agent list` describes them")),
        # Profile names are lowercase: a name in another case gets the name it spells.
        (["run", "-p", "Dev", "--", "true"],
         ("vectraguard: 'Dev' is not a valid profile name (did you mean 'dev'?); profile names are lowercase "
          "letters, digits, '.', '_' and '-'")),
        (["profile", "show", "UNTRUSTED"],
         ("vectraguard: 'UNTRUSTED' is not a valid profile name (did you mean 'untrusted'?); profile names are "
          "lowercase letters, digits, '.', '_' and '-'")),
        (["completion", "bsh"],
         ("vectraguard completion: argument SHELL: invalid choice: 'bsh' (did you mean 'bash'?); choose from "
         "'bash', 'zsh', 'fish'; see `vectraguard completion --help`")),
        # Nothing close: no guess, and for an option the reminder that the command's own go after --.
        (["run", "--bogus", "--", "true"],
         ("vectraguard run: unrecognized arguments: --bogus; the sandboxed command and its options go after `--`, "
         "e.g. vectraguard run -- ls -la; see `vectraguard run --help`")),
        (["xyzzy"],
         f"vectraguard: argument COMMAND: invalid choice: 'xyzzy'; choose from {COMMANDS}; see `vectraguard --help`"),
        (["pool", "start", "-n", "9"],
         ("vectraguard pool start: argument -n/--number: invalid choice: 9 (choose from 1, 2, 3, 4, 5, 6, 7, 8); "
         "see `vectraguard pool start --help`")),
    ],
)
def test_typos_get_a_suggestion(root: Caller, workspace: Path, args: list[str], expected: str) -> None:
    said = refused(root, args, workspace)
    if "; available profiles: " in expected:
        # The list holds the caller's own profiles too: other test modules add some to root's config.
        said, _, listed = said.partition("; available profiles: ")
        expected, _, shipped = expected.partition("; available profiles: ")
        names = listed.split(", ")
        assert set(shipped.split(", ")) <= set(names) and names == sorted(names), listed
    assert said == expected


def test_a_profile_files_mistakes_are_suggested_at_their_own_lines(root: Caller, workspace: Path,
                                                                   tmp_path: Path) -> None:
    """An enum value gets a suggestion; each unknown key is reported at its own line (a key sorted first,
    on line 1, had made `limts` on line 2 be reported at line 1)."""
    path = tmp_path / "typos.yaml"
    path.write_text("Description: x\nlimts:\n  memory: 1Gi\nnetwork:\n  mode: allowlst\n")
    result = root.run(["profile", "validate", str(path)], cwd=workspace)
    assert result.returncode != 0, result.stderr
    allowed = ("allowed: agent, description, engine, env, extends, filesystem, image, include, isolation, limits, "
               "network, output, pool, pool_idle, risk, security")
    assert result.stderr.decode().splitlines()[1:] == [
        f"  {path}:1: unknown key 'Description' (did you mean 'description'?) — {allowed}",
        f"  {path}:2: unknown key 'limts' (did you mean 'limits'?) — {allowed}",
        f"  {path}:5: network.mode: 'allowlst' is not one of none, allowlist, full (did you mean 'allowlist'?)",
    ]
