"""Going out through a company's upstream HTTP proxy: the setting, no_proxy, CONNECT.

The setting is None (go direct), "environment" (the host's https_proxy /
HTTPS_PROXY, then http_proxy / HTTP_PROXY, with no_proxy / NO_PROXY), or a URL
`http://[user:password@]host[:port]`. Without a port the proxy is on 1080, as
curl assumes (curl(1), --proxy: "If the port number is not specified in the
proxy string, it is assumed to be 1080"): the same environment variable must
mean the same proxy to us as to the tools that read it most. The user name and
password are percent-decoded, as curl does. https:// and socks proxies are
refused with a message: this module speaks plain HTTP to the proxy only.

no_proxy follows curl's CURLOPT_NOPROXY (https://curl.se/libcurl/c/CURLOPT_NOPROXY.html):
entries separated by commas or white space; `*` alone matches every host; a
name matches itself and its subdomains, with or without a leading dot
(`example.com` and `.example.com` both match example.com and www.example.com,
not notexample.com); IP literals match themselves and CIDRs (`10.0.0.0/8`,
`fd00::/8`) the addresses inside, never a name. Beyond curl, as Go's
golang.org/x/net/http/httpproxy does, `host:port` (`[v6]:port`) bypasses only
that port.

This module only transports: the caller checks the allowlist, and resolves
and vets names itself where it can.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from vectraguard.audit.bounds import cut
from vectraguard.network.allowlist import normalize_host
from vectraguard.output import printable

if TYPE_CHECKING:  # at run time asyncio is imported by what runs the loop (~25 ms, not before)
    import asyncio

DEFAULT_PORT = 1080  # curl's default for a proxy URL without a port
HEAD_LIMIT = 16 * 1024  # bytes of a CONNECT response's status line and headers
# Names (underscores occur in real DNS names) and IP literals: nothing that could end a header line.
_HOST_TEXT = re.compile(r"[A-Za-z0-9._-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?")
_STATUS = re.compile(r"HTTP/1\.[01] ([0-9]{3})(?: .*)?")


class UpstreamError(Exception):
    """The upstream proxy did not open the tunnel; the message says why, without credentials."""


@dataclass(frozen=True)
class UpstreamProxy:
    host: str
    port: int
    credentials: str | None  # "user:password", percent-decoded
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_setting(cls, setting: str | None, no_proxy: tuple[str, ...],
                     environ: Mapping[str, str]) -> UpstreamProxy | None:
        """The proxy a setting names, or None to go direct; ValueError for a setting it cannot use."""
        if setting is None:
            return None
        if setting == "environment":
            url = next((environ[k] for k in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY")
                        if environ.get(k)), None)
            if url is None:
                return None
            env_no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
            no_proxy = (*no_proxy, *split_no_proxy(env_no_proxy))
            return cls.from_url(url, no_proxy, source="the environment's proxy")
        return cls.from_url(setting, no_proxy, source="network.upstream_proxy")

    @classmethod
    def from_url(cls, url: str, no_proxy: tuple[str, ...], *, source: str = "the upstream proxy") -> UpstreamProxy:
        """`http://[user:password@]host[:port]`; ValueError naming `source` otherwise."""
        shown = printable(cut(_without_password(url), 200))
        parts = urlsplit(url.strip())
        if parts.scheme.lower() != "http":
            raise ValueError(f"{source} '{shown}': only http:// proxies are supported "
                             f"(not {parts.scheme or 'a bare host'}; write http://host:port)")
        try:
            port = DEFAULT_PORT if parts.port is None else parts.port
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise ValueError(f"{source} '{shown}': the port must be a number from 1 to 65535")
        if not parts.hostname:
            raise ValueError(f"{source} '{shown}': no proxy host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{source} '{shown}': a proxy URL has no path (write http://host:port)")
        try:
            host = str(ipaddress.ip_address(parts.hostname))
        except ValueError:
            try:
                host = normalize_host(parts.hostname)
            except ValueError:
                host = ""
            if not _HOST_TEXT.fullmatch(host):  # the idna codec lets control characters through
                raise ValueError(f"{source} '{shown}': the proxy host is not a host name")
        credentials = None
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        return cls(host, port, credentials, tuple(no_proxy))

    def bypasses(self, host: str, port: int) -> bool:
        """Whether host:port goes direct, by no_proxy (see the module's docstring)."""
        return any(_no_proxy_matches(entry, host, port) for entry in self.no_proxy)

    def redacted(self) -> str:
        """The proxy as a URL to show: the password never appears."""
        where = printable(f"[{self.host}]" if ":" in self.host else self.host)
        if self.credentials is None:
            return f"http://{where}:{self.port}"
        user = self.credentials.partition(":")[0]
        return f"http://{printable(user)}:***@{where}:{self.port}"

    def authorization_header(self) -> str | None:
        """The Proxy-Authorization header line (without CRLF), or None without credentials."""
        if self.credentials is None:
            return None
        token = base64.b64encode(self.credentials.encode("utf-8")).decode("ascii")
        return f"Proxy-Authorization: Basic {token}"

    async def open_tunnel(self, host: str, port: int,
                          timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A CONNECT tunnel to host:port, positioned after the proxy's response head
        (bytes the proxy sent past it stay in the reader). UpstreamError when the
        proxy cannot be reached, does not answer within `timeout` seconds, sends
        a head over HEAD_LIMIT bytes, or answers other than 2xx; also for a host
        that is no host name or address (it goes into the request's head)."""
        import asyncio

        if not _HOST_TEXT.fullmatch(host) or not 0 < port < 65536:
            raise UpstreamError(f"not a destination to ask the upstream proxy for: "
                                f"{printable(cut(repr(host), 200))} port {port}")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"the upstream proxy {self.redacted()} cannot be reached: "
                                f"{_why(exc)}") from None
        try:
            async with asyncio.timeout(timeout):
                writer.write(self._connect_request(host, port))
                await writer.drain()
                status = await _read_head(reader)
        except (OSError, TimeoutError, UpstreamError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            writer.close()
            raise UpstreamError(f"the upstream proxy {self.redacted()} did not open a tunnel to "
                                f"{_authority(host, port)}: {_why(exc)}") from None
        except BaseException:  # cancelled: the connection is not left open
            writer.close()
            raise
        code = _STATUS.fullmatch(status)
        if code is None or not code.group(1).startswith("2"):
            writer.close()
            raise UpstreamError(f"the upstream proxy {self.redacted()} refused CONNECT {_authority(host, port)}: "
                                f"{printable(cut(status, 200))}")
        return reader, writer

    def _connect_request(self, host: str, port: int) -> bytes:
        authority = _authority(host, port)
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        authorization = self.authorization_header()
        if authorization:
            lines.append(authorization)
        return "\r\n".join([*lines, "", ""]).encode("utf-8")


def split_no_proxy(text: str) -> tuple[str, ...]:
    """A no_proxy variable's entries: separated by commas or white space, as curl reads it."""
    return tuple(e for e in re.split(r"[,\s]+", text) if e)


async def _read_head(reader: asyncio.StreamReader) -> str:
    """The status line of a response head read up to its blank line; the headers are dropped."""
    used, status = 0, None
    while True:
        line = await reader.readuntil(b"\n")  # bounded by the reader's limit, then by HEAD_LIMIT in all
        used += len(line)
        if used > HEAD_LIMIT:
            raise UpstreamError(f"its response head is over {HEAD_LIMIT} bytes")
        text = line.decode("latin-1").rstrip("\r\n")
        if status is None:
            status = text
        elif not text:
            return status


def _no_proxy_matches(entry: str, host: str, port: int) -> bool:
    entry = entry.strip()
    if entry == "*":
        return True
    spec, entry_port = _split_entry_port(entry)
    if entry_port is not None and entry_port != port:
        return False
    literal = _ip(host)
    if "/" in spec or _ip(spec) is not None:
        try:
            network = ipaddress.ip_network(spec, strict=False)
        except ValueError:
            return False
        return literal is not None and literal.version == network.version and literal in network
    if literal is not None or not spec.strip("."):
        return False
    try:
        name, domain = normalize_host(host.strip("[]")), normalize_host(spec.lstrip("."))
    except ValueError:
        return False
    return name == domain or name.endswith("." + domain)


def _split_entry_port(entry: str) -> tuple[str, int | None]:
    """`[v6]:port`, `name:port`, or the entry alone (a bare v6 address has several colons)."""
    if entry.startswith("["):
        inner, _, rest = entry[1:].partition("]")
        return inner, _port_of(rest[1:]) if rest else None
    if entry.count(":") == 1:
        spec, _, port = entry.partition(":")
        return spec, _port_of(port)
    return entry, None


def _port_of(text: str) -> int:
    """An entry's port; -1, which no connection has, for one that is no number."""
    return int(text) if text.isdigit() else -1


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _authority(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _why(exc: BaseException) -> str:
    import asyncio

    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "it closed the connection before a complete answer"
    if isinstance(exc, asyncio.LimitOverrunError | ValueError):
        return "a response line too long"
    if isinstance(exc, OSError):
        # asyncio's strerror is "Connect call failed (address)": the errno's own words read better
        return os.strerror(exc.errno) if exc.errno else str(exc)
    return str(exc)


def _without_password(url: str) -> str:
    """A URL as it may be shown in an error: any password replaced by ***."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
