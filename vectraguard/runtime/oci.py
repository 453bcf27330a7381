"""Which OCI runtime a container really got, checked against the one chosen.

Podman 4.3's REST API ignores the `oci_runtime` field of a create request
(podman-container-tools/podman#28429, fixed only in 2026): the service's own
default decides, whatever the spec says. Vectra Guard therefore sets the
runtime on the service (`podman --runtime NAME system service`, see
service.py) and checks each container's inspect document before it starts.
"""

from __future__ import annotations

import os
from typing import Any

from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime.libpod import Libpod


def runtime_of(inspect: dict[str, Any]) -> str | None:
    """The container's `OCIRuntime` as Podman reports it: the name or path the
    service was given (`runc`, or `/usr/bin/runc` if started with a path);
    None when the document does not say."""
    value = inspect.get("OCIRuntime")
    return value if isinstance(value, str) and value else None


def same_runtime(got: str, expected: str) -> bool:
    """Exactly the same: Vectra Guard starts its service with the runtime's
    absolute path (host.pick_oci_runtime), and a program elsewhere that is
    merely named like it (`/tmp/x/runc`, a wrapper) is not it. A bare name
    is compared with the path's last component only when `expected` is itself
    a bare name."""
    if "/" not in expected:
        return os.path.basename(got) == expected
    return got == expected


def verify_runtime(inspect: dict[str, Any], expected: str | None) -> None:
    """Refuse a container whose OCI runtime is not `expected`.

    `inspect` is the container's libpod inspect document (GET
    /containers/{id}/json); `expected` is HostFacts.oci_runtime, where None
    means "Podman's default is fine" and nothing is checked. Raises
    RuntimeUnavailable (exit 125) naming the container, both runtimes and
    the fix; a document without `OCIRuntime` is refused too (fail closed).
    """
    if expected is None:
        return
    got = runtime_of(inspect)
    if got is not None and same_runtime(got, expected):
        return
    name = str(inspect.get("Name") or inspect.get("Id", "?"))[:64]
    said = f"the OCI runtime {got!r}" if got else "an OCI runtime Podman does not name"
    raise RuntimeUnavailable(
        f"vectraguard: container {name} got {said} from the Podman service, "
        f"not {expected!r}, which Vectra Guard chose for this host",
        hint=f"the service ignores the runtime a container asks for: if $CONTAINER_HOST is set, point it at a "
             f"service started with `podman --runtime {expected} system service`, or unset it so that Vectra "
             f"Guard starts its own; `vectraguard doctor` shows the runtime containers get",
    )


def runtime_given(client: Libpod, image: str, oci_runtime: str | None) -> str | None:
    """The `OCIRuntime` Podman gives a trivial container created through
    `client` from `image` (asking for `oci_runtime` as the run path's spec
    does); the container is never started and is always removed. Raises
    LibpodError when Podman refuses the create, RuntimeUnavailable when the
    service does not answer."""
    import secrets  # here: it loads OpenSSL (through hmac), which a run does not need (digests.py)

    specgen: dict[str, Any] = {"image": image, "command": ["true"], "name": f"vectraguard-doctor-{secrets.token_hex(4)}",
                               "netns": {"nsmode": "none"}}
    if oci_runtime:
        specgen["oci_runtime"] = oci_runtime
    cid = client.create(specgen)
    try:
        return runtime_of(client.inspect(cid))
    finally:
        client.remove(cid)
