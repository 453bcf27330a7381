"""The log of a session's connection attempts, bounded whatever the sandbox does.

A sandbox can make connection attempts as fast as the proxy accepts them
(100,000 denied ones in half a minute), each to a destination of its
choosing. The log keeps the first NETWORK_IN_FULL attempts one by one, as
before; after them it counts per destination (via, host, port, decision):
attempts, first and last time, bytes each way, the first reason. The first
NETWORK_DESTINATIONS destinations are named; later ones share one "others"
bucket, which tells up to OTHERS_COUNTED destinations apart. Memory and the
record are bounded either way; the count of attempts is exact.

The record's keys (record.finished), times in seconds since the epoch:

    network               [{at, via, host, port, address, decision, reason, bytes_out, bytes_in,
                            refusal?, asked?}] — `refusal`, on a denied attempt, is its kind
                            (summary.py); `asked`, the Host or TLS server name the sandbox sent
    network_attempts      every attempt, those above included
    network_rest          [{via, host, port, decision, reason, refusal?, attempts, first_at, last_at,
                            bytes_out, bytes_in}]  — only when there were more attempts
    network_rest_others   {destinations, attempts, first_at, last_at, bytes_out, bytes_in}
                          — only when more destinations than named; `destinations` is
                          exact below OTHERS_COUNTED and means "at least" at it
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vectraguard.audit.bounds import (
    NETWORK_DESTINATIONS,
    NETWORK_IN_FULL,
    OTHERS_COUNTED,
    TEXT_BYTES,
    cut,
)
from vectraguard.output import printable

Key = tuple[str, str, Any, str]  # via, host, port, decision


@dataclass
class Bucket:
    """The attempts after the first ones that went to one destination (or to the others)."""

    attempts: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    bytes_out: int = 0
    bytes_in: int = 0
    reason: str = ""
    refusal: str = ""

    def count(self, entry: dict[str, Any]) -> None:
        if not self.attempts:
            self.first_at, self.reason, self.refusal = entry["at"], entry["reason"], entry.get("refusal", "")
        self.attempts += 1
        self.first_at, self.last_at = min(self.first_at, entry["at"]), max(self.last_at, entry["at"])

    def add_bytes(self, entry: dict[str, Any]) -> None:
        self.bytes_out += entry["bytes_out"]
        self.bytes_in += entry["bytes_in"]

    def summary(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "first_at": self.first_at, "last_at": self.last_at,
                "bytes_out": self.bytes_out, "bytes_in": self.bytes_in}


@dataclass
class ConnectionLog:
    """Shared by a session's proxy and forwarders; each connection's thread
    calls add() once the decision is made and closed() when its relay ends."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    buckets: dict[Key, Bucket] = field(default_factory=dict)
    others: Bucket = field(default_factory=Bucket)
    others_seen: set[int] = field(default_factory=set)  # hashes of the others' keys, up to OTHERS_COUNTED
    open: dict[int, tuple[dict[str, Any], Bucket]] = field(default_factory=dict)  # relays still counting bytes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Log one attempt: `entry` (cut to size in place) is the dict the
        relay goes on counting bytes in; returns it."""
        bound(entry)
        with self.lock:
            self.attempts += 1
            if len(self.entries) < NETWORK_IN_FULL:
                self.entries.append(entry)
                return entry
            bucket = self._bucket(_key_of(entry))
            bucket.count(entry)
            if entry["decision"] == "allowed":
                self.open[id(entry)] = (entry, bucket)
        return entry

    def closed(self, entry: dict[str, Any]) -> None:
        """The connection of `entry` ended: its bytes go into its destination's count."""
        with self.lock:
            entry_bucket = self.open.pop(id(entry), None)
            if entry_bucket is not None:
                entry_bucket[1].add_bytes(entry)

    def _bucket(self, key: Key) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is not None:
            return bucket
        if len(self.buckets) < NETWORK_DESTINATIONS:
            bucket = self.buckets[key] = Bucket()
            return bucket
        if len(self.others_seen) < OTHERS_COUNTED:
            self.others_seen.add(hash(key))
        return self.others

    def snapshot(self) -> dict[str, Any]:
        """The record's network keys (see the module's docstring); relays
        still open count the bytes they moved so far."""
        with self.lock:
            buckets = {key: Bucket(**vars(bucket)) for key, bucket in self.buckets.items()}
            others = Bucket(**vars(self.others))
            for entry, bucket in self.open.values():
                (others if bucket is self.others else buckets[_key_of(entry)]).add_bytes(entry)
            section: dict[str, Any] = {"network": [dict(e) for e in self.entries], "network_attempts": self.attempts}
            others_seen = len(self.others_seen)
        if buckets:
            section["network_rest"] = [{"via": via, "host": host, "port": port, "decision": decision,
                                        "reason": bucket.reason, **({"refusal": bucket.refusal} if bucket.refusal
                                                                    else {}), **bucket.summary()}
                                       for (via, host, port, decision), bucket in buckets.items()]
        if others.attempts:
            section["network_rest_others"] = {"destinations": others_seen, **others.summary()}
        return section


def bound(entry: dict[str, Any]) -> None:
    """Cut the texts the sandbox chose in one attempt's entry to size, in place."""
    entry["host"], entry["reason"] = cut(str(entry["host"]), TEXT_BYTES), cut(entry["reason"], TEXT_BYTES)
    if "asked" in entry:  # what the sandbox's Host header or TLS server name said: its own text
        entry["asked"] = cut(str(entry["asked"]), TEXT_BYTES)
    entry["port"] = _port(entry["port"])


RECORD_KEYS = ("network", "network_attempts", "network_rest", "network_rest_others")


def describe(body: dict[str, Any]) -> list[str]:
    """A `finished` record's network keys as lines for `logs show`, one an
    attempt or a destination, every text made printable. Old records (a
    bare `network` list, no count) read the same."""
    shown = body.get("network") or []
    total = body.get("network_attempts", len(shown))
    if not total:
        return ["network: no connection attempts"]
    lines = [f"network: {total} connection attempt(s)" + (f", the first {len(shown)} one by one:"
                                                            if total > len(shown) else ":")]
    lines += [f"  {e.get('decision')} {e.get('via')} {_where(e)} at {_time(e.get('at'))}{_detail(e)}" for e in shown]
    rest = body.get("network_rest") or []
    if rest:
        lines.append("after them, per destination:")
        lines += [f"  {b.get('attempts')} x {b.get('decision')} {b.get('via')} {_where(b)}, "
                  f"{_time(b.get('first_at'))} to {_time(b.get('last_at'))}{_detail(b)}" for b in rest]
    others = body.get("network_rest_others")
    if others:
        at_least = "at least " if others.get("destinations", 0) >= OTHERS_COUNTED else ""
        lines.append(f"  {others.get('attempts')} x to {at_least}{others.get('destinations')} other destination(s), "
                     f"{_time(others.get('first_at'))} to {_time(others.get('last_at'))}, "
                     f"{others.get('bytes_out', 0)} bytes out, {others.get('bytes_in', 0)} in")
    return lines


def _where(entry: dict[str, Any]) -> str:
    return printable(f"{entry.get('host')}:{entry.get('port')}")


def _detail(entry: dict[str, Any]) -> str:
    address = f" -> {entry['address']}" if entry.get("address") else ""
    moved = (f", {entry.get('bytes_out', 0)} bytes out, {entry.get('bytes_in', 0)} in"
             if entry.get("decision") == "allowed" else "")
    return printable(f"{address}{moved} ({entry.get('reason', '')})")


def _time(at: Any) -> str:
    """Seconds since the epoch as UTC ISO 8601, to the millisecond."""
    if not isinstance(at, (int, float)):
        return "?"
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _key_of(entry: dict[str, Any]) -> Key:
    return entry["via"], entry["host"], entry["port"], entry["decision"]


def _port(port: Any) -> int | str:
    """A port as asked for; one no TCP port can be (a CONNECT to host:99999999999) as cut text."""
    if isinstance(port, int) and 0 <= port <= 65535:
        return port
    return cut(str(port), 32)
