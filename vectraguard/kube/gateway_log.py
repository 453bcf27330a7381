"""The egress gateway's log: a JSON line per connection decision on stdout, bounded per minute.

In Kubernetes the gateway's stdout is its pod log, which the kubelet rotates
by size: a sandbox that could add a line per connection (100,000 refused
ones in half a minute) could rotate away the lines that matter. So in each
window of WINDOW_S seconds the first LINES_PER_WINDOW decisions are written
one by one; the attempts after them are counted as a run's record counts
them (network/attempts.ConnectionLog: the first ones in full, then per
destination, the others in one bucket) and written as one `rest` line when
the window ends. Counts stay exact; whatever the sandbox does, a window adds
at most LINES_PER_WINDOW `connection` lines, as many `closed` ones, one
`rest` line of bounded size, and one late `closed` line per connection still
open when a window ended (at most --max-connections). Nothing is kept but
the current window's counts and the open connections.

Every line is one JSON object (ASCII, control characters escaped) with
`event`, `session` and `profile_digest` (null when not given), then:

    listening   {listen: "ADDR:PORT", allow: [entries], max_connections}: once, when it serves
    connection  an attempt, in the record's network-entry keys (attempts.py): {at, via, host, port,
                address, decision, reason, bytes_out, bytes_in, refusal?, asked?}; bytes are 0 here
    closed      the same entry once an allowed connection has ended, with its bytes and `closed_at`
    rest        {from, to, network, network_attempts, network_rest?, network_rest_others?}: the
                attempts of the window beyond its lines, in the record's network keys; the bytes of
                a connection still open at `to` are those so far, its `closed` line has them all
    stopped     {network_attempts}: every attempt since the start, when the gateway stops

Times are seconds since the epoch. Writing is synchronous: a stdout that
does not take the line holds the connection back (nothing is buffered), and
one that fails (EPIPE, ENOSPC) ends the connection and, through `on_failure`,
the gateway: it does not serve what it cannot log.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from vectraguard.network.attempts import Bucket, ConnectionLog, bound

WINDOW_S = 60.0
LINES_PER_WINDOW = 120


class GatewayLog(ConnectionLog):
    """What EgressServers logs to (add() at each decision, closed() when an allowed
    connection ends), written to `out`; the inherited counts are the current
    window's attempts beyond its lines."""

    def __init__(self, out: TextIO, session: str, profile_digest: str | None,
                 on_failure: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.out, self.session, self.profile_digest = out, session, profile_digest
        self.on_failure, self.clock = on_failure, clock
        self.total = 0
        self.failed: OSError | None = None
        self.window_start = clock()
        self._left = LINES_PER_WINDOW
        self._owed: dict[int, dict[str, Any]] = {}  # allowed and open, whose `closed` line is owed
        self._counted: dict[int, dict[str, Any]] = {}  # allowed and open, counted in this window's rest
        self._gate = threading.Lock()  # before ConnectionLog.lock, never after

    def started(self, listen: str, allow: list[str], max_connections: int) -> None:
        with self._gate:
            self._write("listening", {"listen": listen, "allow": allow, "max_connections": max_connections})

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._gate:
            now = self.clock()
            if now >= self.window_start + WINDOW_S:
                self._roll(now)
            self.total += 1
            if self._left <= 0:
                super().add(entry)
                if entry["decision"] == "allowed":
                    self._counted[id(entry)] = entry
                return entry
            self._left -= 1
            bound(entry)
            if entry["decision"] == "allowed":
                self._owed[id(entry)] = entry
            self._write("connection", entry)
        return entry

    def closed(self, entry: dict[str, Any]) -> None:
        with self._gate:
            key = id(entry)
            if self._owed.pop(key, None) is not None:
                self._write("closed", {**entry, "closed_at": self.clock()})
            else:
                self._counted.pop(key, None)
                super().closed(entry)

    def seconds_to_roll(self) -> float:
        return max(0.0, self.window_start + WINDOW_S - self.clock())

    def roll(self) -> None:
        """End the window if it is over: its `rest` line, if it had attempts beyond its lines."""
        with self._gate:
            now = self.clock()
            if now >= self.window_start + WINDOW_S:
                self._roll(now)

    def stop(self) -> None:
        """The last window's `rest` line, then `stopped`."""
        with self._gate:
            self._roll(self.clock())
            self._write("stopped", {"network_attempts": self.total})

    def _roll(self, now: float) -> None:
        if self.attempts:
            self._write("rest", {"from": self.window_start, "to": now, **self.snapshot()})
        # Connections still open are owed a `closed` line with their bytes: the window's counts go now.
        self._owed.update(self._counted)
        self._counted = {}
        with self.lock:
            self.entries, self.attempts, self.buckets = [], 0, {}
            self.others, self.others_seen, self.open = Bucket(), set(), {}
        self.window_start, self._left = now, LINES_PER_WINDOW

    def _write(self, event: str, fields: dict[str, Any]) -> None:
        line = json.dumps({"event": event, "session": self.session, "profile_digest": self.profile_digest,
                           **fields}, separators=(",", ":"))
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except OSError as exc:
            if self.failed is None:
                self.failed = exc
                self.on_failure()
            raise
