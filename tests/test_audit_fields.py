"""Scriptable audit output through the real CLI: one set of field names in `logs list --json`,
`logs show --json` and `logs export`; the chain head line; ids by their last characters;
`logs verify --json` and `profile validate --json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.vg import Caller, outcome
from tests.test_audit_times import seed

SESSION_FIELDS = {"id", "started_at", "ended_at", "agent", "user", "profile", "command", "status", "exit_status",
                  "duration_ms"}
CHAIN_FIELDS = {"seq", "session", "kind", "prev_hash", "hash"}
OLD_NAMES = {"exit", "duration", "start", "record", "chain_head"}


def vg(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VECTRAGUARD_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "vectraguard", *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)


def exported(data_dir: Path) -> list[dict[str, Any]]:
    result = vg(data_dir, "logs", "export")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_list_show_and_export_use_the_same_field_names(root: Caller, workspace: Path, data_dir: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    root.run(["run", "-p", "test-tight", "--", "sh", "-c", "echo out; exit 3"], cwd=workspace, extra_env=env)
    root.run(["run", "-p", "nope", "--", "true"], cwd=workspace, extra_env=env)
    rows = json.loads(vg(data_dir, "logs", "list", "--json").stdout)
    lines = exported(data_dir)
    by_seq = {line["seq"]: line for line in lines[:-1]}
    for row in rows:
        assert set(row) == SESSION_FIELDS
        shown = json.loads(vg(data_dir, "logs", "show", row["id"], "--json").stdout)
        last = outcome(shown["events"])
        # The session's row says what its last event says, under the same names.
        assert (row["status"], row["exit_status"]) == (last["status"], last["exit_status"])
        assert row["started_at"] == shown["events"][0]["at"]
        for event in shown["events"]:
            assert CHAIN_FIELDS <= set(event) and not OLD_NAMES & set(event)
            line = dict(by_seq[event["seq"]])
            line.pop("output_raw", None)
            assert line == event  # an exported event is the event `logs show` gives
    finished = next(line for line in lines if line["kind"] == "finished")
    [ran] = [row for row in rows if row["status"] == "failed"]
    assert (ran["exit_status"], ran["duration_ms"]) == (finished["exit_status"], finished["duration_ms"]) == (
        3, finished["duration_ms"])
    assert isinstance(finished["duration_ms"], int) and finished["output"]["stdout"]["bytes"] == 4


def test_the_chain_head_closes_an_export_in_the_same_shape(data_dir: Path) -> None:
    now = datetime.now(UTC)
    seed(data_dir, {"a": now - timedelta(days=3), "b": now - timedelta(days=2), "c": now - timedelta(hours=1)})
    assert vg(data_dir, "logs", "prune", "--before", "1d", "--yes").returncode == 0
    lines = exported(data_dir)
    *events, head = lines
    assert [e["kind"] for e in events] == ["refused", "pruned"] and all(e["kind"] != "chain-head" for e in events)
    assert set(head) >= CHAIN_FIELDS and head["kind"] == "chain-head"
    assert (head["seq"], head["hash"], head["events"], head["pruned_through"]) == (
        events[-1]["seq"], events[-1]["hash"], 2, 2)
    verdict = json.loads(vg(data_dir, "logs", "verify", "--json").stdout)
    assert head["head"] == verdict["head"] == f"{head['seq']}:{head['hash']}"


def test_an_exported_event_carries_what_its_hash_covers(data_dir: Path) -> None:
    """The rule README and audit/views.py give: the record is the event without its chain
    fields (and without session on a pruned event); the hash covers prev_hash, seq,
    session, kind and the record as canonical JSON."""
    now = datetime.now(UTC)
    seed(data_dir, {"a": now - timedelta(days=3), "b\u202e\x1b[2J": now - timedelta(hours=1)})
    assert vg(data_dir, "logs", "prune", "--before", "1d", "--yes").returncode == 0
    events = exported(data_dir)[:-1]
    assert [e["kind"] for e in events] == ["refused", "pruned"]
    prev = events[0]["prev_hash"]
    for event in events:
        record = {k: v for k, v in event.items() if k not in ("seq", "kind", "prev_hash", "hash", "output_raw")}
        if event["kind"] == "pruned":
            del record["session"]
        body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        text = f"{event['prev_hash']}\n{event['seq']}\n{event['session']}\n{event['kind']}\n{body}"
        assert hashlib.sha256(text.encode()).hexdigest() == event["hash"]
        assert event["prev_hash"] == prev
        prev = event["hash"]


def test_an_id_is_found_by_its_last_characters(data_dir: Path) -> None:
    now = datetime.now(UTC)
    ids = seed(data_dir, {f"s{i}": now - timedelta(seconds=i) for i in range(12)})
    wanted = ids["s5"]
    for given in (wanted[-6:], wanted[-8:], wanted, wanted[:-1]):
        shown = vg(data_dir, "logs", "show", given, "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["id"] == wanted
    # Time-ordered ids share their first characters: a short prefix names many, and says which.
    result = vg(data_dir, "logs", "show", wanted[:6])
    assert result.returncode == 125
    first, *listed = result.stderr.splitlines()
    assert first == (f"vectraguard: {wanted[:6]!r} names more than 10 sessions; give more of the first or the "
                     "last characters of the id")
    assert [line.strip() for line in listed] == sorted(ids.values())[:10]
    missing = vg(data_dir, "logs", "replay", "zzzzzz")
    assert (missing.returncode, missing.stderr) == (125, "vectraguard: no session 'zzzzzz'; `vectraguard logs "
                                                         "list` shows the sessions recorded\n")


def test_a_workspace_layer_is_found_by_its_last_characters(data_dir: Path) -> None:
    layers = data_dir / "workspaces"
    for name in ("01a2000000000aaaa11111", "01a2000000001bbbb11111"):
        (layers / name).mkdir(parents=True)
    for command in (["discard"], ["apply"], ["diff"], ["changes"]):
        result = vg(data_dir, *command, "11111")
        assert result.returncode == 125
        assert result.stderr.splitlines() == [
            "vectraguard: '11111' names 2 workspace layers; give more of the first or the last characters of the id",
            "  01a2000000000aaaa11111", "  01a2000000001bbbb11111"]
    # A unique suffix reaches the layer (whose record, here, is missing).
    result = vg(data_dir, "discard", "bbbb11111")
    assert result.returncode == 125 and "01a2000000001bbbb11111" in result.stderr, result.stderr


def test_verify_json_gives_the_verdict(data_dir: Path) -> None:
    now = datetime.now(UTC)
    first = seed(data_dir, {"a": now - timedelta(hours=2), "b": now - timedelta(hours=1)})["a"]
    good = vg(data_dir, "logs", "verify", "--json")
    verdict = json.loads(good.stdout)
    assert good.returncode == 0 and verdict["ok"] is True and verdict["problems"] == []
    assert verdict["seq"] == 2 and verdict["head"] == f"2:{verdict['hash']}"
    db = sqlite3.connect(data_dir / "audit.db")
    with db:
        db.execute("UPDATE events SET body = replace(body, 'seeded', 'edited') WHERE seq = 1")
    db.close()
    bad = vg(data_dir, "logs", "verify", "--json")
    verdict = json.loads(bad.stdout)
    assert bad.returncode == 1 and verdict["ok"] is False
    assert verdict["problems"] == [f"event 1 (refused of session {first}): its content does not match its hash — "
                                   "it was edited"]


def test_profile_validate_json(data_dir: Path) -> None:
    good, bad = data_dir / "good.yaml", data_dir / "bad.yaml"
    good.write_text("extends: untrusted\n")
    bad.write_text("extends: untrusted\nnetwork:\n  mode: sometimes\n")
    result = vg(data_dir, "profile", "validate", "--json", str(good), str(bad))
    assert result.returncode == 1 and result.stderr == ""
    first, second = json.loads(result.stdout)
    assert first == {"file": str(good), "kind": "profile", "ok": True}
    assert (second["file"], second["kind"], second["ok"]) == (str(bad), "profile", False)
    assert second["message"] and any("network.mode" in d for d in second["details"]), second
    assert json.loads(vg(data_dir, "profile", "validate", "--json", str(good)).stdout) == [first]
