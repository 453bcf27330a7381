"""Resolved profiles kept between runs, and reused only when nothing they
were resolved from has changed.

Resolving reads, validates and merges a profile's layers: ~10 ms of a
`vectraguard run` before its first call to Podman. What it depends on, and
where that is checked:

- the entry's key (SHA-256 over canonical JSON; a different key is another
  entry): the profile's name; the profile and fragment directories searched
  (shipped, system, user: they follow VECTRAGUARD_SYSTEM_DIR and
  XDG_CONFIG_HOME); the trusted project layer, whole (source, data, lines:
  `Sources.for_directory` checks its trust on every run, before this, so an
  untrusted or edited file never reaches here); the command line's layers,
  whole; Vectra Guard's version and the identity of the code that resolves
  (`code_identity`: the config package, records and units modules, the
  schemas and the YAML reader);
- the entry's files (checked on every use): each profile and fragment file
  the resolution looked for, by its stat identity (private_cache.identity:
  device, inode, size, mtime and ctime in ns, mode, owner) or as absent, so
  that an edit, a replacement, a new file in a higher layer or a removed
  one is a miss.

Nothing that may hold a secret is written: command-line layers with
environment values, and a profile with an upstream proxy URL, are resolved
every time (as config/cache.py keeps them out of the validated-layer cache).
An entry whose files changed less than private_cache.RACY_S before it was
made is not kept (their timestamps could not show the next edit).

A run resolves twice (with its command line, then without it:
approvals/decision_key.py). When the first was served from here, the
second, for the same Sources object, must rest on the very same files: an
entry that disagrees is a miss, and a fresh resolution that read other
versions of them is refused (`check_same_files`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from vectraguard import __version__, errors, private_cache
from vectraguard.config import merge, resolved, schema, yamlio
from vectraguard.config.layers import Layer
from vectraguard.config.problems import Origin
from vectraguard.digests import sha256_hex

FORMAT = 1
CACHE_NAME = "resolved"
PACKAGE = Path(__file__).resolve().parent.parent
CODE = ("config", "records.py", "units.py", "digests.py", "private_cache.py")

# The Sources object a resolution was last served for from here, and the
# identities of the files that entry rested on.
_served: tuple[Any, dict[str, Any]] | None = None


@functools.cache
def code_identity() -> list[Any]:
    """The code that turns layers into a resolved profile: each source
    file's name, size, mtime and inode (an edited checkout is another
    identity), the schemas' and the YAML reader's fingerprints."""
    listing: list[Any] = [__version__]
    for name in CODE:
        place = PACKAGE / name
        for path in sorted(p for p in place.iterdir() if p.suffix == ".py") if place.is_dir() else [place]:
            listing.append([str(path), private_cache.identity(str(path))])
    listing.append(sha256_hex(schema.fingerprint() + yamlio.fingerprint()))
    return listing


def _layer_parts(layer: Layer | None) -> Any:
    if layer is None:
        return None
    return [layer.source, layer.data, layer.lines, [[path, list(values)] for path, values in layer.appends]]


def key(name: str, overrides: list[Layer], sources: Any) -> str | None:
    """The entry's key; None when the resolution must not be kept (a secret may be in it)."""
    if any("env" in layer.data or _names_proxy(layer.data) for layer in overrides):
        return None
    parts = {
        "format": FORMAT, "code": code_identity(), "name": name,
        "directories": [str(d) for d in sources.directories()],
        "fragments": [str(d) for d in sources.fragment_directories()],
        "project": _layer_parts(sources.project),
        "overrides": [_layer_parts(layer) for layer in overrides],
    }
    try:
        text = json.dumps(parts, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return sha256_hex(text.encode("utf-8", "surrogatepass"))


def _names_proxy(data: dict[str, Any]) -> bool:
    network = data.get("network")
    return isinstance(network, dict) and network.get("upstream_proxy") is not None


def lookup(name: str, overrides: list[Layer], sources: Any) -> resolved.ResolvedProfile | None:
    """The cached resolution, or None (no entry, a file changed, a corrupt or foreign entry)."""
    global _served
    entry_key = key(name, overrides, sources)
    if entry_key is None:
        return None
    entry = private_cache.read(private_cache.directory(CACHE_NAME), f"{entry_key}.json")
    try:
        if entry is None or entry["key"] != entry_key:
            return None
        files = {str(path): found for path, found in entry["files"]}
        if _served is not None and _served[0] is sources and any(
                _served[1].get(path, found) != found for path, found in files.items()):
            return None  # the first resolution of this run rested on other versions of these files
        if any(private_cache.identity(path) != found for path, found in files.items()):
            return None
        merged = merge.Merged()
        merged.data = entry["merged"]
        merged.provenance = {path: Origin(source, line) for path, source, line in entry["provenance"]}
        profile = resolved.build(name, merged)
        resolved.remember_digest(profile, str(entry["digest"]))
    except (KeyError, TypeError, ValueError, AttributeError, errors.ConfigError):
        return None  # not an entry this code wrote
    _served = (sources, files)
    return profile


def store(name: str, overrides: list[Layer], sources: Any, looked_for: list[Path], merged: merge.Merged,
          profile: resolved.ResolvedProfile) -> None:
    """Keep a fresh resolution, unless it may hold a secret or a file it read changed just now."""
    entry_key = key(name, overrides, sources)
    if entry_key is None or _names_proxy(merged.data):
        return
    files = {str(path): private_cache.identity(str(path)) for path in looked_for}
    check_same_files(sources, files)
    if any(private_cache.racy(found) for found in files.values()):
        return
    private_cache.write(private_cache.directory(CACHE_NAME), f"{entry_key}.json", {
        "key": entry_key, "files": sorted(files.items()), "merged": merged.data,
        "provenance": [[path, origin.source, origin.line] for path, origin in merged.provenance.items()],
        "digest": resolved.digest(profile)})


def check_same_files(sources: Any, files: dict[str, Any]) -> None:
    """ConfigError when a resolution for the Sources object an earlier one
    was served from the cache for found other versions of the same files."""
    if _served is None or _served[0] is not sources:
        return
    for path, found in files.items():
        if path in _served[1] and _served[1][path] != found:
            raise errors.ConfigError(f"vectraguard: {path} changed while this run was being prepared; nothing ran",
                                     hint="run it again")


def forget() -> None:
    """Forget which entry this process was served (tests; a new run in the same process)."""
    global _served
    _served = None

