"""The record of a session's published-port connections, bounded whatever anyone does.

Anyone on the host who can reach a published port can open connections as
fast as they like, so the log keeps the first NETWORK_IN_FULL connections
one by one and, after them, counts per published port. The record's keys
(record.finished), times in seconds since the epoch:

    network_published              [{at, ended_at, peer, host, port, outcome, reason,
                                     bytes_to_sandbox, bytes_from_sandbox}]
                                   `peer`: the host-side client address:port; `host`: the listener
                                   (address:port); `port`: the sandbox's; `outcome`: relayed,
                                   refused (nothing listened there inside), over-limit or failed
    network_published_connections  every connection, those above included
    network_published_rest         [{host, port, connections, refused, first_at, last_at,
                                     bytes_to_sandbox, bytes_from_sandbox}] — only when there were more
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vectraguard.audit.bounds import NETWORK_IN_FULL, TEXT_BYTES, cut


@dataclass
class PublishLog:
    """Written by the publisher's event loop; snapshot() read once it has stopped."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    rest: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def opened(self, peer: str, host: str, port: int) -> dict[str, Any]:
        """A new connection's entry; its outcome and bytes are filled in as it goes, then ended()."""
        entry = {"at": time.time(), "ended_at": None, "peer": cut(peer, TEXT_BYTES), "host": host, "port": port,
                 "outcome": "relayed", "reason": "", "bytes_to_sandbox": 0, "bytes_from_sandbox": 0}
        with self.lock:
            self.connections += 1
            if len(self.entries) < NETWORK_IN_FULL:
                self.entries.append(entry)
        return entry

    def ended(self, entry: dict[str, Any]) -> None:
        entry["ended_at"] = time.time()
        entry["reason"] = cut(entry["reason"], TEXT_BYTES)
        with self.lock:
            if any(kept is entry for kept in self.entries):
                return
            bucket = self.rest.setdefault((entry["host"], entry["port"]), {
                "host": entry["host"], "port": entry["port"], "connections": 0, "refused": 0,
                "first_at": entry["at"], "last_at": entry["at"], "bytes_to_sandbox": 0, "bytes_from_sandbox": 0})
            bucket["connections"] += 1
            bucket["refused"] += entry["outcome"] != "relayed"
            bucket["first_at"], bucket["last_at"] = min(bucket["first_at"], entry["at"]), max(bucket["last_at"], entry["at"])
            bucket["bytes_to_sandbox"] += entry["bytes_to_sandbox"]
            bucket["bytes_from_sandbox"] += entry["bytes_from_sandbox"]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            section: dict[str, Any] = {"network_published": [dict(e) for e in self.entries],
                                       "network_published_connections": self.connections}
            if self.rest:
                section["network_published_rest"] = [dict(b) for b in self.rest.values()]
            return section
