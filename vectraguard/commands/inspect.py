"""`vectraguard inspect ID [--json]`: a session's resolved profile and compiled
sandbox spec, as its `started` record keeps them (sessions/snapshot.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vectraguard import errors, ids, output
from vectraguard.audit import exact
from vectraguard.audit.store import open_reader
from vectraguard.output import printable
from vectraguard.sessions import ports

FACTS = ("status", "profile", "profile_digest", "isolation", "engine", "image", "agent", "user", "cwd", "argv",
         "env_names", "ports", "started_at", "owner", "container_id")


def main(args: argparse.Namespace) -> int:
    store = open_reader()
    if store is None:
        raise errors.UsageError(f"vectraguard: no session {args.id!r}: nothing is recorded yet")
    try:
        session_id = ids.one(args.id, store.find(args.id, limit=ids.SHOWN + 1), what="session",
                             hint="`vectraguard ps` lists the running sessions, `vectraguard logs list` all")
        shown = _inspected(session_id, store.session_events(session_id),
                           store.db.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone())
    finally:
        store.close()
    if args.json:
        output.print_json(shown)
    else:
        _print(shown)
    return 0


def _inspected(session_id: str, events: list[tuple[str, dict[str, Any]]], status: tuple[str] | None) -> dict[str, Any]:
    started = next((body for kind, body in events if kind == "started"), None)
    if started is None:
        raise errors.UsageError(f"vectraguard: session {session_id} never started a sandbox (it was "
                                f"{status[0] if status else 'not recorded'}): there is nothing to inspect",
                                hint=f"`vectraguard logs show {session_id}` shows why")
    finished = next((body for kind, body in events if kind == "finished"), {})
    sandbox = started.get("sandbox")
    return {"id": session_id, "status": status[0] if status else "unknown", **{
        key: started.get(key) for key in FACTS if key in started and key not in ("status", "at")},
        "ports": ports.published(started), "started_at": started.get("at"),
        "container_id": (finished.get("container") or {}).get("id"),
        "profile_resolved": (sandbox or {}).get("profile"), "spec": (sandbox or {}).get("spec"),
        **({"sandbox_omitted": sandbox} if sandbox and "omitted_bytes" in sandbox else {}),
        **({"note": "recorded before `inspect` existed: no profile or spec kept"} if sandbox is None else {})}


def _print(shown: dict[str, Any]) -> None:
    for key in ("id", *FACTS):
        if shown.get(key) is not None:
            value = shown[key]
            # A command line as a shell would read it back (as `logs show` prints it), other lists as words.
            text = (", ".join(value) or "none") if key == "ports" else exact.shell_line(value) if key == "argv" \
                else " ".join(value) if isinstance(value, list) else str(value)
            print(f"{key + ':':16}{printable(text)}")
    for key in ("note", "sandbox_omitted"):
        if key in shown:
            print(f"{key + ':':16}{printable(json.dumps(shown[key]))}")
    for title, key in (("resolved profile", "profile_resolved"), ("container spec (what the engine was sent)", "spec")):
        if shown.get(key) is not None:
            print(f"\n{title}:")
            print(output.json_text(shown[key]))
