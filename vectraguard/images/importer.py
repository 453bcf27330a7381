"""Loading a rootfs tarball into Podman as a tagged, configured image.

Through the service's REST endpoint (POST /libpod/images/import), not the
`podman import` CLI: the tar is streamed over the socket, so it lands in the
storage of the very service `vectraguard run` talks to, and a rootless
service never needs to read our private temporary files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime.podman_api import error_message, podman_errors

if TYPE_CHECKING:
    from podman import PodmanClient

IMPORT_HINT = "check free space in Podman's storage (`podman info`) and the service log; then run `vectraguard doctor`"


def import_rootfs(client: PodmanClient, tarball: Path, ref: str, changes: list[str]) -> str:
    """Import `tarball` as `ref`; return the image ID as "sha256:<hex>"."""
    params = {"reference": ref, "changes": changes}  # a list: repeated `changes=` query keys
    with podman_errors("podman import"), tarball.open("rb") as stream:
        response = client.api.post("/images/import", params=params, data=stream,
                                   headers={"Content-Type": "application/x-tar"})
    if response.status_code >= 400:
        raise RuntimeUnavailable(f"vectraguard: podman import failed: {error_message(response)}", hint=IMPORT_HINT)
    image_id = str(response.json().get("Id") or "")
    if not image_id:
        raise RuntimeUnavailable("vectraguard: podman import returned no image ID", hint=IMPORT_HINT)
    return full_id(image_id)


def existing_id(client: PodmanClient, ref: str) -> str | None:
    """The ID of `ref` in Podman's storage, or None if there is no such image."""
    from podman.errors import ImageNotFound

    with podman_errors(f"looking up {ref}"):
        try:
            return full_id(str(client.images.get(ref).id))
        except ImageNotFound:
            return None


def remove_if_unused(client: PodmanClient, image_id: str) -> bool:
    """Drop the image a rebuild replaced; keep it if a container or another tag still uses it."""
    import requests

    try:
        client.images.remove(image_id)
    except requests.RequestException:  # podman-py's APIError is one
        return False
    return True


def full_id(image_id: str) -> str:
    """Podman spells IDs with and without the digest prefix; we always write it."""
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
