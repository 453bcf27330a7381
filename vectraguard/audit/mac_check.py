"""Keyed mode's part of `logs verify`: every event's MAC, and the keyed head in meta (keyed.py).

Fed the events in order by the chain walk, it merges them with
`event_macs` (ordered by seq), so memory stays flat. Events without a MAC
are accepted only before the first one with a MAC (written before the key
was configured); after it, a missing MAC is a rewrite. A store with events
and no MAC at all fails too: removing every MAC must not turn keyed mode off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vectraguard.audit import keyed
from vectraguard.audit.store import AuditStore

NO_KEY = "or it was written under another key than audit.key_file's"


def has_macs_table(store: AuditStore) -> bool:
    """Stores made before keyed mode have no `event_macs` (and a reader must not create it)."""
    row = store.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_macs'").fetchone()
    return row is not None


def count_macs(store: AuditStore) -> int:
    return int(store.db.execute("SELECT count(*) FROM event_macs").fetchone()[0]) if has_macs_table(store) else 0


class MacCheck:
    """`event()` for each event in sequence order, then `finish()`; each returns a problem or None."""

    def __init__(self, store: AuditStore, key: bytes) -> None:
        self.store, self.key = store, key
        self.macs: Iterator[Any] = iter(store.db.execute("SELECT seq, mac FROM event_macs ORDER BY seq")
                                        if has_macs_table(store) else ())
        self.pending = next(self.macs, None)
        self.first: int | None = None
        self.last: tuple[int, str] | None = None

    def event(self, seq: int, digest: str, where: str) -> str | None:
        while self.pending is not None and self.pending[0] < seq:  # MACs of pruned events
            self.pending = next(self.macs, None)
        if self.pending is None or self.pending[0] != seq:
            if self.first is not None:
                return (f"{where}: carries no MAC, though event {self.first} before it does — written or "
                        "re-hashed without the key")
            return None
        mac, self.pending = str(self.pending[1]), next(self.macs, None)
        if not keyed.same(mac, keyed.event_mac(self.key, seq, digest)):
            return f"{where}: its MAC does not match — it was rewritten without the key ({NO_KEY})"
        self.first = seq if self.first is None else self.first
        self.last = (seq, digest)
        return None

    def finish(self, events: int) -> str | None:
        if self.last is None:
            if events == 0:
                return None
            return ("keyed mode (audit.key_file) is on, but no event carries a MAC — the MACs were removed (or "
                    "nothing was recorded since the key was configured: record something, e.g. "
                    "`vectraguard check -- true`, then verify)")
        row = self.store.db.execute("SELECT value FROM meta WHERE key = ?", (keyed.MAC_HEAD,)).fetchone()
        parts = str(row[0]).split(":") if row else []
        if len(parts) != 3 or not parts[0].isdigit():
            return f"the keyed head (meta {keyed.MAC_HEAD}) is missing or malformed — it was removed"
        seq, digest, mac = int(parts[0]), parts[1], parts[2]
        if not keyed.same(mac, keyed.head_mac(self.key, seq, digest)):
            return f"the keyed head (meta {keyed.MAC_HEAD}) does not match its MAC — it was rewritten ({NO_KEY})"
        if (seq, digest) == self.last:
            return None
        if seq > self.last[0]:
            return (f"event {seq}, the newest keyed event (meta {keyed.MAC_HEAD}), is missing: the chain ends at "
                    f"event {self.last[0]} — events after {self.last[0]} were deleted (the end cut off)")
        return (f"the keyed head (meta {keyed.MAC_HEAD}) names event {seq}, but keyed events go on to event "
                f"{self.last[0]} — the store was rolled back or rewritten")
