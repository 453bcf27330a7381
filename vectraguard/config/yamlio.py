"""Reading one YAML file into plain data plus the line of every key.

Configuration files may come from strangers (a cloned repository), so the
reader is deliberately narrow: YAML 1.2 (so `no` is a string, not False),
the safe constructor only, no anchors or aliases (alias bombs), no explicit
tags (`!!python/object`), no duplicate keys, a size cap and a depth cap.
Every refusal is a located Problem; nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectraguard.config.problems import Origin, Problem, dotted

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
}


@dataclass
class LoadedYaml:
    """A parsed document: data, the line of each key path, and problems."""

    path: str
    data: Any = None
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


class _Walker:
    """Turns a composed node tree into plain Python values, checking as it goes."""

    def __init__(self, result: LoadedYaml, constructor: Any) -> None:
        self.result = result
        self.constructor = constructor

    def problem(self, node: Any, path: list[str | int], message: str) -> None:
        line = node.start_mark.line + 1
        self.result.problems.append(Problem(Origin(self.result.path, line), dotted(path), message))

    def walk(self, node: Any, path: list[str | int]) -> Any:
        self.result.lines.setdefault(dotted(path), node.start_mark.line + 1)
        if len(path) > MAX_DEPTH:
            self.problem(node, path, f"nested deeper than {MAX_DEPTH} levels")
            return None
        if getattr(node, "anchor", None):
            self.problem(node, path, "YAML anchors and aliases are not allowed (write the value out)")
            return None
        tag = str(node.tag.value if hasattr(node.tag, "value") else node.tag)
        if tag not in _PLAIN_TAGS:
            self.problem(node, path, f"tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed")
            return None
        if node.id == "mapping":
            return self.walk_mapping(node, path)
        if node.id == "sequence":
            return [self.walk(item, [*path, i]) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)

    def walk_mapping(self, node: Any, path: list[str | int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.id != "scalar":
                self.problem(key_node, path, "keys must be plain strings")
                continue
            key = self.constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                self.problem(key_node, path, f"key {key!r} must be a string")
                continue
            if key in out:
                first = self.result.lines.get(dotted([*path, key]), 0)
                self.problem(key_node, [*path, key], f"duplicate key (first set on line {first})")
                continue
            self.result.lines[dotted([*path, key])] = key_node.start_mark.line + 1
            out[key] = self.walk(value_node, [*path, key])
        return out


def load_yaml_text(text: str, path: str) -> LoadedYaml:
    # Imported on first use: ruamel.yaml costs ~20 ms and the validated-layer
    # cache usually means it is not needed at all.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    result = LoadedYaml(path)
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        result.problems.append(Problem(Origin(path, line), "", f"not valid YAML: {exc.problem or exc}"))
        return result
    except YAMLError as exc:
        result.problems.append(Problem(Origin(path), "", f"not valid YAML: {exc}"))
        return result
    except RecursionError:
        result.problems.append(Problem(Origin(path), "", f"nested deeper than {MAX_DEPTH} levels"))
        return result
    if node is None:
        result.data = {}
        return result
    walker = _Walker(result, yaml.constructor)
    try:
        result.data = walker.walk(node, [])
    except RecursionError:
        result.problems.append(Problem(Origin(path), "", f"nested deeper than {MAX_DEPTH} levels"))
    return result


def read_config_bytes(path: Path) -> tuple[bytes | None, list[Problem]]:
    """Read a configuration file with the size cap; problems instead of exceptions."""
    where = Origin(str(path))
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, [Problem(where, "", f"cannot read: {exc.strerror or exc}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem(where, "", f"larger than the {MAX_FILE_BYTES // 1024} KiB limit")]
    return raw, []


def decode_config(raw: bytes, path: str) -> tuple[str | None, list[Problem]]:
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(Origin(path, line), "", "not valid UTF-8")]
