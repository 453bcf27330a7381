"""Every per-run record is bounded (issue 14 item 5): a sandbox that floods
the egress proxy with denied connections gets a `finished` record of a few
kilobytes that still counts every attempt, per destination.

The flood comes from inside a real sandbox (vgprobe connect-flood, a tight C
loop in parallel processes) through the proxy Vectra Guard plants there; the
record is read from the run's own audit store (a private data directory).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.support.vg import Caller
from vectraguard.audit import record
from vectraguard.audit.capture import OutputCapture
from vectraguard.audit.store import canonical

FLOOD = 100_000
HOSTS = 500  # more destinations than a record names: the rest share the "others" bucket
RECORD_LIMIT = 64 * 1024  # bytes of the finished record's body, as stored (the acceptance of issue 14)


def finished_body(data_dir: Path, kind: str = "finished") -> str:
    with sqlite3.connect(data_dir / "audit.db") as db:
        [(body,)] = db.execute("SELECT body FROM events WHERE kind = ?", (kind,)).fetchall()
    return body  # type: ignore[no-any-return]


def test_a_flood_of_denied_connections_gives_a_bounded_record_that_counts_every_attempt(
        root: Caller, workspace: Path, tmp_path: Path) -> None:
    data = {"VECTRAGUARD_DATA_DIR": str(tmp_path / "data")}
    result = root.run(["run", "-p", "test-untrusted", "--allow", "pypi.org", "--timeout", "15m", "--",
                       "vgprobe", "connect-flood", "3128", str(FLOOD), "16", str(HOSTS)],
                      cwd=workspace, timeout=1200, extra_env=data)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"attempts": FLOOD, "forbidden": FLOOD, "other": 0, "failed": 0}

    body = finished_body(tmp_path / "data")
    assert len(body.encode()) < RECORD_LIMIT
    record = json.loads(body)
    assert record["network_attempts"] == FLOOD
    shown, rest = record["network"], record["network_rest"]
    others = record.get("network_rest_others", {"attempts": 0, "destinations": 0})
    assert all(entry["decision"] == "denied" for entry in [*shown, *rest])
    assert len(shown) + sum(bucket["attempts"] for bucket in rest) + others["attempts"] == FLOOD
    # Per destination: a destination named in the rest has all its later attempts there (FLOOD // HOSTS
    # in all with those shown in full); the destinations beyond the cap are counted in "others".
    for bucket in rest:
        in_full = sum(1 for e in shown if (e["host"], e["port"]) == (bucket["host"], bucket["port"]))
        assert in_full + bucket["attempts"] == FLOOD // HOSTS and bucket["first_at"] <= bucket["last_at"]
    assert len(rest) + others["destinations"] == HOSTS



def test_requests_the_proxy_cannot_read_are_refused_and_counted(root: Caller, workspace: Path,
                                                                tmp_path: Path) -> None:
    """A port that is no number, one out of range, garbage: each a 400 and an attempt in the
    record (before, a bad CONNECT port killed the connection's thread and left no trace)."""
    data = {"VECTRAGUARD_DATA_DIR": str(tmp_path / "data")}
    requests = ["CONNECT pypi.org:99999 HTTP/1.1", "CONNECT pypi.org:https HTTP/1.1", "GET http://pypi.org:0x50/ HTTP/1.1",
                "GARBAGE"]
    script = "; ".join(f"printf '{line}\\r\\n\\r\\n' | nc 127.0.0.1 3128" for line in requests)
    result = root.run(["run", "-p", "test-untrusted", "--allow", "pypi.org", "--", "sh", "-c", script],
                      cwd=workspace, timeout=300, extra_env=data)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.count(b"HTTP/1.1 400") == len(requests), result.stdout
    record = json.loads(finished_body(tmp_path / "data"))
    malformed = [e for e in record["network"] if e["host"] == "(malformed request)"]
    assert record["network_attempts"] == len(requests) and len(malformed) == len(requests)
    assert all(e["decision"] == "denied" for e in malformed)


def test_a_command_line_with_hundreds_of_findings_gives_bounded_refused_and_checked_records(
        root: Caller, workspace: Path, tmp_path: Path) -> None:
    data = {"VECTRAGUARD_DATA_DIR": str(tmp_path / "data")}
    line = "; ".join(f"rm -rf /srv/d{i}" for i in range(400))
    refused = root.run(["run", "-p", "test-untrusted", "--", "sh", "-c", line], cwd=workspace, extra_env=data)
    checked = root.run(["check", "-p", "test-untrusted", "--", line], cwd=workspace, extra_env=data)
    assert (refused.returncode, checked.returncode) == (125, 1), refused.stderr.decode()
    body = json.loads(finished_body(tmp_path / "data", "refused"))
    [approval] = body["approvals"]
    assert (len(approval["findings"]), approval["findings_omitted"]) == (10, 390)
    assert len(body["reason"].encode()) <= 2048 and body["reason"].endswith(" chars]")
    body = json.loads(finished_body(tmp_path / "data", "checked"))
    assert (len(body["findings"]), body["findings_omitted"]) == (10, 390)
    shown = root.run(["logs", "show", body["session"]], cwd=workspace, extra_env=data).stdout.decode()
    assert "... and 390 more, counted, not kept" in shown

# -- the worst a sandbox and a command line can do, record by record ------------------------------------

LONG = '\x1b"\\' * 30_000  # each character stored as an escape: the most bytes per character


def attempt(i: int, *, decision: str = "denied", at: float = 1_800_000_000.0) -> dict[str, Any]:
    return {"at": at + i, "via": "proxy", "host": f"{i}{LONG}", "port": 10 ** 4000 + i, "address": None,
            "decision": decision, "reason": LONG, "bytes_out": 0, "bytes_in": 0}


def flooded_log(attempts: int) -> Any:
    from vectraguard.network.attempts import (
        ConnectionLog,  # imported here: the record tests run on older trees
    )

    log = ConnectionLog()
    for i in range(attempts):
        log.add(attempt(i))
    return log


def worst_approval(findings: int) -> dict[str, Any]:
    finding = {"rule": LONG, "class": LONG, "matched": LONG, "reason": LONG, "decision": LONG, "by": LONG}
    return {"decision": "approved", "by": LONG, "user": LONG, "at": LONG, "verdict": LONG, "remembered": LONG,
            "approved_by": LONG, "approved_at": LONG, "findings": [finding] * findings,
            "runs": [{"path": LONG, "sha256": LONG}] * 1000}


def test_the_worst_finished_record_stays_under_64_kib() -> None:
    capture = OutputCapture()
    capture.feed(1, b"x" * 1_000_000)
    body = record.finished("s", status="ok", exit_status=0, reason=LONG, image_id="i" * 64, started_at="t", at="t",
                           duration_ms=1, capture=capture, network=flooded_log(5_000).snapshot(),
                           approvals=[worst_approval(1000)] * 50, recording=None,
                           workspace={"mode": "rw", "protected_changed": [LONG] * 10_000})
    assert len(canonical(body).encode()) < RECORD_LIMIT
    assert body["network_attempts"] == 5_000 and body["network_rest_others"]["attempts"] > 0
    assert body["approvals"][0]["findings_omitted"] == 990 and body["approvals"][0]["runs_omitted"] == 990
    assert len(body["approvals"]) == 1 and body["approvals"][0]["entries_omitted"] == 49
    assert body["workspace"]["protected_changed_omitted"] == 10_000 - len(body["workspace"]["protected_changed"])


def test_the_worst_refused_and_checked_records_stay_under_64_kib() -> None:
    refused = record.refused("s", agent=None, profile=None, argv=["sh"], cwd="/", reason=LONG, at="t",
                             approvals=[worst_approval(1000)])
    checked = record.checked("s", agent=None, hook_session=None, profile="p", profile_digest="d", command="sh",
                             cwd="/", decision="ask", exit_status=1, findings=[worst_approval(1)["findings"][0]] * 1000,
                             remembered=None, reason=LONG, at="t")
    assert len(canonical(refused).encode()) < RECORD_LIMIT and len(canonical(checked).encode()) < RECORD_LIMIT
    assert checked["findings_omitted"] == 1000 - len(checked["findings"])
    cut = checked["findings"][0]["matched"]
    assert LONG.startswith(cut.partition("…[+")[0]) and cut.endswith(" chars]")  # the beginning, and how much went


def test_connection_counts_are_exact_per_destination_and_bytes_of_late_connections_are_counted() -> None:
    from vectraguard.network.attempts import ConnectionLog, describe

    log = ConnectionLog()
    for i in range(1000):  # the first ones in full, then counted per destination: a few destinations
        log.add({**attempt(i % 3), "host": f"h{i % 3}", "port": 443, "reason": "no network.allow entry matches"})
    done, still_open = (log.add({**attempt(0, decision="allowed"), "host": "ok", "port": 443, "reason": "rule ok"})
                        for _ in range(2))
    done["bytes_out"], done["bytes_in"] = 10, 20
    log.closed(done)
    still_open["bytes_out"], still_open["bytes_in"] = 1, 2  # a relay that had not ended when the session did
    section = log.snapshot()
    assert section["network_attempts"] == 1002 and "network_rest_others" not in section
    rest = {(b["host"], b["decision"]): b for b in section["network_rest"]}
    assert sum(b["attempts"] for b in rest.values()) + len(section["network"]) == 1002
    assert (rest["ok", "allowed"]["attempts"], rest["ok", "allowed"]["bytes_out"], rest["ok", "allowed"]["bytes_in"]) \
        == (2, 11, 22)
    assert any("1002 connection attempt(s), the first 20 one by one" in line for line in describe(section))


def test_a_port_no_tcp_port_can_be_is_recorded_cut() -> None:
    [entry] = flooded_log(1).snapshot()["network"]
    assert isinstance(entry["port"], str) and len(entry["port"]) < 40 and entry["port"].startswith("1000")
