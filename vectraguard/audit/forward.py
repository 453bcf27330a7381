"""A copy of each audit record to syslog (`audit.forward: syslog`), for an off-box trail.

Each committed event goes out as one RFC 5424 message over a Unix datagram
socket (`audit.syslog_socket`, default /dev/log), which a syslog daemon
relays to another host:

    <110>1 2026-11-30T16:43:47.123Z HOST vectraguard PID KIND
        [vectraguard@32473 seq="N" session="ID" hash="H"] BOM{record as canonical JSON}

PRI 110 = facility 13 (log audit) * 8 + severity 6 (informational); the
structured data's enterprise number 32473 is the one RFC 5612 reserves for
documentation, as Vectra Guard has none of its own. `seq` and `hash` let the
receiver check the chain and notice a gap.

Fail open, reported: a record is forwarded only after it is committed to the
local store, which stays the record; a forward that fails (no daemon, a
full buffer for FORWARD_TIMEOUT, a record too big for a datagram) prints a
warning and the run goes on. Failing closed would let anyone who can stop the
syslog daemon stop every run; failing open lets them stop only the copy,
and the receiver sees the gap in `seq`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

PRI = 13 * 8 + 6
SD_ID = "vectraguard@32473"
FORWARD_TIMEOUT = 0.5  # seconds a blocked receiver may hold up a run, per record
BOM = "\ufeff"


def _sd_value(text: str) -> str:
    """RFC 5424 §6.3.3: '"', '\\' and ']' are escaped inside PARAM-VALUE."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(text: str, limit: int) -> str:
    """A header field is printable US-ASCII without spaces, or "-" (NILVALUE)."""
    clean = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return clean or "-"


def message(seq: int, session_id: str, kind: str, body: str, digest: str) -> bytes:
    """One event as an RFC 5424 message (`body`: the record's canonical JSON)."""
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    sd = f'[{SD_ID} seq="{seq}" session="{_sd_value(session_id)}" hash="{digest}"]'
    header = (f"<{PRI}>1 {stamp} {_header_field(socket.gethostname(), 255)} vectraguard {os.getpid()} "
              f"{_header_field(kind, 32)}")
    return f"{header} {sd} {BOM}{body}".encode("utf-8", "backslashreplace")


def send(path: Path, seq: int, session_id: str, kind: str, body: str, digest: str) -> str | None:
    """Forward one event; None when sent, else why not (the caller reports it)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(FORWARD_TIMEOUT)
            sock.sendto(message(seq, session_id, kind, body, digest), str(path))
        return None
    except OSError as exc:  # includes the timeout, EMSGSIZE, ECONNREFUSED, ENOENT, EPROTOTYPE (a stream socket)
        return exc.strerror or type(exc).__name__


def report(path: Path, seq: int, failure: str) -> None:
    print(f"vectraguard: warning: audit event {seq} was not forwarded to syslog via {path} ({failure}); "
          "it is recorded in the local store", file=sys.stderr)
