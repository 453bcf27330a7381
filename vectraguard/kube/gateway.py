"""The egress gateway of one Kubernetes sandbox pod (`vectraguard kube gateway`).

The sandbox pod's NetworkPolicy lets it reach only this gateway, on TCP
3128, and its HTTP(S)_PROXY variables name it (kube generate). The gateway
is the proxy a local allowlisted run plants in its sandbox, the same code
(network/: the allowlist, the dialer that resolves names itself and vets
every address, the HTTP/CONNECT proxy, the cap on open connections),
served on an ordinary TCP listener. What a local run has and this has not:
the transparent forwarders (a pod's /etc/hosts cannot name them), the
profile's hosts file and upstream proxy (kube generate refuses or
downgrades those). Names resolve through the gateway pod's own DNS.

Its log is stdout, a JSON line per decision (gateway_log.py); it writes no
file, needs no privilege, and stops on SIGTERM or SIGINT with status 0.
"""

from __future__ import annotations

import ipaddress
import re
import signal
import socket
from typing import TextIO

from vectraguard import errors
from vectraguard.kube.gateway_log import GatewayLog
from vectraguard.network.allowlist import Allowlist, parse_entry
from vectraguard.records import record

PROG = "vectraguard kube gateway"
MAX_CONNECTIONS_LIMIT = 65536
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
POLL_S = 1.0  # how soon a failed log stops the gateway
# A session id as a Kubernetes label value carries it (kube generate: vectraguard.io/session).
_SESSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
_DIGEST = re.compile(r"[0-9a-f]{64}")


@record
class GatewaySettings:
    host: str
    port: int
    session: str
    profile_digest: str | None
    allowlist: Allowlist
    max_connections: int

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def settings_from(listen: str, session: str, profile_digest: str | None, allow: list[str],
                  max_connections: int) -> GatewaySettings:
    """The settings the options give; UsageError (125) naming the option for any that does not parse."""
    host, port = parse_listen(listen)
    if not _SESSION.fullmatch(session):
        raise errors.UsageError(f"{PROG}: --session {session[:80]!r}: a session id is 1 to 63 letters, digits, "
                                "'.', '_' or '-', starting and ending with a letter or digit")
    if profile_digest is not None and not _DIGEST.fullmatch(profile_digest):
        raise errors.UsageError(f"{PROG}: --profile-digest {profile_digest[:80]!r}: expected the 64 lowercase hex "
                                "digits of the resolved profile's SHA-256")
    if not 0 < max_connections <= MAX_CONNECTIONS_LIMIT:
        raise errors.UsageError(f"{PROG}: --max-connections {max_connections}: expected 1 to {MAX_CONNECTIONS_LIMIT}")
    entries = []
    for text in allow:
        try:
            entries.append(parse_entry(text))
        except ValueError as exc:
            raise errors.UsageError(f"{PROG}: --allow {text[:200]!r}: {exc}",
                                    hint="an entry is host[:port], *.domain[:port] or cidr[:port]") from None
    return GatewaySettings(host, port, session, profile_digest, Allowlist(tuple(entries)), max_connections)


def parse_listen(text: str) -> tuple[str, int]:
    """(address, port) of ADDR:PORT or [V6]:PORT; the address must be an IP
    address (the gateway resolves nothing to listen); port 0 takes a free one."""
    address, _, port = text.rpartition(":")
    address = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        parsed = ipaddress.ip_address(address)
        number = int(port) if port.isascii() and port.isdigit() else -1
    except ValueError:
        number = -1
    if number < 0 or number > 65535:
        raise errors.UsageError(f"{PROG}: --listen {text[:80]!r}: expected ADDR:PORT with an IP address, "
                                "e.g. 0.0.0.0:3128 or [::]:3128")
    return str(parsed), number


def listener(settings: GatewaySettings) -> socket.socket:
    """The listening socket; RuntimeUnavailable (125) when it cannot be bound."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise errors.RuntimeUnavailable(f"{PROG}: cannot listen on {settings.listen}: {exc.strerror or exc}") from None
    return sock


def serve(settings: GatewaySettings, out: TextIO) -> None:
    """Serve until SIGTERM or SIGINT. The caller must have blocked those
    signals in every thread (block_stop_signals) before anything started one.
    RuntimeUnavailable when the log could not be written (the gateway stops)."""
    from vectraguard.network.dial import Dialer
    from vectraguard.network.proxy import serve_proxy
    from vectraguard.network.resolve import Resolver
    from vectraguard.network.server import EgressServers

    sock = listener(settings)
    host, port = sock.getsockname()[:2]
    bound_to = GatewaySettings(host, port, settings.session, settings.profile_digest, settings.allowlist,
                               settings.max_connections)
    log = GatewayLog(out, settings.session, settings.profile_digest)
    servers = EgressServers(Dialer(settings.allowlist, Resolver()), log, settings.max_connections)
    try:
        servers.start([(sock, "proxy", serve_proxy)])
        log.started(bound_to.listen, [entry.text for entry in settings.allowlist.entries], settings.max_connections)
        while log.failed is None and signal.sigtimedwait(STOP_SIGNALS, min(POLL_S, log.seconds_to_roll())) is None:
            log.roll()
    except OSError:
        if log.failed is None:  # the log's own failure is said below; anything else is a bug
            raise
    finally:
        servers.close()
        sock.close()
    if log.failed is None:
        try:
            log.stop()
        except OSError:
            pass
    if log.failed is not None:
        raise errors.RuntimeUnavailable(f"{PROG}: stopped: the log could not be written to stdout "
                                        f"({log.failed.strerror or log.failed})")


def block_stop_signals() -> None:
    """SIGTERM and SIGINT wait for serve() to take them (sigtimedwait), in
    every thread started after this: no handler runs in the middle of a write."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
