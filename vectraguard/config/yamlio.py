"""Reading one YAML file into plain data plus the line of every key.

Configuration files may come from strangers (a cloned repository), so the
reader is deliberately narrow, for every configuration file alike (profiles,
fragments, project files, the system policy):

- YAML 1.2 only (so `no` is a string, not False); a `%YAML 1.1` directive,
  which would bring the 1.1 surprises back, is refused;
- one document per file;
- no anchors, aliases or merge keys (`<<`): alias bombs, and values that
  come from somewhere other than the line that shows them;
- no tags beyond the plain ones (`!!python/object`, `!!binary`, `!!set`,
  `!!timestamp`, local `!tags` are refused), and a plain tag must fit the
  node it is on (`!!str {a: 1}` is refused);
- scalars must convert: no malformed `!!int`, no integers beyond 64 bits, no infinities or NaN, no NUL characters or lone
  surrogates in strings (they cannot reach an argv, an environment or JSON);
- keys are plain strings, each once; a size cap and a depth cap.

Every refusal is a located Problem; nothing is silently dropped, and no
input reaches an internal error.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from vectraguard.config.problems import Origin, Problem, dotted
from vectraguard.digests import sha256_hex

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
YAML_VERSION = (1, 2)
# Nothing configured needs more, and a bigger one fails later where it is
# printed or stored (Python's int-to-text limit, SQLite's INTEGER).
MAX_INT = 1 << 63

_CORE = "tag:yaml.org,2002:"
# The node kind each allowed tag fits (YAML 1.2 core schema).
_TAG_KIND = {
    f"{_CORE}str": "scalar", f"{_CORE}int": "scalar", f"{_CORE}float": "scalar",
    f"{_CORE}bool": "scalar", f"{_CORE}null": "scalar",
    f"{_CORE}map": "mapping", f"{_CORE}seq": "sequence",
}
_STR_TAG = f"{_CORE}str"
_MERGE_TAG = f"{_CORE}merge"
_TIMESTAMP_TAG = f"{_CORE}timestamp"


class _Refused:
    """A node that was refused (its problem is already recorded)."""


REFUSED = _Refused()


class LoadedYaml:
    """A parsed document: data, the line of each key path, and problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data: Any = None
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []


def _plain(value: Any) -> Any:
    """A refused value stays in the (never used) data as None."""
    return None if value is REFUSED else value


def _short(tag: str) -> str:
    return tag.replace(_CORE, "!!")


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


class _Walker:
    """Turns a composed node tree into plain Python values, checking as it goes."""

    def __init__(self, result: LoadedYaml, constructor: Any) -> None:
        self.result = result
        self.constructor = constructor

    def problem(self, node: Any, path: list[str | int], message: str) -> _Refused:
        line = node.start_mark.line + 1
        self.result.problems.append(Problem(Origin(self.result.path, line), dotted(path), message))
        return REFUSED

    def walk(self, node: Any, path: list[str | int]) -> Any:
        """The plain value of `node`, or REFUSED (with its problem recorded)."""
        self.result.lines.setdefault(dotted(path), node.start_mark.line + 1)
        if len(path) > MAX_DEPTH:
            return self.problem(node, path, f"nested deeper than {MAX_DEPTH} levels")
        if getattr(node, "anchor", None):
            return self.problem(node, path, "YAML anchors and aliases are not allowed (write the value out)")
        refusal = self.tag_refusal(node)
        if refusal:
            return self.problem(node, path, refusal)
        if node.id == "mapping":
            return self.walk_mapping(node, path)
        if node.id == "sequence":
            return [_plain(self.walk(item, [*path, i])) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    @staticmethod
    def tag_refusal(node: Any) -> str:
        tag = str(node.tag)
        if tag == _MERGE_TAG:
            return "YAML merge keys (<<) are not allowed (write the keys out)"
        if tag == _TIMESTAMP_TAG:
            return "dates and times are not allowed (quote the value to make it a string)"
        kind = _TAG_KIND.get(tag)
        if kind is None:
            return f"tag {_short(tag)} is not allowed"
        if kind != node.id:
            return f"tag {_short(tag)} does not fit a {node.id}"
        return ""

    def scalar(self, node: Any, path: list[str | int]) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 — the constructor's errors vary by tag (ValueError for
            # `!!int x` or 5000 digits, KeyError for `!!bool x`, ConstructorError); all mean the same
            return self.problem(node, path, f"{_preview(str(node.value))} is not a valid {_short(str(node.tag))}")
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value < MAX_INT:
            return self.problem(node, path, f"{_preview(str(node.value))} is out of range (a 64-bit integer)")
        if isinstance(value, float) and not math.isfinite(value):
            return self.problem(node, path, f"{_preview(str(node.value))} is not a finite number")
        if isinstance(value, str):
            if "\0" in value:
                return self.problem(node, path, "a NUL character is not allowed in a string")
            if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
                return self.problem(node, path, "a lone surrogate (\\uD800-\\uDFFF) is not allowed in a string")
        return value

    def walk_mapping(self, node: Any, path: list[str | int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key is REFUSED:
                continue
            if key in out:
                first = self.result.lines.get(dotted([*path, key]), 0)
                self.problem(key_node, [*path, key], f"duplicate key (first set on line {first})")
                continue
            self.result.lines[dotted([*path, key])] = key_node.start_mark.line + 1
            out[key] = _plain(self.walk(value_node, [*path, key]))
        return out

    def key(self, node: Any, path: list[str | int]) -> Any:
        """A mapping key: a plain string, or REFUSED."""
        if node.id != "scalar" and str(node.tag) != _MERGE_TAG:
            return self.problem(node, path, "keys must be plain strings")
        key = self.walk(node, path)
        if key is not REFUSED and not isinstance(key, str):
            return self.problem(node, path, f"key {key!r} must be a string")
        return key


def _compose(text: str, result: LoadedYaml) -> Any:
    """(the document's node tree or None if empty, the constructor), or None with a problem recorded."""
    # Imported on first use: ruamel.yaml costs ~20 ms and the validated-layer
    # cache usually means it is not needed at all.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="safe", pure=True)
    yaml.version = YAML_VERSION
    path = result.path
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        result.problems.append(Problem(Origin(path, line), "", f"not valid YAML: {exc.problem or exc}"))
        return None
    except RecursionError:
        result.problems.append(Problem(Origin(path), "", f"nested deeper than {MAX_DEPTH} levels"))
        return None
    except Exception as exc:  # noqa: BLE001 — ruamel also fails with bare assertions
        # (e.g. `%YAML 1.3`) and ValueErrors; whatever it is, the file is not readable YAML.
        result.problems.append(Problem(Origin(path), "", f"not valid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))
        return None
    if tuple(yaml.resolver.processing_version) != YAML_VERSION:
        version = ".".join(map(str, yaml.resolver.processing_version))
        result.problems.append(Problem(Origin(path, 1), "", f"YAML {version} is not read, only YAML 1.2 "
                                                           "(remove the %YAML directive)"))
        return None
    return node, yaml.constructor


@functools.cache
@functools.cache
def fingerprint() -> bytes:
    """This reader's own source: the validated-layer cache (config/cache.py)
    must not keep accepting a file the reader's rules now refuse, even
    within one version of Vectra Guard (an editable install, a patch)."""
    return bytes.fromhex(sha256_hex(Path(__file__).read_bytes()))


def load_yaml_text(text: str, path: str) -> LoadedYaml:
    result = LoadedYaml(path)
    composed = _compose(text, result)
    if composed is None:
        return result
    node, constructor = composed
    if node is None:
        result.data = {}
        return result
    try:
        data = _Walker(result, constructor).walk(node, [])
    except RecursionError:
        result.problems.append(Problem(Origin(path), "", f"nested deeper than {MAX_DEPTH} levels"))
        return result
    result.data = _plain(data)
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
