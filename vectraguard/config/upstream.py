"""The `network.upstream_proxy` and `network.no_proxy` values: checked and redacted.

`upstream_proxy` is absent/None (connect directly), the word `environment`
(the vectraguard process's own https_proxy/HTTPS_PROXY/http_proxy/HTTP_PROXY
and no_proxy/NO_PROXY), or `http://[user:password@]host:port` — the form
curl and Python's urllib accept for a plain HTTP proxy (RFC 3986 authority;
a CONNECT tunnel through it carries the TLS). Errors are ValueError with a
message fit for a located config problem.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

ENVIRONMENT = "environment"
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_URL_FORM = "expected `environment` or http://[user:password@]host:port"


def check_upstream(value: str) -> str:
    """`value` unchanged if it is `environment` or a valid proxy URL."""
    if value == ENVIRONMENT:
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{_URL_FORM} ({exc})") from None
    if parts.scheme != "http":
        raise ValueError(f"{_URL_FORM}: the scheme must be http (the proxy is spoken to in plain HTTP; "
                         f"TLS to the destination goes through it), not {parts.scheme or 'missing'!r}")
    if not parts.hostname or port is None:
        raise ValueError(f"{_URL_FORM}: the host and the port are both required")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{_URL_FORM}: nothing may follow the port")
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ValueError(f"{_URL_FORM}: spaces and control characters are not allowed")
    return value


def redact(value: str | None) -> str | None:
    """The URL with its password replaced by `***` (for `profile show` and the
    audit record); a value without a password is returned as it is."""
    if value is None or value == ENVIRONMENT:
        return value
    parts = urlsplit(value)
    if parts.password is None:
        return value
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


def check_no_proxy(entries: list[str]) -> tuple[str, ...]:
    """Each entry a host suffix (`example.com`, `.example.com`) or a CIDR/address."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
            continue
        except ValueError:
            pass
        labels = entry.removeprefix(".").split(".")
        if not all(_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"{entry!r} is neither a host name suffix (example.com) nor a CIDR (10.0.0.0/8)")
    return tuple(entries)
