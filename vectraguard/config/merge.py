"""Merging layers: a table of rules keyed by path, last writer wins.

Maps deep-merge; scalars and lists replace, unless the table names another
rule for that path. Every key keeps the Origin of the layer that set it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vectraguard.config.layers import Layer
from vectraguard.config.problems import Origin


@dataclass
class Merged:
    data: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Origin] = field(default_factory=dict)


ListRule = Callable[[list[Any], list[Any]], list[Any]]


def _by_target(old: list[Any], new: list[Any]) -> list[Any]:
    """Mounts: a later layer replaces the entry with the same target, keeps the rest."""
    merged = {entry["target"]: entry for entry in old}
    merged.update({entry["target"]: entry for entry in new})
    return list(merged.values())


# Paths not listed here: maps deep-merge, everything else replaces.
LIST_RULES: dict[str, ListRule] = {
    "filesystem.mounts": _by_target,
}


def merge(layers: list[Layer]) -> Merged:
    result = Merged()
    for layer in layers:
        _merge_into(result, layer.data, layer, prefix="")
    return result


def _merge_into(result: Merged, data: dict[str, Any], layer: Layer, prefix: str) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        target = _container(result.data, prefix)
        result.provenance[path] = layer.origin(path)
        if isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _merge_into(result, value, layer, prefix=f"{path}.")
            continue
        rule = LIST_RULES.get(path)
        if rule is not None and isinstance(target.get(key), list):
            target[key] = rule(target[key], copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)


def _container(root: dict[str, Any], prefix: str) -> dict[str, Any]:
    node = root
    for part in filter(None, prefix.split(".")):
        node = node[part]
    return node
