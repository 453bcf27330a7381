"""Image references as a container runtime reads them: distribution/reference's grammar
(github.com/distribution/reference, reference.go):

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path-component [ "/" path-component ]*
    domain    := host [ ":" port ]     (host: DNS labels separated by ".")
    tag       := [\\w][\\w.-]{0,127}
    digest    := algorithm ":" hex     (algorithm: [A-Za-z][A-Za-z0-9]*, with [-_+.] separators)

A reference outside it would be refused by the API server's consumers, or
read as something else; `kube generate` refuses it first.
"""

from __future__ import annotations

import re

from vectraguard import errors

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"(?::[0-9]+)?")
_REMAINDER = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
                        r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
MAX_NAME = 255  # characters of the name part (reference.go's NameTotalLengthMax)


def check(reference: str, what: str) -> str:
    """`reference` unchanged; UsageError naming `what` (e.g. "--image") if it is not an image reference.
    The first component is a domain only when it has a '.' or a ':' or is `localhost` (as Docker and
    Podman split a reference); otherwise it is a path component, lowercase like the rest."""
    first, _, rest = reference.partition("/")
    domain_ok = bool(rest) and (("." in first or ":" in first or first == "localhost")
                                and _DOMAIN.fullmatch(first) is not None)
    remainder = rest if domain_ok else reference
    name = reference.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:  # a tag after the last path component (a port is before a '/')
        name = name.rsplit(":", 1)[0]
    if not _REMAINDER.fullmatch(remainder) or len(name) > MAX_NAME:
        raise errors.UsageError(f"vectraguard kube generate: {what} {reference!r} is not an image reference",
                                hint="e.g. registry.example.com/vectraguard/default:bookworm or "
                                     "registry.example.com/vectraguard/default@sha256:...")
    return reference
