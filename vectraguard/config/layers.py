"""A Layer: one validated configuration document and where each key came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vectraguard.config import cache, schema, yamlio
from vectraguard.config.problems import Origin, Problem, raise_if_any
from vectraguard.records import record


@record
class Layer:
    """One configuration source (a file, or the command line) as validated data with line numbers."""

    source: str  # a file path, or "command line"
    data: dict[str, Any]
    lines: dict[str, int]
    appends: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # `--set key+=value`: (path, values)

    def origin(self, key_path: str) -> Origin:
        return Origin(self.source, self.lines.get(key_path, 0))

    def section(self, prefix: str) -> Layer:
        """The sub-document at `prefix` (e.g. a project file's profiles.NAME) as a layer."""
        node: Any = self.data
        for part in prefix.split("."):
            node = node[part]
        cut = len(prefix) + 1
        lines = {key[cut:]: line for key, line in self.lines.items() if key.startswith(prefix + ".")}
        return Layer(self.source, node, lines)


def load_file(path: Path, schema_name: str) -> Layer:
    """Read, parse and validate one file; raise ConfigError with every problem."""
    raw, problems = yamlio.read_config_bytes(path)
    raise_if_any(problems, f"vectraguard: cannot use {path}")
    assert raw is not None
    return load_bytes(raw, path, schema_name)


def load_bytes(raw: bytes, path: Path, schema_name: str) -> Layer:
    """Parse and validate content already read (and, for a project file, checked)."""
    key = cache.cache_key(schema_name.encode() + schema.fingerprint() + yamlio.fingerprint(), raw)
    hit = cache.lookup(key)
    if hit is not None:
        return Layer(str(path), hit[0], hit[1])
    text, problems = yamlio.decode_config(raw, str(path))
    raise_if_any(problems, f"vectraguard: {path} is not a valid configuration file")
    assert text is not None
    loaded = yamlio.load_yaml_text(text, str(path))
    problems = list(loaded.problems)
    if not problems and not isinstance(loaded.data, dict):
        problems.append(Problem(Origin(str(path), 1), "", "the document must be a mapping of keys"))
    if not problems:
        problems = schema.validate(schema_name, loaded.data, loaded.lines, str(path))
    raise_if_any(problems, f"vectraguard: {path} is not a valid configuration file")
    if not _holds_proxy_url(loaded.data):
        cache.store(key, loaded.data, loaded.lines)
    return Layer(str(path), loaded.data, loaded.lines)


def _holds_proxy_url(data: dict[str, Any]) -> bool:
    """Whether a document sets network.upstream_proxy, which may carry a
    password: such a layer is validated each time, never copied to the cache.
    An explicit null (the shipped default.yaml's) holds no URL: counting it
    would re-parse and re-validate every shipped profile on every run."""
    network = data.get("network")
    return isinstance(network, dict) and network.get("upstream_proxy") is not None


def validated_layer(source: str, data: dict[str, Any], schema_name: str) -> Layer:
    """A layer built in code (command-line flags) goes through the same schema,
    and the same cache, keyed by its canonical JSON."""
    if not data:
        return Layer(source, data, {})
    if "env" in data or _holds_proxy_url(data):
        # Environment values and a proxy URL given on the command line may be
        # secrets: never written to the cache directory (validated each time instead).
        raise_if_any(schema.validate(schema_name, data, {}, source), "vectraguard: invalid command-line options")
        return Layer(source, data, {})
    key = cache.cache_key(schema_name.encode() + schema.fingerprint(), json.dumps(data, sort_keys=True).encode())
    if cache.lookup(key) is None:
        problems = schema.validate(schema_name, data, {}, source)
        raise_if_any(problems, "vectraguard: invalid command-line options")
        cache.store(key, data, {})
    return Layer(source, data, {})
