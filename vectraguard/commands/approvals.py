"""`vectraguard approvals list|grant|revoke`: the remembered approvals."""

from __future__ import annotations

import argparse
import shlex
import time
from datetime import UTC, datetime

from vectraguard import errors, output
from vectraguard.approvals import store
from vectraguard.approvals.bound_files import BoundFile
from vectraguard.output import printable


def main(args: argparse.Namespace) -> int:
    if args.approvals_command == "list":
        return _list(args)
    if args.approvals_command == "grant":
        return _grant(args)
    return _revoke(args)


def _grant(args: argparse.Namespace) -> int:
    from vectraguard.approvals import gate
    from vectraguard.risk.judged import judge

    judged = judge(args, "approvals grant")
    argv = judged.argvs()[0]
    run = gate.Run(argv, judged.cwd, judged.profile, judged.digest, judged.writable(),
                   gate.network_summary(judged.profile))
    existing = judged.remembered() if judged.decision.verdict == "ask" else None
    if existing is not None:
        print(f"already approved: remembered approval {existing.id}, until {_expires(existing.expires_at)}")
        return 0
    kept = gate.grant(judged.decision, run, policy=judged.policy)
    if kept is None:
        print(f"nothing to approve: profile {judged.profile.name} allows `{printable(judged.text())}`")
        return 0
    print(f"approved {kept.id}: `{printable(shlex.join(kept.argv))}` in {printable(kept.cwd)}, profile "
          f"{kept.profile}, until {_expires(kept.expires_at)}")
    for file in kept.files:
        print(f"  bound to {printable(file.path)} (sha256 {file.sha256}): a change to it asks again")
    return 0


def _list(args: argparse.Namespace) -> int:
    now = time.time()
    entries = [e for e in store.load() if args.all or not e.expired(now)]
    if args.json:
        output.print_json([{**_row(e), "argv": list(e.argv), "expired": e.expired(now)} for e in entries])
        return 0
    if not entries:
        print("no remembered approvals")
        return 0
    rows = [{"id": e.id, "expires": _expires(e.expires_at) + (" (expired)" if e.expired(now) else ""),
             "profile": e.profile, "directory": e.cwd, "command": shlex.join(e.argv)[:80],
             "rules": ", ".join(e.rules), "runs": "; ".join(_file(f) for f in e.files) or "-"} for e in entries]
    output.print_table(rows, ["id", "expires", "profile", "directory", "command", "rules", "runs"])
    return 0


def _file(file: BoundFile) -> str:
    """A bound file in the table (which escapes what it prints): path, target, the start of its digest."""
    leads = f" -> {file.target}" if file.target != file.path else ""
    return f"{file.path}{leads} sha256:{file.sha256[:12]}"


def _row(entry: store.Remembered) -> dict[str, object]:
    return {"id": entry.id, "command": shlex.join(entry.argv), "cwd": entry.cwd, "profile": entry.profile,
            "profile_digest": entry.profile_digest, "rules": list(entry.rules), "user": entry.user,
            "created_at": entry.created_at, "expires_at": _expires(entry.expires_at),
            "files": [{"path": f.path, "target": f.target, "sha256": f.sha256} for f in entry.files]}


def _expires(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _revoke(args: argparse.Namespace) -> int:
    if not args.ids and not args.all:
        raise errors.UsageError("vectraguard approvals revoke: give approval ids, or --all",
                                hint="`vectraguard approvals list` shows the ids")
    gone = store.revoke(args.ids, everything=args.all)
    for entry in gone:
        print(f"revoked {entry.id}: {printable(shlex.join(entry.argv))} in {printable(entry.cwd)}")
    if not gone:
        print("no remembered approvals")
    return 0
