"""Transparent forwarders for exact allowlisted hosts.

For clients that ignore proxy variables and for protocols other than HTTP
(`db.internal:5432`): each exact host name of the allowlist gets a loopback
address of its own in the sandbox's /etc/hosts, and a listener planted on
that address and each allowed port forwards raw TCP to the real host — after
the same checks as the proxy (dial.py). A denied connection is closed at once.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from vectraguard.network.allowlist import Allowlist
from vectraguard.network.attempts import ConnectionLog
from vectraguard.network.dial import Denied, PlantedServer, dial, relay


class Forwarder(PlantedServer):
    def __init__(self, listener: socket.socket, host: str, port: int, allowlist: Allowlist,
                 log: ConnectionLog) -> None:
        super().__init__(listener, allowlist, log)
        self.host, self.port = host, port

    def _serve(self, client: socket.socket) -> None:
        entry: dict[str, Any] = {"at": time.time(), "via": "forwarder", "host": self.host, "port": self.port,
                                 "address": None, "decision": "denied", "reason": "", "bytes_out": 0, "bytes_in": 0}
        with client:
            try:
                upstream, address, rule = dial(self.allowlist, self.host, self.port)
            except Denied as exc:
                entry["reason"] = str(exc)
                self.log.add(entry)
                return  # closing the connection at once: never a hang
            entry.update(address=address, decision="allowed", reason=f"rule {rule}")
            self.log.add(entry)
            try:
                with upstream:
                    relay(client, upstream, entry)
            finally:
                self.log.closed(entry)  # its bytes, into the counts of the attempts after the first ones
