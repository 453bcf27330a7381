"""A test certificate authority and a small HTTPS server that remembers what it saw.

For tests of SNI checks, of the host's trusted CA bundle and of registry
fragments: the CA and its server certificates are made by the `openssl`
CLI in a temporary directory (EC P-256 keys, valid two days, removed at
the end); the server answers `hello PATH` over TLS on a socket the test
bound (on the host's loopback or inside a private namespace) and records,
per connection, the SNI name the client sent, the request's path and its
Host header.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
DAYS = "2"
HEAD_LIMIT = 65536  # bytes of request head read before giving up on a client


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]}: {done.stderr.strip()}")


@dataclass(frozen=True)
class ServerCert:
    """A server certificate (PEM, signed by the test CA) and its key."""

    cert: Path
    key: Path
    names: tuple[str, ...]


@dataclass(frozen=True)
class TestCA:
    """A certificate authority for one test: `cert` is what clients trust."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    cert: Path
    key: Path

    def issue(self, names: Sequence[str], ips: Sequence[str] = ()) -> ServerCert:
        """A server certificate for DNS `names` (the first is also its CN) and
        IP addresses `ips`, in subjectAltName, signed by this CA."""
        if not names:
            raise ValueError("a server certificate needs at least one DNS name")
        stem = self.directory / f"server-{len(list(self.directory.glob('server-*.pem')))}"
        alt = ",".join([*(f"DNS:{name}" for name in names), *(f"IP:{ip}" for ip in ips)])
        extensions = stem.with_suffix(".ext")
        extensions.write_text(f"subjectAltName={alt}\nbasicConstraints=critical,CA:FALSE\n"
                              "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
        key, csr, cert = stem.with_suffix(".key"), stem.with_suffix(".csr"), stem.with_suffix(".pem")
        _openssl("req", "-new", *KEY, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}",
                 cwd=self.directory)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-days", DAYS, "-out", str(cert), "-extfile", str(extensions),
                 cwd=self.directory)
        return ServerCert(cert, key, tuple(names))

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this CA only, verifying names."""
        return ssl.create_default_context(cafile=str(self.cert))


@contextlib.contextmanager
def test_ca(name: str = "Vectra Guard test CA") -> Iterator[TestCA]:
    """A new CA in a temporary directory, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="vg-test-ca-") as directory:
        path = Path(directory)
        _openssl("req", "-x509", *KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", DAYS, "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=path)
        yield TestCA(path, path / "ca.pem", path / "ca.key")


test_ca.__test__ = False  # type: ignore[attr-defined]  # a context manager, not a test


@dataclass
class Seen:
    """One connection: the SNI name sent (None: none), and unless the
    handshake or the request failed (`error`), the path and Host header.
    A record is listed when the connection is accepted; `error` is set just
    after the client was refused, the rest before it gets its answer."""

    sni: str | None
    path: str | None = None
    host: str | None = None
    error: str | None = None


@dataclass
class _Server:
    listener: socket.socket
    context: ssl.SSLContext
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def accept_loop(self) -> None:
        self.listener.settimeout(0.2)  # to notice `stopping`; accept() is not woken by close()
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve_one, args=(conn,), daemon=True).start()

    def serve_one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        # Listed before the handshake and filled in before the answer is sent,
        # so a client that has its answer finds its record complete.
        record = Seen(sni=None)
        self.seen.append(record)
        try:
            with self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
                tls.vg_record = record  # type: ignore[attr-defined]  # for the SNI callback
                tls.do_handshake()
                head = _read_head(tls)
                request_line, *headers = head.decode("latin-1").split("\r\n")
                record.path = request_line.split(" ")[1] if request_line.count(" ") >= 2 else None
                record.host = next((value.strip() for key, _, value in (h.partition(":") for h in headers)
                                    if key.strip().lower() == "host"), None)
                body = f"hello {record.path}\n".encode()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            record.error = str(exc)
        finally:
            conn.close()


def _read_head(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(4096)
        if not chunk or len(data) > HEAD_LIMIT:
            raise ValueError("the client closed or sent no complete request head")
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def _server_context(cert: ServerCert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert.cert), str(cert.key))

    def remember(tls: ssl.SSLSocket | ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        tls.vg_record.sni = name  # type: ignore[union-attr]  # set in serve_one

    context.sni_callback = remember
    return context


@contextlib.contextmanager
def serve_tls(listener: socket.socket, cert: ServerCert) -> Iterator[list[Seen]]:
    """An HTTPS server on `listener` (bound, listening; closed at the end)
    with `cert`; yields the list of connections seen so far."""
    server = _Server(listener, _server_context(cert))
    thread = threading.Thread(target=server.accept_loop, daemon=True)
    thread.start()
    try:
        yield server.seen
    finally:
        server.stopping.set()
        thread.join()
        listener.close()
