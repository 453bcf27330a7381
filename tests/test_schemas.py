"""The schemas are the source of truth: strict and documented throughout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SCHEMAS = sorted((Path(__file__).resolve().parent.parent / "schemas").glob("*.schema.json"))


def walk(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found += walk(value, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += walk(node[key], f"{path}[]")
    return found


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_every_object_is_closed_and_every_property_described(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for where, node in walk(schema, "$"):
        if node.get("type") == "object" and "$ref" not in node:
            assert node.get("additionalProperties") is not None, f"{path.name} {where}: additionalProperties unset"
            assert node.get("additionalProperties") is not True, f"{path.name} {where}: open object"
        for key, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{path.name} {where}.{key}: no description"
