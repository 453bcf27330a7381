"""A cached gate decision (approvals/cached_gate.py): a repeated run is not
judged again, and any change to what the decision rests on is judged anew.

Everything is real: profiles are resolved from profile files, the policy and
the approvals store are files, scripts are files, the cache is a directory.
The judge is counted (cached_gate._judge wrapped, still called), and the
terminal prompt is fenced off (a test that reached it would hang on a
developer's terminal): the one test of a person's answer gives it. What a
run without a terminal does is tested in a child process with no controlling
terminal, as is what a cache hit imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vectraguard import errors
from vectraguard.approvals import cached_gate, decision_cache, decision_key, store
from vectraguard.cli import build_parser
from vectraguard.config import flags, policy, profiles
from vectraguard.config.resolved import digest

RISKY = ("sh", "-c", "rm -rf ~/cache")  # rm-recursive and rm-home-file, class destructive
PROFILES = {
    "t-ask": "extends: default\n",  # destructive: ask (the shipped decisions)
    "t-allow": "extends: default\nrisk:\n  decisions:\n    destructive: allow\n",
    "t-deny": "extends: default\nrisk:\n  decisions:\n    destructive: deny\n",
    "t-net": "extends: default\nnetwork:\n  mode: allowlist\n  allow: [a.example]\n",
}
# Modules of the judge: a cache hit imports none of them (nor does this module: child_call imports it).
JUDGE_MODULES = ("vectraguard.risk.assess", "vectraguard.risk.classify", "vectraguard.risk.decide",
                 "vectraguard.risk.ruleset", "vectraguard.risk.shellwords", "vectraguard.approvals.gate",
                 "vectraguard.approvals.script_files", "vectraguard.approvals.prompt")
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Env:
    cwd: Path
    config: Path  # XDG_CONFIG_HOME
    cache: Path  # XDG_CACHE_HOME
    data: Path  # VECTRAGUARD_DATA_DIR
    system: Path  # VECTRAGUARD_SYSTEM_DIR

    def variables(self) -> dict[str, str]:
        return {"XDG_CONFIG_HOME": str(self.config), "XDG_CACHE_HOME": str(self.cache),
                "VECTRAGUARD_DATA_DIR": str(self.data), "VECTRAGUARD_SYSTEM_DIR": str(self.system)}

    def profile(self, name: str, text: str) -> None:
        (self.config / "vectraguard" / "profiles.d" / f"{name}.yaml").write_text(text)

    def policy(self, text: str) -> None:
        (self.system / "policy.yaml").write_text("version: 1\n" + text)

    def entries(self) -> list[Path]:
        return sorted(decision_cache.cache_dir().glob("*.json"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    base = tmp_path.resolve()
    made = Env(base / "work", base / "config", base / "cache", base / "data", base / "etc")
    for directory in (made.cwd, made.config / "vectraguard" / "profiles.d", made.cache, made.system):
        directory.mkdir(parents=True)
    for name, text in PROFILES.items():
        made.profile(name, text)
    for variable, value in made.variables().items():
        monkeypatch.setenv(variable, value)
    return made


@pytest.fixture(autouse=True)
def no_terminal_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    from vectraguard.approvals import prompt

    def fenced(*_: Any, **__: Any) -> None:
        raise AssertionError("this test reached the terminal prompt")

    monkeypatch.setattr(prompt, "ask", fenced)


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The argv of every run the judge ran for."""
    calls: list[tuple[str, ...]] = []
    real = cached_gate._judge

    def counted(argv: tuple[str, ...], *args: Any, **kwargs: Any) -> Any:
        calls.append(argv)
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(cached_gate, "_judge", counted)
    return calls


def resolved(argv: tuple[str, ...], profile: str, options: tuple[str, ...], cwd: Path) -> dict[str, Any]:
    """What `prepare` has when it settles the gate (commands/run.py)."""
    args = build_parser("run").parse_args(["run", "-p", profile, "--ignore-project", *options, "--", *argv])
    sources = profiles.Sources.for_directory(str(cwd), ignore_project=True)
    return {"argv": argv, "cwd": str(cwd), "profile": profiles.resolve(profile, [flags.flags_layer(args)], sources),
            "sources": sources, "system_policy": policy.load(), "writable": (), "yes": args.yes, "args": args}


def gate(env: Env, argv: tuple[str, ...], profile: str = "t-ask", *options: str,
         cwd: Path | None = None) -> tuple[dict[str, Any], ...]:
    return cached_gate.settle(**resolved(argv, profile, options, cwd or env.cwd))


def without_time(entries: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "at"} for e in entries]


def grant(env: Env, argv: tuple[str, ...], profile: str = "t-ask", seconds: float = 600) -> store.Remembered:
    """A remembered approval, as `approvals grant` or a "remember" answer keeps it."""
    facts = resolved(argv, profile, (), env.cwd)
    return store.remember(argv, str(env.cwd), profile, digest(facts["profile"]), ("rm-recursive",), "someone",
                          "2026-01-01T00:00:00.000Z", seconds)


def hit_then_miss(env: Env, judged: list[tuple[str, ...]], call: Callable[[], Any], change: Callable[[], None]) -> Any:
    """`call` judged once, then served from the cache; after `change`, judged again. Its last result."""
    first = call()
    assert len(judged) == 1
    assert without_time(call()) == without_time(first)
    assert len(judged) == 1, "the repeated call was judged again"
    change()
    last = call()
    assert len(judged) == 2, "the change did not make the cached decision a miss"
    return last


# -- a hit ----------------------------------------------------------------------------------------


def test_a_repeated_run_gets_the_same_audit_entries_with_a_fresh_time(env: Env, judged: list[tuple[str, ...]]
                                                                       ) -> None:
    first = gate(env, RISKY, "t-allow")
    again = gate(env, RISKY, "t-allow")
    assert len(judged) == 1
    [entry] = again
    assert list(entry) == list(first[0])  # the same keys, in the same order: the record reads the same
    assert without_time(again) == without_time(first)
    assert entry["decision"] == "allowed" and entry["by"] == "risk.decisions" and entry["user"] == "root"
    assert [f["rule"] for f in entry["findings"]] == ["rm-recursive", "rm-home-file"]
    assert entry["at"] >= first[0]["at"]


def test_a_hit_gives_what_judging_afresh_gives(env: Env) -> None:
    from vectraguard.approvals import gate as real_gate
    from vectraguard.risk.assess import assess

    gate(env, RISKY, "t-ask", "--yes")
    served = gate(env, RISKY, "t-ask", "--yes")
    facts = resolved(RISKY, "t-ask", ("--yes",), env.cwd)
    decision = assess(RISKY, str(env.cwd), facts["profile"], facts["args"], facts["sources"], facts["system_policy"])
    run = real_gate.Run(RISKY, str(env.cwd), facts["profile"], digest(facts["profile"]), (), "none")
    fresh = real_gate.settle(decision, run, yes=True, policy=facts["system_policy"])
    assert without_time(served) == without_time(fresh)
    assert served[0]["by"] == "--yes"


CHILD = """
import json, sys
from tests.test_decision_cache import child_call
print(json.dumps(child_call(*json.loads(sys.argv[1]))))
"""


def child_call(argv: list[str], profile: str, options: list[str], cwd: str) -> dict[str, Any]:
    """In a child process: one gate call, what it imported, whether it was judged, its entries or refusal."""
    calls: list[Any] = []
    real = cached_gate._judge
    cached_gate._judge = lambda *a, **k: (calls.append(1), real(*a, **k))[1]  # type: ignore[assignment]
    facts = resolved(tuple(argv), profile, tuple(options), Path(cwd))
    before = set(sys.modules)
    try:
        entries, refusal = cached_gate.settle(**facts), None
    except errors.VGError as exc:
        entries, refusal = (), exc.lines()[0]
    return {"entries": list(entries), "refusal": refusal, "judged": bool(calls),
            "imported": sorted(set(sys.modules) - before),
            "judge_loaded": [m for m in JUDGE_MODULES if m in sys.modules]}


def in_child(env: Env, argv: tuple[str, ...], profile: str, *options: str) -> dict[str, Any]:
    """child_call in a process of its own, with no controlling terminal."""
    variables = {**os.environ, **env.variables(), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([list(argv), profile, list(options), str(env.cwd)])],
                          env=variables, cwd=ROOT, capture_output=True, timeout=120, check=False,
                          start_new_session=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_hit_imports_none_of_the_judge(env: Env) -> None:
    miss = in_child(env, RISKY, "t-ask", "--yes")  # the whole gate: findings, the store, the files run
    assert miss["judged"] and miss["judge_loaded"] == list(JUDGE_MODULES)
    hit = in_child(env, RISKY, "t-ask", "--yes")
    assert not hit["judged"]
    assert hit["judge_loaded"] == []
    assert [m for m in hit["imported"] if m.startswith("vectraguard.risk")] == []
    assert without_time(hit["entries"]) == without_time(miss["entries"])


# -- what is never served from the cache ----------------------------------------------------------


def test_an_approval_because_there_is_no_terminal_is_never_reused(env: Env) -> None:
    env.policy("approvals:\n  without_terminal: approve\n")
    for _ in range(2):
        result = in_child(env, RISKY, "t-ask")
        assert result["judged"] and result["refusal"] is None
        assert result["entries"][0]["by"].startswith("policy rule approvals.without_terminal")
    assert env.entries() == []


def test_without_a_terminal_a_run_that_needs_asking_is_refused_each_time(env: Env) -> None:
    in_child(env, RISKY, "t-ask", "--yes")  # approved by --yes: cached, for --yes only
    assert len(env.entries()) == 1
    for _ in range(2):
        result = in_child(env, RISKY, "t-ask")
        assert result["judged"]
        assert result["refusal"].endswith("needs approval, and there is no terminal to ask on; "
                                          "run it from a terminal to be asked, or pass --yes")


def test_a_persons_answer_is_never_reused(env: Env, judged: list[tuple[str, ...]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from vectraguard.approvals import prompt

    asked: list[str] = []

    def person(screen: str, remember_for: str | None, **_: Any) -> prompt.Answer:
        asked.append(screen)
        return prompt.Answer.ONCE

    monkeypatch.setattr(prompt, "ask", person)
    for _ in range(2):
        [entry] = gate(env, RISKY, "t-ask")
        assert entry["by"] == "terminal"
    assert len(asked) == 2 and len(judged) == 2
    assert env.entries() == []


def test_a_refusal_is_not_cached(env: Env, judged: list[tuple[str, ...]]) -> None:
    for _ in range(2):
        with pytest.raises(errors.PolicyError, match="refused: profile t-deny denies"):
            gate(env, RISKY, "t-deny")
    assert len(judged) == 2
    assert env.entries() == []


# -- a miss on each part of the key ---------------------------------------------------------------


def test_another_argv_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    gate(env, RISKY, "t-allow")
    assert gate(env, ("true",), "t-allow") == ()
    assert judged == [RISKY, ("true",)]


def test_another_directory_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    elsewhere = env.cwd.parent / "elsewhere"
    elsewhere.mkdir()
    gate(env, RISKY, "t-allow")
    gate(env, RISKY, "t-allow")
    assert len(judged) == 1
    gate(env, RISKY, "t-allow", cwd=elsewhere)
    assert len(judged) == 2


def test_a_changed_decision_in_the_profile_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    last = hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-allow", "--yes"),
                         lambda: env.profile("t-allow", PROFILES["t-ask"]))
    assert last[0]["decision"] == "approved" and last[0]["by"] == "--yes"


def test_a_new_rule_in_the_profile_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    rule = ("extends: default\nrisk:\n  decisions:\n    no-date: allow\n  rules:\n    - id: no-date\n"
            "      class: destructive\n      reason: a test rule\n      commands: [date]\n")
    last = hit_then_miss(env, judged, lambda: gate(env, ("date",), "t-allow"), lambda: env.profile("t-allow", rule))
    assert [f["rule"] for f in last[0]["findings"]] == ["no-date"]


def test_a_moved_line_of_the_profile_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    """The audit entry names the file and line that decided: the same values on another line are another entry."""
    last = hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-allow"),
                         lambda: env.profile("t-allow", "# moved down\n" + PROFILES["t-allow"]))
    assert last[0]["findings"][0]["by"].endswith("t-allow.yaml:5)")


def test_the_policy_file_is_part_of_the_key(env: Env, judged: list[tuple[str, ...]]) -> None:
    hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-allow"),
                  lambda: env.policy("approvals:\n  allow_yes: true\n"))
    env.policy("risk:\n  decisions:\n    destructive: deny\n")
    with pytest.raises(errors.PolicyError, match="refused"):
        gate(env, RISKY, "t-allow")
    assert len(judged) == 3


def test_the_judges_code_and_shipped_rules_are_part_of_the_key(env: Env, judged: list[tuple[str, ...]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-allow"),
                  lambda: monkeypatch.setattr(decision_key, "judge_digest", lambda: "another release"))


def test_an_edited_script_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    script = env.cwd / "install.sh"
    script.write_text("echo installing\n")
    last = hit_then_miss(env, judged, lambda: gate(env, ("./install.sh",), "t-ask", "--yes"),
                         lambda: script.write_text("rm -rf ~/cache\n"))
    [entry] = last
    assert entry["by"] == "--yes" and entry["runs"] == [{"path": str(script), "sha256": entry["runs"][0]["sha256"]}]
    assert [f["rule"] for f in entry["findings"]] == ["rm-recursive", "rm-home-file"]


def test_a_script_that_appears_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    script = env.cwd / "later.sh"
    last = hit_then_miss(env, judged, lambda: gate(env, ("sh", "-c", "sh later.sh || true"), "t-ask", "--yes"),
                         lambda: script.write_text("rm -rf ~/cache\n"))
    assert last[0]["by"] == "--yes" and "rm-recursive" in [f["rule"] for f in last[0]["findings"]]


def test_a_makefile_that_make_would_choose_instead_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    (env.cwd / "Makefile").write_text("all:\n\ttrue\n")
    line = ("sh", "-c", "make; rm -rf ~/cache")
    last = hit_then_miss(env, judged, lambda: gate(env, line, "t-ask", "--yes"),
                         lambda: (env.cwd / "GNUmakefile").write_text("all:\n\ttrue\n"))
    assert [run["path"] for run in last[0]["runs"]] == [str(env.cwd / "GNUmakefile")]


def test_another_home_is_a_miss(env: Env, judged: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = env.cwd / "home1", env.cwd / "home2"
    for home, text in ((first, "echo hello\n"), (second, "rm -rf ~/cache\n")):
        home.mkdir()
        (home / "x.sh").write_text(text)
    monkeypatch.setenv("HOME", str(first))
    last = hit_then_miss(env, judged, lambda: gate(env, ("sh", "-c", "sh ~/x.sh"), "t-ask", "--yes"),
                         lambda: monkeypatch.setenv("HOME", str(second)))
    assert "rm-recursive" in [f["rule"] for f in last[0]["findings"]]


def test_a_grant_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    kept: list[store.Remembered] = []
    last = hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-ask", "--yes"), lambda: kept.append(grant(env, RISKY)))
    assert last[0]["by"] == f"remembered approval {kept[0].id}" and last[0]["approved_by"] == "someone"


def test_a_revocation_is_a_miss_even_within_the_same_moment(env: Env, judged: list[tuple[str, ...]]) -> None:
    kept = grant(env, RISKY)
    grant(env, ("true",))  # another entry: the store is not emptied by the revocation
    path = store.store_path()
    before = os.stat(path)

    def revoke() -> None:
        store.revoke([kept.id])
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime tick

    last = hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-ask", "--yes"), revoke)
    assert last[0]["by"] == "--yes"


def test_a_decision_resting_on_an_approval_expires_with_it(env: Env, judged: list[tuple[str, ...]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    kept = grant(env, RISKY, seconds=600)
    [entry] = gate(env, RISKY, "t-ask", "--yes")
    assert entry["by"] == f"remembered approval {kept.id}"
    [cached] = env.entries()
    assert json.loads(cached.read_text())["until"] <= kept.expires_at
    now[0] = kept.expires_at - 1
    assert gate(env, RISKY, "t-ask", "--yes")[0]["by"] == f"remembered approval {kept.id}"
    assert len(judged) == 1
    now[0] = kept.expires_at
    assert gate(env, RISKY, "t-ask", "--yes")[0]["by"] == "--yes"
    assert len(judged) == 2


def test_a_clock_set_back_is_a_miss(env: Env, judged: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-allow"), lambda: now.__setitem__(0, now[0] - 3600))


def test_no_decision_is_reused_after_max_age(env: Env, judged: list[tuple[str, ...]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    hit_then_miss(env, judged, lambda: gate(env, RISKY, "t-allow"),
                  lambda: now.__setitem__(0, now[0] + cached_gate.MAX_AGE))


def test_yes_is_part_of_the_key(env: Env, judged: list[tuple[str, ...]]) -> None:
    gate(env, RISKY, "t-allow", "--yes")
    gate(env, RISKY, "t-allow")
    assert len(judged) == 2
    gate(env, RISKY, "t-allow")
    assert len(judged) == 2


def test_a_profile_widened_from_the_command_line_is_judged_against_its_files(env: Env, judged: list[tuple[str, ...]]
                                                                             ) -> None:
    """`--allow` beyond the profile's own allowlist is a finding: when the file's list changes, so does that."""
    last = hit_then_miss(env, judged, lambda: gate(env, ("true",), "t-net", "--allow", "b.example", "--yes"),
                         lambda: env.profile("t-net", PROFILES["t-net"].replace("[a.example]", "[a.example, b.example]")))
    assert last == ()


# -- the cache directory --------------------------------------------------------------------------


def plant(env: Env, argv: tuple[str, ...], profile: str, entries: list[Any]) -> Path:
    facts = resolved(argv, profile, (), env.cwd)
    key = decision_key.key(argv, str(env.cwd), facts["profile"], facts["sources"], facts["system_policy"], yes=False)
    assert key is not None
    directory = decision_cache.cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key}.json"
    path.write_text(json.dumps({"format": 1, "key": key, "cached_at": time.time() - 1, "until": time.time() + 600,
                                "notes": [], "entries": entries}))
    path.chmod(0o600)
    return path


def test_a_planted_entry_counts_only_in_the_users_private_directory(env: Env) -> None:
    planted = plant(env, RISKY, "t-deny", [])
    decision_cache.cache_dir().chmod(0o700)
    assert gate(env, RISKY, "t-deny") == ()  # the user's own directory is trusted, as their profiles are
    decision_cache.cache_dir().chmod(0o777)
    with pytest.raises(errors.PolicyError, match="refused: profile t-deny denies"):
        gate(env, RISKY, "t-deny")
    decision_cache.cache_dir().chmod(0o700)
    planted.chmod(0o666)
    with pytest.raises(errors.PolicyError, match="refused: profile t-deny denies"):
        gate(env, RISKY, "t-deny")


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"format": 1}', b"", b"\xff\xfe"])
def test_a_corrupt_entry_is_a_miss(env: Env, judged: list[tuple[str, ...]], content: bytes) -> None:
    first = gate(env, RISKY, "t-allow")
    [path] = env.entries()
    path.write_bytes(content)
    assert without_time(gate(env, RISKY, "t-allow")) == without_time(first)
    assert len(judged) == 2
    assert json.loads(path.read_text())["key"] == path.stem  # rewritten whole
    gate(env, RISKY, "t-allow")
    assert len(judged) == 2


def test_a_planted_entry_whose_notes_do_not_hold_is_a_miss(env: Env, judged: list[tuple[str, ...]]) -> None:
    script = env.cwd / "x.sh"
    script.write_text("echo hi\n")
    plant(env, RISKY, "t-deny", [])
    path = env.entries()[0]
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "notes": [["text", [str(script), 1024], "0" * 64]]}))
    with pytest.raises(errors.PolicyError):
        gate(env, RISKY, "t-deny")


def test_the_cache_is_bounded(env: Env, judged: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision_cache, "MAX_ENTRIES", 3)
    monkeypatch.setattr(decision_cache, "KEEP_AFTER_PRUNING", 2)
    for number in range(3):
        gate(env, ("echo", str(number)), "t-allow")
    for age, path in enumerate(env.entries()):
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # older than the next one
    gate(env, ("echo", "newest"), "t-allow")
    assert len(env.entries()) == 2
    gate(env, ("echo", "newest"), "t-allow")
    assert len(judged) == 4  # the newest was kept


def test_a_file_that_changes_while_it_is_judged_leaves_nothing_to_cache(tmp_path: Path) -> None:
    from vectraguard.approvals import observed

    script = tmp_path / "x.sh"
    script.write_text("echo one\n")
    with observed.watching() as notes:
        observed.script_text(str(script), 1024)
        observed.script_text(str(script), 1024)
    assert notes.complete and len(notes.items()) == 1 and observed.unchanged(notes.items())
    with observed.watching() as notes:
        observed.script_text(str(script), 1024)
        script.write_text("echo two\n")
        observed.script_text(str(script), 1024)
    assert not notes.complete


@pytest.mark.parametrize("notes", [None, {}, [["nothing", "/", True]], [["exists"]], [["text", "/etc/hostname", None]],
                                   [["text", [1, 2, 3], None]], [["realpath", 42, "/"]], [["exists", 0, True]],
                                   [["text", ["/etc/hostname", True], None]]])
def test_malformed_notes_never_hold(notes: Any) -> None:
    from vectraguard.approvals import observed

    assert not observed.unchanged(notes)


def test_an_unwritable_cache_only_costs_time(env: Env, judged: list[tuple[str, ...]]) -> None:
    (env.cache / "vectraguard").write_text("not a directory\n")
    assert gate(env, RISKY, "t-allow")[0]["decision"] == "allowed"
    assert gate(env, RISKY, "t-allow")[0]["decision"] == "allowed"
    assert len(judged) == 2
