"""The images Vectra Guard built: every image carrying its label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import Any

from vectraguard.images import recipe
from vectraguard.images.importer import full_id
from vectraguard.runtime.podman_api import open_client, podman_errors

UNTAGGED = "<none>"


@dataclass(frozen=True)
class ImageEntry:
    ref: str  # one row per tag; an untagged image is "<none>"
    id: str  # "sha256:<hex>"
    created: datetime  # UTC
    size: int  # bytes, as Podman's image list reports it (its storage's own count, not a file sum)
    kind: str  # the label's value, e.g. "default"
    packages: tuple[str, ...] = ()  # a variant's extra Debian packages (its label)

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "id": self.id, "created": self.created.isoformat(timespec="seconds"),
                "size": self.size, "kind": self.kind, "packages": list(self.packages)}


def list_images() -> list[ImageEntry]:
    with open_client(timeout=60) as client, podman_errors("listing images"):
        images = client.images.list(filters={"label": recipe.LABEL})
        entries = [entry for image in images for entry in _entries(image.attrs)]
    return sorted(entries, key=lambda e: (e.ref == UNTAGGED, e.ref, e.created))


def _entries(attrs: dict[str, Any]) -> list[ImageEntry]:
    created = datetime.fromtimestamp(int(attrs.get("Created") or 0), tz=UTC)
    labels = attrs.get("Labels") or {}
    kind = str(labels.get(recipe.LABEL, ""))
    packages = tuple(filter(None, str(labels.get(recipe.LABEL_PACKAGES, "")).split(",")))
    refs = attrs.get("RepoTags") or [UNTAGGED]
    return [ImageEntry(str(ref), full_id(str(attrs["Id"])), created, int(attrs.get("Size") or 0), kind, packages)
            for ref in refs]
