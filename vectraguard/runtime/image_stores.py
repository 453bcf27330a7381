"""Where `image build` puts the images it builds: one small interface over each engine's image storage.

`image build` makes the same mmdebstrap root filesystem whatever the engine
(images/build.py) and hands the tar to the engine's store: Podman's (its REST
import, images/importer.py; the unpacked tree for isolation lite comes from
there) or Docker Engine's (POST /images/create?fromSrc=-, runtime/docker/api.py).
IDs are written "sha256:<hex>" for both, as the build record keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class ImageStore(Protocol):
    """An engine's image storage, as `image build` uses it."""

    engine: str  # "podman" | "docker"

    def existing_id(self, ref: str) -> str | None: ...

    def import_rootfs(self, tarball: Path, ref: str, changes: list[str]) -> str: ...

    def remove_if_unused(self, image_id: str) -> bool: ...

    def unpack(self, ref: str, report: Callable[[str], None]) -> None:
        """The tree isolation lite runs from (Podman's store only; Docker's: nothing to do)."""


class PodmanImages:
    engine = "podman"

    def __init__(self, client: Any) -> None:
        self.client = client

    def existing_id(self, ref: str) -> str | None:
        from vectraguard.images import importer

        return importer.existing_id(self.client, ref)

    def import_rootfs(self, tarball: Path, ref: str, changes: list[str]) -> str:
        from vectraguard.images import importer

        return importer.import_rootfs(self.client, tarball, ref, changes)

    def remove_if_unused(self, image_id: str) -> bool:
        from vectraguard.images import importer

        return importer.remove_if_unused(self.client, image_id)

    def unpack(self, ref: str, report: Callable[[str], None]) -> None:
        from vectraguard.images import unpacked

        unpacked.unpack_image(self.client, ref, report=report)  # unpacks only if not unpacked yet


class DockerImages:
    engine = "docker"

    def __init__(self, client: Any) -> None:
        self.client = client

    def existing_id(self, ref: str) -> str | None:
        from vectraguard.runtime.docker.api import DockerError

        try:
            return _full(self.client.image_id(ref))
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    def import_rootfs(self, tarball: Path, ref: str, changes: list[str]) -> str:
        from vectraguard import errors
        from vectraguard.runtime.docker.api import DockerError

        repository, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        try:
            with tarball.open("rb") as stream:
                return _full(self.client.image_import(iter(lambda: stream.read(1 << 20), b""), repository, tag,
                                                      changes))
        except DockerError as exc:
            raise errors.RuntimeUnavailable(f"vectraguard: Docker Engine's import failed: {exc.message}",
                                            hint="check free space in Docker's data root (`docker info`)") from None

    def remove_if_unused(self, image_id: str) -> bool:
        from vectraguard.runtime.docker.api import DockerError

        try:
            self.client.image_remove(image_id)
        except DockerError:
            return False  # a container or another tag still uses it
        return True

    def unpack(self, ref: str, report: Callable[[str], None]) -> None:
        """Isolation lite unpacks from Podman's store; a Docker-only build has nothing to unpack."""


@contextmanager
def opened(engine: str, timeout: float) -> Iterator[ImageStore]:
    """The store of `engine` ("podman" or "docker"), its connection open for the block."""
    if engine == "docker":
        from vectraguard.runtime.docker import daemon

        yield DockerImages(daemon.connect(timeout=timeout))
        return
    from vectraguard.runtime.podman_api import open_client

    with open_client(timeout=timeout) as client:
        yield PodmanImages(client)


def _full(image_id: str) -> str:
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
