"""podman-py clients for the commands where start-up time does not matter.

`vectraguard run` speaks to Podman through the small stdlib client in
libpod.py; image management and doctor use podman-py, which costs ~130 ms
to import and is therefore imported only inside these functions. Both find
the same service through service.connect(), so what `image build` imports,
`run` sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime import host, service

if TYPE_CHECKING:
    from podman import PodmanClient


def open_client(timeout: float = 60.0) -> PodmanClient:
    """A podman-py client for the service Vectra Guard uses (started if needed)."""
    return client_for(service.connect(host.detect().oci_runtime).socket_path, timeout)


def client_for(socket_path: str, timeout: float = 60.0) -> PodmanClient:
    from podman import PodmanClient

    return PodmanClient(base_url=f"http+unix://{socket_path}", timeout=timeout)


@contextmanager
def podman_errors(what: str) -> Iterator[None]:
    """Turn podman-py and requests failures into one line for the user."""
    import requests
    from podman.errors import PodmanError

    try:
        yield
    except (requests.RequestException, PodmanError) as exc:
        raise RuntimeUnavailable(f"vectraguard: {what} failed: {describe(exc)}",
                                 hint="run `vectraguard doctor`") from None


def describe(exc: BaseException) -> str:
    """Podman's own message when it sent one, else the exception's text."""
    response = getattr(exc, "response", None)
    if response is not None:
        return error_message(response)
    cause = exc.__cause__ or exc.__context__
    return str(cause or exc) or exc.__class__.__name__


def error_message(response: Any) -> str:
    """The "cause"/"message" of a libpod error body, or the raw text."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return str(response.text).strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or body)
    return str(body)
