"""`vectraguard stop ID`: end a running session as Ctrl-C would (sessions/stop.py)."""

from __future__ import annotations

import argparse
from typing import Any

from vectraguard import errors
from vectraguard.audit.store import open_store
from vectraguard.sessions import stop
from vectraguard.sessions.running import one_running

# The run's own stop takes the profile's kill_grace (then KILL and a drain,
# runtime/session.py FINAL_DRAIN_S) and its removal; waited for at most this
# long beyond the grace recorded for the session.
MARGIN_S = 30.0
DEFAULT_GRACE_S = 10.0


def main(args: argparse.Namespace) -> int:
    store = open_store()
    try:
        session = one_running(store, args.id)
        stop.request(store, session)
        status = stop.wait_ended(store, session, _grace(session.started) + MARGIN_S)
    finally:
        store.close()
    if status is None:
        raise errors.RuntimeUnavailable(f"vectraguard: session {session.id} was asked to stop but has not ended yet",
                                        hint=f"`vectraguard ps` shows whether it still runs; `vectraguard logs show "
                                        f"{session.id}` how it ended")
    print(f"stopped session {session.id} ({status})")
    return 0


def _grace(started: dict[str, Any]) -> float:
    """The session's kill_grace in seconds, from its recorded profile."""
    from vectraguard import units

    sandbox = started.get("sandbox")
    profile = sandbox.get("profile") if isinstance(sandbox, dict) else None
    limits = profile.get("limits") if isinstance(profile, dict) else None
    try:
        return float(units.parse_duration(limits["kill_grace"])) if isinstance(limits, dict) else DEFAULT_GRACE_S
    except (KeyError, ValueError, TypeError):
        return DEFAULT_GRACE_S
