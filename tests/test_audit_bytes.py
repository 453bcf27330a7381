"""Every byte recordable (issue 14, item 2): argv, environment names, paths and
output that are not UTF-8 are recorded exactly ({"b64": ...}, audit/exact.py),
shown escaped, and never reach the sandbox changed (Podman's JSON API would
turn them into U+FFFD: such a run is refused, and the refusal recorded)."""

from __future__ import annotations

import base64
import json
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import Caller
from vectraguard.audit import exact
from vectraguard.audit.store import open_store
from vectraguard.audit.verify import verify

P = ["run", "-p", "test-tight"]
LATIN1 = "caf\udce9.txt"  # b"caf\xe9.txt" as Python's argv and os.listdir give it


def _vg(caller: Caller, args: list[str], cwd: Path, data_dir: Path) -> Any:
    return caller.run(args, cwd=cwd, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)}, timeout=120)


def _listed(caller: Caller, cwd: Path, data_dir: Path) -> list[dict[str, Any]]:
    result = _vg(caller, ["logs", "list", "--json", "--limit", "1000"], cwd, data_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _shown(caller: Caller, session: str, cwd: Path, data_dir: Path) -> dict[str, Any]:
    result = _vg(caller, ["logs", "show", session, "--json"], cwd, data_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def test_a_latin1_file_name_is_refused_not_changed_and_recorded_exactly(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    """`run -- ls $'caf\\xe9.txt'`: Podman would have run `ls 'caf\ufffd.txt'`."""
    (workspace / LATIN1).write_text("x")
    before = set(root.sandboxes())
    result = _vg(root, [*P, "--", "ls", LATIN1], workspace, data_dir)
    assert result.returncode == 125, result.stderr
    assert b"this run cannot reach the sandbox exactly" in result.stderr
    assert b"not UTF-8: argument 1 of the command" in result.stderr
    assert not set(root.sandboxes()) - before  # (other runs on this Podman may end meanwhile)
    [row] = _listed(root, workspace, data_dir)
    assert (row["status"], row["exit_status"], row["command"]) == ("refused", 125, "ls $'caf\\xe9.txt'")
    [event] = _shown(root, row["id"], workspace, data_dir)["events"]
    assert event["argv"] == ["ls", _b64(b"caf\xe9.txt")]
    assert _vg(root, ["logs", "verify"], workspace, data_dir).returncode == 0
    shown = _vg(root, ["logs", "show", row["id"]], workspace, data_dir).stdout
    assert b"  argv: ls $'caf\\xe9.txt'\n" in shown


def test_a_literal_backslash_x_is_not_confused_with_a_byte(root: Caller, workspace: Path, data_dir: Path) -> None:
    """The old record wrote b"\\xe9" as the four characters \\xe9: the same as this literal text."""
    assert _vg(root, [*P, "--", "echo", "caf\\xe9.txt"], workspace, data_dir).returncode == 0
    [row] = _listed(root, workspace, data_dir)
    [started, *_] = _shown(root, row["id"], workspace, data_dir)["events"]
    assert started["argv"] == ["echo", "caf\\xe9.txt"]
    assert b"  argv: echo 'caf\\xe9.txt'\n" in _vg(root, ["logs", "show", row["id"]], workspace, data_dir).stdout


def test_a_working_directory_that_is_not_utf8_is_refused_and_recorded(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    """The workspace mount's source would reach Podman as another path."""
    odd = workspace / "d\udcff\x1b"
    odd.mkdir()
    result = _vg(root, [*P, "--", "true"], odd, data_dir)
    assert result.returncode == 125
    assert b"not UTF-8: the mount source $'" in result.stderr and b"/d\\xff\\x1b'" in result.stderr
    [row] = _listed(root, workspace, data_dir)
    [event] = _shown(root, row["id"], workspace, data_dir)["events"]
    assert event["cwd"] == _b64(os.fsencode(str(odd)))
    assert _vg(root, ["logs", "verify"], workspace, data_dir).returncode == 0


def test_output_that_is_not_utf8_is_exact_in_json(root: Caller, workspace: Path, data_dir: Path) -> None:
    assert _vg(root, [*P, "--", "sh", "-c", "printf 'caf\\351'; printf 'ok' >&2"], workspace, data_dir).returncode == 0
    [row] = _listed(root, workspace, data_dir)
    shown = _shown(root, row["id"], workspace, data_dir)
    assert shown["output"]["stdout"]["head"] == _b64(b"caf\xe9")
    assert shown["output"]["stderr"]["head"] == "ok"


def _random_bytes(rng: random.Random, forbidden: bytes = b"\0") -> bytes:
    """Short strings built to hurt: bytes that are not UTF-8, escape sequences,
    quotes and backslashes, valid multibyte text, encoded surrogates."""
    pieces = [b"\xe9", b"\xff", b"\x80", b"\xc3", b"\xed\xb3\xa9", b"\x1b[2J", b"\x1b]52;c;AA\x07", b"\r", b"\n",
              b"'", b'"', b"\\", b"\\xe9", b"$(x)", "é".encode(), "\u202e".encode(), b"b64", b"{", b" ", b"-"]
    data = b"".join(rng.choice(pieces) if rng.random() < 0.6 else bytes([rng.randrange(1, 256)])
                    for _ in range(rng.randrange(1, 8)))
    return bytes(b for b in data if b not in forbidden) or b"x"


SEED = 1414


def test_fuzz_random_bytes_in_argv_env_names_cwd_and_agent_are_always_recorded(
        root: Caller, workspace: Path, data_dir: Path) -> None:
    """No input makes a run unrecorded or makes logs list/show/verify fail; argv is recorded exactly."""
    rng = random.Random(SEED)
    expected_argv: dict[str, list[bytes]] = {}
    for attempt in range(24):
        where = ("argv", "env", "cwd", "agent")[attempt % 4]
        data = _random_bytes(rng, b"\0/" if where == "cwd" else b"\0")
        text = os.fsdecode(data)
        cwd, args = workspace, [*P, "--", "true", text]
        if where == "env":
            args = [*P, "--env", f"{text}=v", "--", "true"]
        elif where == "agent":
            args = [*P, "--agent", text, "--", "true"]
        elif where == "cwd":
            if text in (".", ".."):
                text += "x"
            cwd = workspace / f"d{attempt}{text}"
            cwd.mkdir()
        result = _vg(root, args, cwd, data_dir)
        assert result.returncode in (0, 125), (data, result.stderr)
        assert b"internal error" not in result.stderr, (data, result.stderr)
        rows = _listed(root, workspace, data_dir)
        assert len(rows) == attempt + 1, f"attempt {attempt} ({where} {data!r}) was not recorded: {result.stderr!r}"
        if where == "argv":
            expected_argv[rows[0]["id"]] = [b"true", data]
        if where == "agent":  # the listing finds a run by the agent it was given
            found = _vg(root, ["logs", "list", "--json", "--agent", text], workspace, data_dir)
            assert rows[0]["id"] in [row["id"] for row in json.loads(found.stdout)], found.stderr
    assert _vg(root, ["logs", "verify"], workspace, data_dir).returncode == 0
    assert _vg(root, ["logs", "list"], workspace, data_dir).returncode == 0
    for row in _listed(root, workspace, data_dir):
        text_shown = _vg(root, ["logs", "show", row["id"]], workspace, data_dir)
        assert text_shown.returncode == 0, text_shown.stderr
        events = _shown(root, row["id"], workspace, data_dir)["events"]
        if row["id"] in expected_argv:
            recorded = [exact.as_bytes(arg) for arg in exact.from_record(events[0]["argv"])]
            assert recorded == expected_argv[row["id"]]


def test_fuzz_the_store_records_and_verifies_any_string(data_dir: Path) -> None:
    """The record path alone, many more inputs: every string (keys too) is written,
    chained, verified and read back as the same string."""
    rng = random.Random(SEED)
    store = open_store(data_dir / "audit.db")
    try:
        kept = {}
        for i in range(300):
            text = os.fsdecode(_random_bytes(rng)) + rng.choice(["", "\ud800", "\udc80", "\U0001f600"])
            body = {"version": 1, "session": str(i), "status": "refused", "argv": [text], "cwd": text, "at": "t",
                    "agent": text, "exit_status": 125,
                    "nested": {text: [text, {"b64": "not a marker here: two keys", "x": text}]}}
            # The index as run_audit.py derives it from the record (and verify checks it so); a lone
            # surrogate that no OS string holds (\ud800) reads back as the bytes it was written as.
            shown = exact.from_record(exact.to_record(text))
            store.append(str(i), "refused", body, {"id": str(i), "started_at": "t", "ended_at": "t",
                                                  "status": "refused", "exit_status": 125,
                                                  "command": exact.index_line([shown]), "agent": text})
            kept[str(i)] = text
        assert verify(store).problems == []
        for session, text in kept.items():
            [(_, body)] = store.session_events(session)
            decoded = exact.from_record(body)
            assert exact.as_bytes(decoded["argv"][0]) == exact.as_bytes(text)
            assert exact.as_bytes(decoded["cwd"]) == exact.as_bytes(text)
    finally:
        store.close()
    db = sqlite3.connect(data_dir / "audit.db")
    for (body,) in db.execute("SELECT body FROM events"):
        body.encode("utf-8")  # stored text is always valid UTF-8


@pytest.mark.parametrize(("text", "word"), [
    ("plain", "plain"),
    ("two words", "'two words'"),
    ("caf\\xe9", "'caf\\xe9'"),
    ("caf\udce9", "$'caf\\xe9'"),
    ("it's\udcff", "$'it\\'s\\xff'"),
    ("a\\b\udc80", "$'a\\\\b\\x80'"),
    ("\x1b[2J\r\n", "$'\\x1b[2J\\r\\n'"),
    ("\u202eevil", "$'\\u202eevil'"),
])
def test_a_shell_word_names_the_same_bytes(text: str, word: str) -> None:
    assert exact.shell_word(text) == word
