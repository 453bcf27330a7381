#!/usr/bin/env python3
"""`vectraguard logs verify --head` as the store grows: wall time and peak memory.

For each size (default 100,000 and 400,000 sessions) a store is built here,
each session a `started` and a `finished` event (with output summaries and
their stored output blobs, as a real run leaves them), chained by the
store's own hashing code; then `logs verify --head SEQ:HASH` (the head
printed by `logs head`) runs as a child process, --runs times, and its wall
time and peak RSS (ru_maxrss of the child of a fresh small process) are printed.

Acceptance (issue 14): peak RSS flat within 10 % from 100k to 400k sessions.
The stores are written to a temporary directory (about 0.8 KiB a session on
disk; --keep leaves them there).

    bench/audit_verify.py [--sessions N ...] [--runs N] [--vectraguard CMD] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vectraguard.audit import store as audit_store  # noqa: E402

HEAD, TAIL = b"building...\n", b"done\n"


def _output_summary() -> dict[str, object]:
    return {"bytes": len(HEAD + TAIL), "sha256": hashlib.sha256(HEAD + TAIL).hexdigest(), "truncated": False,
            "head_sha256": hashlib.sha256(HEAD).hexdigest(), "tail_sha256": hashlib.sha256(TAIL).hexdigest()}


def _events(count: int) -> Iterator[tuple[int, str, str, str, str, str]]:
    """Every event of `count` finished sessions, chained exactly as AuditStore chains them."""
    prev, seq = audit_store.GENESIS, 0
    output = {"stdout": _output_summary()}
    for i in range(count):
        session = f"{1_700_000_000_000 + i * 1000:012x}{i:010x}"
        at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_700_000_000 + i))
        bodies = (("started", {"version": 1, "session": session, "status": "started", "at": at, "agent": None,
                               "user": "bench", "argv": ["make", f"test-{i}"], "profile": "untrusted", "owner": None}),
                  ("finished", {"version": 1, "session": session, "status": "ok", "exit_status": 0,
                                "reason": "exited", "at": at, "duration_ms": 1234, "output": output}))
        for kind, fields in bodies:
            seq += 1
            body = audit_store.canonical(fields)
            digest = audit_store.chain_hash(prev, seq, session, kind, body)
            yield seq, session, kind, body, prev, digest
            prev = digest


def build_store(path: Path, count: int) -> None:
    audit_store.open_store(path).close()  # the real schema and indexes
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    with db:
        db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?)", _events(count))
        # The index as the writers derive it from the events (logs verify checks every column).
        db.execute("INSERT INTO sessions SELECT session_id, json_extract(body, '$.at'), json_extract(body, '$.at'), "
                   "NULL, 'bench', 'untrusted', 'make ' || json_extract(body, '$.argv[1]'), 'ok', 0, 1234, NULL "
                   "FROM events WHERE kind = 'started'")
        db.execute("INSERT INTO outputs SELECT id, 'stdout', ?, ? FROM sessions", (HEAD, TAIL))
    db.close()


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one run of `argv`, which must exit 0. Started from a
    fresh small Python: a child forked from this process would count this process's pages
    (the store builder's) in its peak before it execs."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed: {out.stderr}")
    wall, kib = out.stdout.split()
    return float(wall), int(kib) / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vectraguard", default=f"{sys.executable} -m vectraguard")
    parser.add_argument("--keep", action="store_true", help="leave the stores in the temporary directory")
    args = parser.parse_args()
    vg = shlex.split(args.vectraguard)
    base = Path(tempfile.mkdtemp(prefix="vg-bench-verify-"))
    peaks = []
    for count in args.sessions:
        data = base / f"data-{count}"
        start = time.perf_counter()
        build_store(data / "audit.db", count)
        size = (data / "audit.db").stat().st_size / 2**20
        print(f"built a store of {count} sessions ({size:.0f} MiB) in {time.perf_counter() - start:.1f} s")
        env = {"PYTHONPATH": str(REPO), **os.environ, "VECTRAGUARD_DATA_DIR": str(data)}  # this tree unless told
        head = subprocess.run([*vg, "logs", "head"], env=env, capture_output=True, text=True, check=True).stdout.strip()
        results = [measure([*vg, "logs", "verify", "--head", head], env) for _ in range(args.runs)]
        wall, peak = statistics.median(r[0] for r in results), max(r[1] for r in results)
        peaks.append(peak)
        print(f"logs verify --head, {count:>7} sessions: median {wall:6.1f} s, peak RSS {peak:6.1f} MiB")
        if not args.keep:
            for name in os.listdir(data):
                os.unlink(data / name)
            data.rmdir()
    if len(peaks) > 1:
        growth = (peaks[-1] - peaks[0]) / peaks[0] * 100
        print(f"peak RSS from {args.sessions[0]} to {args.sessions[-1]} sessions: {growth:+.1f} % "
              f"({'within' if growth <= 10 else 'OVER'} the 10 % bound)")
    if not args.keep:
        base.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
