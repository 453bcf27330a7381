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
    """`value` unchanged if it is `environment` or a valid proxy URL with its
    port (network/upstream.py reads it: one parser for both)."""
    if value == ENVIRONMENT:
        return value
    from vectraguard.network.upstream import UpstreamProxy

    UpstreamProxy.from_url(value, (), source="the URL")
    if urlsplit(value.strip()).port is None:
        raise ValueError(f"{_URL_FORM}: the port is required")
    return value


def redact(value: str | None) -> str | None:
    """The URL with its password replaced by `***` (for `profile show` and the
    audit record); `environment` and None as they are."""
    if value is None or value == ENVIRONMENT:
        return value
    from vectraguard.network.upstream import UpstreamProxy

    return UpstreamProxy.from_url(value, ()).redacted()


def redact_in(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (`//user:PASSWORD@`):
    for words that may hold one, such as a run's options (`--set network.upstream_proxy=...`)."""
    import re

    return re.sub(r"(//[^/@:\s]*:)[^/@\s]*@", r"\1***@", text)


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
