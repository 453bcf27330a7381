"""`vectraguard image prune`: remove the untagged images Vectra Guard built, and nothing else.

A rebuild moves a tag (`localhost/vectraguard/default:bookworm`, a variant's)
to the new image and leaves the old one untagged; they add up (a `dev`
variant is ~690 MiB). Only images that carry Vectra Guard's label
(recipe.LABEL, set by every image it builds) and have no tag are removed —
never an image someone else built or pulled, never a tagged one — and never
with force: Podman refuses an image a container (a running sandbox, a pooled
one) still uses, and that image is kept and named. `podman image prune`
would take every dangling image on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vectraguard.images import recipe
from vectraguard.images.importer import full_id


@dataclass(frozen=True)
class Pruned:
    id: str  # "sha256:<hex>"
    kind: str  # the label's value: default, variant, agent, gateway
    size: int  # bytes, as Podman reports the image
    removed: bool
    reason: str = ""  # why it was kept (Podman's message)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "size": self.size, "removed": self.removed, "reason": self.reason}


def untagged(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of Podman's image list entries (attrs), those labelled as Vectra Guard's and without a tag."""
    return [attrs for attrs in images if (attrs.get("Labels") or {}).get(recipe.LABEL) is not None
            and not [tag for tag in attrs.get("RepoTags") or [] if tag and not tag.startswith("<none>")]]


def prune(client: Any) -> list[Pruned]:
    """Remove each untagged Vectra Guard image through podman-py's `client`; what was done, image by image."""
    from podman.errors import APIError

    listed = [image.attrs for image in client.images.list(filters={"label": recipe.LABEL})]
    done = []
    for attrs in untagged(listed):
        image_id = full_id(str(attrs["Id"]))
        kind, size = str((attrs.get("Labels") or {}).get(recipe.LABEL, "")), int(attrs.get("Size") or 0)
        try:
            client.images.remove(image_id, force=False)
        except APIError as exc:  # in use by a container (409), or gone meanwhile (404)
            from vectraguard.runtime.podman_api import describe

            done.append(Pruned(image_id, kind, size, False, describe(exc)))
            continue
        done.append(Pruned(image_id, kind, size, True))
    return done
