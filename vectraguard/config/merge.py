"""Merging layers: a table of rules keyed by path, last writer wins.

Maps deep-merge; scalars and lists replace, unless the table names another
rule for that path. Every key keeps the Origin of the layer that set it.
"""

from __future__ import annotations

from typing import Any

from vectraguard.config.layers import Layer
from vectraguard.config.problems import Origin
from vectraguard.errors import ConfigError


class Merged:
    """Layers merged: the data, and for each key the layer and line that set it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.provenance: dict[str, Origin] = {}


# Lists not named here replace. These merge entry by entry, on a key: a later
# layer replaces the entry with the same key and keeps the rest, so a user
# can change one mount, or one risk rule, without restating the others.
LIST_KEYS: dict[str, str] = {
    "filesystem.mounts": "target",
    "risk.rules": "id",
}

# A scalar here is short for a section with one key: `image: REF` is
# `image: {ref: REF}`. A section meeting the short form extends it (the
# `dev` profile adds packages to the default image it extends); the short
# form meeting a section replaces it, as scalars do (`--image REF` names the
# exact image to run).
SHORTHANDS: dict[str, str] = {
    "image": "ref",
    "engine": "name",
}


def copy_data(value: Any) -> Any:
    """A deep copy of configuration data: dicts, lists and tuples are copied,
    everything else (str, int, float, bool, None: what YAML and JSON give)
    is immutable and shared. copy.deepcopy does the same ~5x slower (its
    memo and dispatch), which a run pays for every key of every layer."""
    if isinstance(value, dict):
        return {key: copy_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_data(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_data(item) for item in value)
    return value


def _by_key(old: list[Any], new: list[Any], key: str) -> list[Any]:
    merged = {entry[key]: entry for entry in old}
    merged.update({entry[key]: entry for entry in new})
    return list(merged.values())


def merge(layers: list[Layer]) -> Merged:
    result = Merged()
    for layer in layers:
        _merge_into(result, layer.data, layer, prefix="")
        for path, values in layer.appends:
            _append(result, path, values, layer)
    return result


def _append(result: Merged, path: str, values: tuple[Any, ...], layer: Layer) -> None:
    """`--set key+=value`: extend the list the lower layers resolved to."""
    *parents, leaf = path.split(".")
    node = result.data
    for index, part in enumerate(parents):
        _expand_shorthand(result, node, part, ".".join(parents[:index + 1]))
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"vectraguard: {layer.source}: --set {path}+=: {part} is not a section")
    current = node.setdefault(leaf, [])
    if not isinstance(current, list):
        raise ConfigError(f"vectraguard: {layer.source}: --set {path}+=: {path} is not a list; use {path}=VALUE")
    current.extend(copy_data(list(values)))
    result.provenance[path] = layer.origin(path)


def _merge_into(result: Merged, data: dict[str, Any], layer: Layer, prefix: str) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        target = _container(result.data, prefix)
        result.provenance[path] = layer.origin(path)
        if isinstance(value, dict):
            _expand_shorthand(result, target, key, path)
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _merge_into(result, value, layer, prefix=f"{path}.")
            continue
        entry_key = LIST_KEYS.get(path)
        if entry_key is not None and isinstance(target.get(key), list):
            target[key] = _by_key(target[key], copy_data(value), entry_key)
        else:
            target[key] = copy_data(value)
        if entry_key is not None and isinstance(value, list):
            # Entries merged by key keep their own origins.
            for index, entry in enumerate(value):
                result.provenance[f"{path}[{entry[entry_key]}]"] = layer.origin(f"{path}.{index}")


def _expand_shorthand(result: Merged, node: dict[str, Any], key: str, path: str) -> None:
    """Turn a short form already merged at `path` into its section, keeping where it came from."""
    inner = SHORTHANDS.get(path)
    if inner is not None and key in node and not isinstance(node[key], (dict, list)):
        node[key] = {inner: node[key]}
        if path in result.provenance:
            result.provenance[f"{path}.{inner}"] = result.provenance[path]


def _container(root: dict[str, Any], prefix: str) -> dict[str, Any]:
    node = root
    for part in filter(None, prefix.split(".")):
        node = node[part]
    return node
