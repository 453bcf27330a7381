"""`vectraguard logs prune --before TIME [--dry-run] [--yes]`: drop the oldest
sessions with their recordings and workspace layers.

What would go is shown first (sessions, the first and last start, recordings,
layers); on a terminal the user confirms it, without one `--yes` must say
so; nothing beyond what was shown goes, even if sessions end meanwhile
(the store prunes at most through the event the plan showed). A time in the
future is refused: it can only be a typo, and it would drop everything.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from vectraguard import errors, times
from vectraguard.audit.store import AuditStore, PrunePlan


def prune(store: AuditStore, args: argparse.Namespace) -> int:
    before = times.parse_time(args.before, "--before")
    if before > datetime.now(UTC):
        raise errors.UsageError(f"vectraguard: --before {args.before!r} is {times.store_form(before)}, in the "
                                "future; a prune only drops what is older than a past time")
    cut = times.store_form(before)
    plan = store.prune_plan(cut)
    if not plan.sessions:  # (a plan of only earlier `pruned` events is not worth a new one)
        print(f"nothing to prune before {cut}")
        return 0
    recordings, layers = _recordings(plan.sessions), _layers(plan.sessions)
    print(_describe(plan, cut, recordings, layers))
    if args.dry_run:
        print("dry run: nothing removed")
        return 0
    if not args.yes:
        _confirm()
    through, gone = store.prune(cut, times.store_form(datetime.now(UTC)), limit=plan.through)
    if not gone:
        print("nothing to prune")
        return 0
    # Their recordings go too: what was retained no longer (terminal output can hold secrets).
    removed = 0
    for recording in _recordings(gone):
        recording.unlink(missing_ok=True)
        removed += 1
    # And their workspace layers, applied or not: the review window closes with the record.
    from vectraguard.workspace.store import remove as remove_layers

    layer_count = remove_layers(gone)
    seq, digest = store.head()
    # Without audit.key_file, no head from before the prune can be proven any more (audit/verify.py).
    print(f"chain head after the prune: {seq}:{digest} — keep it elsewhere and verify against it "
          "(`logs verify --head`); heads from before the prune can no longer be proven without a key")
    print(f"pruned {len(gone)} sessions (events up to {through}), {removed} recordings and {layer_count} workspace "
          "layers; the chain stays verifiable from there")
    return 0


def _describe(plan: PrunePlan, cut: str, recordings: list[Path], layers: list[Path]) -> str:
    return (f"would remove {len(plan.sessions)} sessions started before {cut} (oldest {plan.oldest}, newest "
            f"{plan.newest}; events up to {plan.through}), {len(recordings)} recordings and {len(layers)} "
            "workspace layers")


def _confirm() -> None:
    """Ask on the terminal; refuse (125) when there is none: a script must say --yes."""
    if not os.isatty(0):
        raise errors.UsageError("vectraguard: logs prune: not confirmed (stdin is not a terminal)",
                                hint="add --yes to prune without asking, or --dry-run to only look")
    print("remove them? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise errors.UsageError("vectraguard: logs prune: not confirmed; nothing removed")


def _safe_ids(session_ids: list[str]) -> list[str]:
    """Ids that name a file, not a path: an edited store must not steer deletions elsewhere."""
    return [s for s in session_ids if s and "/" not in s and not s.startswith(".") and "\0" not in s]


def _recordings(session_ids: list[str]) -> list[Path]:
    from vectraguard.audit.recording import recordings_dir

    base = recordings_dir()
    return [p for p in (base / f"{s}.cast" for s in _safe_ids(session_ids)) if p.exists()]


def _layers(session_ids: list[str]) -> list[Path]:
    from vectraguard.workspace.store import root

    base = root()
    return [p for p in (base / s for s in _safe_ids(session_ids)) if p.is_dir()]
