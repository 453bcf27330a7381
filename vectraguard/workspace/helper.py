"""Run under `podman unshare` (rootless): mount, read and take down a
session's overlay inside the rootless user's mount namespace, where
Podman creates its containers (the host's namespace never sees these
mounts). One JSON object on stdout answers; errors go to stderr, exit 1.

    python -m vectraguard.workspace.helper mount BASE WORKSPACE CAP [DEVICE:INODE]
    python -m vectraguard.workspace.helper finish BASE WORKSPACE LAYER_DIR CAP
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vectraguard.workspace import baseline, harvest, layer


def finish(points: layer.Mountpoints, workspace: str, layer_dir: str, cap: int, *,
           rootless: bool) -> dict[str, object]:
    """Harvest the upper directory into the layer directory, measure, unmount.
    If the harvest fails the mounts stay, so the sandbox's work is not lost
    (OSError/ValueError propagate)."""
    if not os.path.ismount(points.layer):  # gone with a reboot (or never mounted): nothing to read
        layer.unmount(points)
        return {"used": 0, "cap_hit": False, "changes": 0}
    used, cap_hit = layer.usage(points)
    base = baseline.load(Path(layer_dir) / "baseline.json.gz")
    changes = harvest.harvest(Path(points.upper), Path(workspace), Path(layer_dir), base, layer.xattr_prefix(rootless),
                              budget=cap)
    layer.unmount(points)
    return {"used": used, "cap_hit": cap_hit, "changes": len(changes)}


def main(argv: list[str]) -> int:
    try:
        command, base, *rest = argv
        points = layer.Mountpoints(base)
        if command == "mount":
            workspace, cap, *identity = rest
            device, inode = (int(n) for n in identity[0].split(":")) if identity else (0, 0)
            layer.mount(points, workspace, int(cap), rootless=True, shift=None,
                        identity=(device, inode) if identity else None)
            answer: dict[str, object] = {"ok": True}
        elif command == "finish":
            workspace, layer_dir, cap = rest
            answer = finish(points, workspace, layer_dir, int(cap), rootless=True)
        else:
            raise ValueError(f"unknown command {command!r}")
    except (OSError, ValueError) as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
