"""Checking the audit store: the hash chain, a head kept elsewhere, the prune checkpoint.

Reports the first broken link — an edited, deleted, inserted or reordered
event. Removing events from the end, or re-hashing the whole chain after an
edit, leaves a valid chain: only a head kept elsewhere (`logs head`,
anchor.py) shows it, and `verify(store, anchor)` proves the store still
holds that event with that hash and that every later event chains from it.

A prune checkpoint (`meta`: pruned_through, pruned_head — where the kept
chain starts) is accepted only when the chain itself holds the `pruned`
event that `AuditStore.prune` writes with the same sequence number and
hash: writing the two `meta` rows after deleting the oldest events is
otherwise a perfect way to hide them.

Without a key, a head kept elsewhere that lies at or before the prune
checkpoint cannot be proven (the checkpoint and its `pruned` event are as
easy to write as the deletion they stand for): it fails; keyed mode's MACs
prove the checkpoint. The sessions, their index, outputs and recordings are
checked against the events by index_check.py.

Memory stays flat as the store grows: the chain is read as a stream in
sequence order, and the rest by the ordered merge in index_check.py, never
by holding every session in a dict.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from vectraguard.audit.anchor import Anchor
from vectraguard.audit.index_check import check_index
from vectraguard.audit.mac_check import MacCheck, count_macs
from vectraguard.audit.store import GENESIS, AuditStore, chain_hash
from vectraguard.terminal.escape import printable

MAX_PROBLEMS = 50  # then a count: a store emptied by an attacker must not print (or hold) a line per session


@dataclass
class Verdict:
    """`events`: the last sequence number on the chain (0: none); `head` its
    hash; `problems`: what is wrong, first broken point first; `notes`: what
    holds but could not be checked in full (an anchor older than a prune)."""

    events: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify(store: AuditStore, anchor: Anchor | None = None, key: bytes | None = None) -> Verdict:
    """`key`: keyed mode's (settings.read_key); None checks no MACs (and notes any there are)."""
    verdict = Verdict()
    try:
        integrity = store.db.execute("PRAGMA integrity_check(1)").fetchone()[0]
        if integrity != "ok":
            verdict.problems.append(f"the database file is damaged: {integrity}")
            return verdict
        # One read transaction: the chain, the index and the MACs are seen as of one moment,
        # while runs go on writing (WAL readers do not block them).
        store.db.execute("BEGIN")
        try:
            _check(store, anchor, key, verdict)
        finally:
            store.db.execute("ROLLBACK")
    except sqlite3.Error as exc:  # e.g. a body made invalid JSON and re-hashed, or a dropped table
        verdict.problems.append(f"the store cannot be read as an audit store: {exc}")
    return verdict


def _check(store: AuditStore, anchor: Anchor | None, key: bytes | None, verdict: Verdict) -> None:
    macs = MacCheck(store, key) if key is not None else None
    if _check_chain(store, anchor, macs, verdict):
        _collect(verdict, check_index(store))
    if key is None and (count := count_macs(store)):
        verdict.notes.append(f"{count} events carry a MAC (keyed mode); without audit.key_file they were not checked")


def verify_empty(anchor: Anchor | None) -> Verdict:
    """The verdict on a store that does not exist (yet): an empty chain, which
    extends only the empty head 0:GENESIS."""
    verdict = Verdict()
    if anchor is not None and (anchor.seq, anchor.hash) != (0, GENESIS):
        verdict.problems.append(f"event {anchor.seq} of the head kept elsewhere ({anchor}) is missing: there is no "
                                "audit store here at all — it was removed, or VECTRAGUARD_DATA_DIR points elsewhere")
    return verdict


def _checkpoint(store: AuditStore) -> tuple[int, str] | str:
    """(pruned_through, pruned_head) from `meta`, or what is wrong with them."""
    rows = dict(store.db.execute("SELECT key, value FROM meta WHERE key IN ('pruned_through', 'pruned_head')"))
    through, head = rows.get("pruned_through", "0"), rows.get("pruned_head", GENESIS)
    if not str(through).isdigit() or ("pruned_through" in rows) != ("pruned_head" in rows):
        return f"the prune checkpoint in meta is malformed ({rows!r})"
    return int(through), str(head)


def _check_chain(store: AuditStore, anchor: Anchor | None, macs: MacCheck | None, verdict: Verdict) -> bool:
    """Walk the events in order; False (with the problem added) at the first broken point."""
    checkpoint = _checkpoint(store)
    if isinstance(checkpoint, str):
        verdict.problems.append(checkpoint)
        return False
    through, prev = checkpoint
    expected_seq, pruned_event = through + 1, through == 0  # no prune: no pruned event needed
    verdict.events, verdict.head = through, prev
    anchor_met = anchor is None or _anchor_before_checkpoint(anchor, through, prev, macs is not None, verdict)
    if verdict.problems:
        return False
    for seq, session_id, kind, body, prev_hash, stored_hash in store.events():
        where = f"event {seq} ({printable(str(kind))} of session {printable(str(session_id))})"  # stored data
        problem = _link_problem(where, seq, expected_seq, prev, session_id, kind, body, prev_hash, stored_hash)
        if problem is None and anchor is not None and seq == anchor.seq and stored_hash != anchor.hash:
            problem = (f"{where}: its hash is {stored_hash}, the head kept elsewhere says {anchor} — the chain was "
                       f"rewritten at or before event {seq} (re-hashed after an edit, or replaced)")
        if problem is None and macs is not None:
            problem = macs.event(seq, stored_hash, where)
        if problem is not None:
            verdict.problems.append(problem)
            return False
        anchor_met = anchor_met or (anchor is not None and seq == anchor.seq)
        if kind == "pruned" and not pruned_event:
            pruned_event = _records_checkpoint(body, through, checkpoint[1])
        verdict.events, verdict.head = seq, stored_hash
        expected_seq, prev = seq + 1, stored_hash
    if macs is not None and (problem := macs.finish(verdict.events - through)) is not None:
        verdict.problems.append(problem)
        return False
    if not pruned_event:
        verdict.problems.append(
            f"events 1 to {through}: gone, and no `pruned` event on the chain records pruning them (meta says "
            f"pruned_through={through}) — they were deleted and the prune checkpoint forged")
        return False
    if not anchor_met and anchor is not None:
        verdict.problems.append(
            f"event {anchor.seq} of the head kept elsewhere ({anchor}) is missing: the chain ends at event "
            f"{verdict.events} — events after {verdict.events} were deleted (the end cut off)")
        return False
    return True


def _anchor_before_checkpoint(anchor: Anchor, through: int, head: str, keyed: bool, verdict: Verdict) -> bool:
    """Whether the anchor is accounted for by the prune checkpoint (whose own
    `pruned` event is checked by the walk). Without a key, nothing proves a
    head at or before the checkpoint: the checkpoint and its `pruned` event
    are as easy to write as to delete the events they stand for — so such a
    head fails (fail closed); after a prune, one keeps the head it printed.
    In keyed mode the `pruned` event's MAC proves the checkpoint's hash: the
    checkpoint event itself must carry the anchor's hash; an older one can no
    longer be checked, and says so."""
    if anchor.seq > through:
        return False
    if not keyed and through > 0:
        verdict.problems.append(
            f"the head kept elsewhere ({anchor}) lies in the pruned part of the chain (events up to {through} are "
            "gone): without a key (audit.key_file) the store cannot prove it extends that head — after a prune, "
            "keep the new head `logs prune` prints (or `logs head`), and verify against that")
    elif anchor.seq == through and head != anchor.hash:
        verdict.problems.append(f"event {through} (the prune checkpoint): its hash is {head}, the head kept "
                                f"elsewhere says {anchor} — the chain was rewritten at or before event {through}")
    elif anchor.seq < through:
        verdict.notes.append(f"event {anchor.seq} of the head kept elsewhere was pruned (events up to {through} "
                             f"were); its hash can no longer be checked, only the chain from event {through} on")
    return True


def _link_problem(where: str, seq: int, expected_seq: int, prev: str, session_id: str, kind: str, body: str,
                  prev_hash: str, stored_hash: str) -> str | None:
    if seq != expected_seq:
        return f"{where}: expected event {expected_seq} here — events were deleted or reordered"
    if prev_hash != prev:
        return f"{where}: does not follow event {seq - 1} — the chain is broken here"
    if chain_hash(prev_hash, seq, session_id, kind, body) != stored_hash:
        return f"{where}: its content does not match its hash — it was edited"
    return None


def _records_checkpoint(body: str, through: int, head: str) -> bool:
    """Whether a `pruned` event's body names this checkpoint (AuditStore.prune)."""
    try:
        fields = json.loads(body)
    except ValueError:
        return False
    return isinstance(fields, dict) and fields.get("through_seq") == through and fields.get("through_hash") == head


def _collect(verdict: Verdict, problems: Iterable[str]) -> None:
    """Keep the first MAX_PROBLEMS, then count the rest."""
    more = 0
    for problem in problems:
        if len(verdict.problems) < MAX_PROBLEMS:
            verdict.problems.append(problem)
        else:
            more += 1
    if more:
        verdict.problems.append(f"... and {more} more problems of the sessions, their index, outputs and recordings")
