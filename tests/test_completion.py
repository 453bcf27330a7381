"""Shell completion (vectraguard/completion/): the scripts `vectraguard completion
SHELL` prints, loaded in a real bash, fish and zsh, offer commands, options,
choices, profile names and session ids; the listing helper stays quiet."""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.terminal import Pty, Terminal
from tests.support.vg import SYSTEM_PATH, Caller

# A profile of the user's own: completion must find more than the shipped ones.
USER_PROFILE = "mine-tools"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private config and data directory, and a `vectraguard` on PATH that runs this checkout."""
    base = tmp_path_factory.mktemp("completion")
    (base / "config" / "vectraguard" / "profiles.d").mkdir(parents=True)
    (base / "config" / "vectraguard" / "profiles.d" / f"{USER_PROFILE}.yaml").write_text("extends: untrusted\n")
    (base / "data").mkdir()
    (base / "bin").mkdir()
    launcher = base / "bin" / "vectraguard"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m vectraguard "$@"\n')
    launcher.chmod(0o755)
    return base


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    caller = Caller(None, home / "config")
    return caller.environment({"PATH": f"{home / 'bin'}:{SYSTEM_PATH}", "VECTRAGUARD_DATA_DIR": str(home / "data"),
                               "VECTRAGUARD_FORKSERVER": "0", "TERM": "dumb"})


@pytest.fixture(scope="module")
def session_id(env: dict[str, str], home: Path) -> str:
    """A recorded session: a refused run is recorded too, and needs no Podman."""
    vg = [sys.executable, "-m", "vectraguard"]
    refused = subprocess.run([*vg, "run", "-p", "no-such-profile", "--", "true"], env=env, cwd=home,
                             capture_output=True, check=False)
    assert refused.returncode == 125, refused.stderr
    listed = subprocess.run([*vg, "logs", "list", "--json"], env=env, cwd=home, capture_output=True, check=True)
    (session,) = json.loads(listed.stdout)
    return str(session["id"])


def shell(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False, timeout=120)
    assert done.returncode == 0 and done.stderr == b"", (done.returncode, done.stderr.decode(errors="replace"))
    return done.stdout.decode()


# bash: complete as bash-completion would, with the words typed so far (the last one being completed).
BASH_DRIVER = """
source <(vectraguard completion bash) || exit 9
spec=($(complete -p vectraguard))
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"${spec[-2]}" vectraguard "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""


def bash_offers(words: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    return shell(["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", *words], env, cwd).split()


def test_bash_registers_a_completion_function(env: dict[str, str], home: Path) -> None:
    registered = shell(["bash", "--norc", "--noprofile", "-c",
                        "source <(vectraguard completion bash) && complete -p vectraguard"], env, home)
    assert registered.startswith("complete ") and registered.split()[-3:-1] == ["-F", "_shtab_vectraguard"]


@pytest.mark.skipif(not Path("/usr/share/bash-completion/bash_completion").is_file(),
                    reason="bash-completion is not installed (contrib/test.sh installs it)")
def test_bash_completion_loads_the_installed_script_on_demand(env: dict[str, str], home: Path) -> None:
    """Where contrib/install.sh puts it (under /usr/local/share, which bash-completion searches
    through XDG_DATA_DIRS): here a directory of the test's own in its place."""
    share = home / "share"
    (share / "bash-completion" / "completions").mkdir(parents=True, exist_ok=True)
    (share / "bash-completion" / "completions" / "vectraguard").write_text(
        shell([sys.executable, "-m", "vectraguard", "completion", "bash"], env, home))
    loaded = shell(["bash", "--norc", "--noprofile", "-c", ("source /usr/share/bash-completion/bash_completion; "
                    "_completion_loader vectraguard; complete -p vectraguard")],
                   {**env, "XDG_DATA_DIRS": f"{share}:/usr/share"}, home)
    assert loaded.split()[-3:] == ["-F", "_shtab_vectraguard", "vectraguard"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (contrib/test.sh installs it)")
def test_zsh_autoloads_the_installed_script_from_fpath(env: dict[str, str], home: Path) -> None:
    """As installed in site-functions: a file _vectraguard in a $fpath directory, found by compinit."""
    functions = home / "site-functions"
    functions.mkdir(exist_ok=True)
    (functions / "_vectraguard").write_text(shell([sys.executable, "-m", "vectraguard", "completion", "zsh"], env, home))
    found = shell(["zsh", "-f", "-c", (f"fpath=({functions} $fpath); autoload -U compinit; compinit -u -D; "
                   "print -r -- $_comps[vectraguard]")], env, home)
    assert found.strip() == "_vectraguard"


def test_building_the_run_parser_loads_no_completion_or_suggestion_code(env: dict[str, str], home: Path) -> None:
    code = ("import sys, vectraguard.cli as cli; cli.parser_for('run').parse_args(['run', '-p', 'x']); "
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(shell([sys.executable, "-c", code], env, home).split())
    assert loaded.isdisjoint({"shtab", "difflib", "vectraguard.completion", "vectraguard.suggest"})


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["vectraguard", "ru"], ["run"]),
        (["vectraguard", "logs", "l"], ["list"]),
        (["vectraguard", "run", "--netw"], ["--network"]),
        (["vectraguard", "run", "--network", ""], ["none", "allowlist", "full"]),
        (["vectraguard", "run", "-p", "unt"], ["untrusted"]),
        (["vectraguard", "run", "--profile", "mine"], [USER_PROFILE]),
        (["vectraguard", "profile", "show", "de"], ["default", "dev"]),
        (["vectraguard", "agent", "start", "cl"], ["claude-code"]),
        (["vectraguard", "completion", ""], ["bash", "zsh", "fish"]),
    ],
)
def test_bash_offers(env: dict[str, str], home: Path, words: list[str], offered: list[str]) -> None:
    assert bash_offers(words, env, home) == offered


@pytest.mark.parametrize("command", [["logs", "show"], ["diff"], ["apply"], ["discard"], ["changes"]])
def test_bash_offers_recorded_session_ids(env: dict[str, str], home: Path, session_id: str,
                                           command: list[str]) -> None:
    assert bash_offers(["vectraguard", *command, session_id[:6]], env, home) == [session_id]


@pytest.fixture(scope="module")
def replay_store(root: Caller, env: dict[str, str], home: Path) -> tuple[dict[str, str], str, str]:
    """A store of its own (the other tests' ids must stay unique by prefix) holding a session with a
    terminal recording (a shell in a real sandbox on a real pty) and one without (a refused run):
    the environment that reads it, and the two ids."""
    store_env = {**env, "VECTRAGUARD_DATA_DIR": str(home / "replay-store")}
    Path(store_env["VECTRAGUARD_DATA_DIR"]).mkdir()
    term = Terminal(root, home, ["sandbox", "shell", "-p", "test-untrusted", "--workspace", "none", "--", "-c",
                                 "exit 0"], extra_env={"VECTRAGUARD_DATA_DIR": store_env["VECTRAGUARD_DATA_DIR"]})
    assert term.wait() == 0, term.seen
    root.wait_for_removals()
    vg = [sys.executable, "-m", "vectraguard"]
    subprocess.run([*vg, "run", "-p", "no-such-profile", "--", "true"], env=store_env, cwd=home, capture_output=True,
                   check=False)
    listed = subprocess.run([*vg, "logs", "list", "--json"], env=store_env, cwd=home, capture_output=True, check=True)
    unrecorded, recorded = (str(row["id"]) for row in json.loads(listed.stdout))  # newest first
    return store_env, recorded, unrecorded


def test_logs_replay_offers_only_sessions_with_a_recording(home: Path,
                                                           replay_store: tuple[dict[str, str], str, str]) -> None:
    """Issue 18: `logs replay <Tab>` offered sessions it can only refuse (a run has no recording)."""
    store_env, recorded, unrecorded = replay_store
    assert bash_offers(["vectraguard", "logs", "replay", ""], store_env, home) == [recorded]
    assert sorted(bash_offers(["vectraguard", "logs", "show", ""], store_env, home)) == sorted([recorded, unrecorded])


def test_agent_start_offers_only_agents(env: dict[str, str], home: Path) -> None:
    """Issue 18: `agent start <Tab>` offered every profile; only those with an `agent` section start."""
    assert bash_offers(["vectraguard", "agent", "start", ""], env, home) == ["aider", "claude-code", "codex", "generic"]


@pytest.mark.parametrize("command", [["stop"], ["exec"]])
def test_bash_offers_only_running_sessions_where_only_they_are_taken(env: dict[str, str], home: Path,
                                                                    session_id: str, command: list[str]) -> None:
    """`session_id` is a refused run's (ended): `inspect` offers it, `stop` and `exec` do not."""
    assert bash_offers(["vectraguard", "inspect", session_id[:6]], env, home) == [session_id]
    assert bash_offers(["vectraguard", *command, session_id[:6]], env, home) == []


def test_the_hidden_listing_is_quiet_when_nothing_can_be_read(env: dict[str, str], home: Path) -> None:
    """A store that cannot be opened gives no candidates, status 0 and nothing on stderr."""
    broken = home / "broken-data"
    broken.mkdir(mode=0o700, exist_ok=True)
    (broken / "audit.db").write_bytes(b"not a database, but long enough to be read as one's header" * 10)
    quiet = {**env, "VECTRAGUARD_DATA_DIR": str(broken)}
    unreadable = subprocess.run([sys.executable, "-m", "vectraguard", "logs", "list"], env=quiet, cwd=home,
                                capture_output=True, check=False)
    assert unreadable.returncode == 125  # what the listing must not pass on to the shell
    assert shell([sys.executable, "-m", "vectraguard", "completion", "--list", "sessions"], quiet, home) == ""


def fish_offers(line: str, env: dict[str, str], cwd: Path) -> list[str]:
    script = f"vectraguard completion fish | source; and complete -C {_fish_quote(line)}"
    return [row.split("\t")[0] for row in shell(["fish", "--no-config", "-c", script], env, cwd).splitlines()]


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (contrib/test.sh installs it)")
@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("vectraguard ru", ["run"]),
        ("vectraguard logs l", ["list"]),
        ("vectraguard run --network a", ["allowlist"]),
        ("vectraguard run -p unt", ["untrusted"]),
        ("vectraguard pool stop -p mine", [USER_PROFILE]),
        ("vectraguard profile show de", ["default", "dev"]),
        ("vectraguard run -- ls da", ["data/"]),  # after --: the sandboxed command's words, paths
        ("vectraguard run da", []),
    ],
)
def test_fish_offers(env: dict[str, str], home: Path, line: str, offered: list[str]) -> None:
    assert fish_offers(line, env, home) == offered


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (contrib/test.sh installs it)")
def test_fish_describes_each_candidate_on_its_own(env: dict[str, str], home: Path, session_id: str) -> None:
    """Issue 18: fish showed the option's description beside every profile name; each has its own now."""
    def described(line: str) -> list[str]:
        script = f"vectraguard completion fish | source; and complete -C {_fish_quote(line)}"
        return shell(["fish", "--no-config", "-c", script], env, home).splitlines()

    assert described("vectraguard run -p unt") == ["untrusted\tshipped profile"]
    assert described("vectraguard run -p mine") == [f"{USER_PROFILE}\tyour profile"]
    assert described("vectraguard agent start cl") == ["claude-code\tagent: claude"]
    (row,) = described(f"vectraguard logs show {session_id[:6]}")
    assert row.startswith(f"{session_id}\t20") and row.endswith(" no-such-profile: true"), row


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (contrib/test.sh installs it)")
def test_fish_offers_recorded_session_ids(env: dict[str, str], home: Path, session_id: str) -> None:
    assert fish_offers(f"vectraguard logs show {session_id[:6]}", env, home) == [session_id]


class Zsh(Pty):
    """An interactive `zsh -f` on a real pty: its line editor completes as a user's would."""

    PROMPT = b"R2> "  # set as R$((1+1)): what is typed never looks like the prompt

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd)
            os.execvpe("zsh", ["zsh", "-f", "-i"], env)
        self.seen = b""
        self.send(b"autoload -U compinit && compinit -u && source <(vectraguard completion zsh); PS1=R$((1+1))'> '\n")
        self.expect(self.PROMPT, timeout=60)

    def completed(self, typed: str) -> str:
        """The command line after typing `typed` and Tab: Ctrl-A and `echo $((6*7)) ` put in front
        of it make zsh print it, behind a 42 that only the echo's output has."""
        self.send(typed.encode() + b"\t\x01echo $((6*7)) \n")
        shown = self.expect(self.PROMPT, timeout=60)
        line = shown.rsplit(b"\n42 ", 1)[1].split(b"\r\n", 1)[0]
        return line.decode()

    def close(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture(scope="module")
def zsh(env: dict[str, str], home: Path) -> Iterator[Zsh]:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (contrib/test.sh installs it)")
    session = Zsh({**{k: v for k, v in env.items() if k not in ("EDITOR", "VISUAL")}, "HOME": str(home)}, home)
    yield session
    session.close()


@pytest.mark.parametrize(
    ("typed", "line"),
    [
        ("vectraguard ru", "vectraguard run"),
        ("vectraguard logs sh", "vectraguard logs show"),
        ("vectraguard run -p unt", "vectraguard run -p untrusted"),
        ("vectraguard run --profile mine", f"vectraguard run --profile {USER_PROFILE}"),
    ],
)
def test_zsh_completes(zsh: Zsh, typed: str, line: str) -> None:
    assert zsh.completed(typed) == line
