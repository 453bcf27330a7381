"""Manifests as one multi-document YAML stream, after a comment header.

Written with ruamel.yaml, with one change: a string is left unquoted only
when no YAML 1.1 or 1.2 reader could take it for anything but a string.
`kubectl` reads YAML through sigs.k8s.io/yaml (go-yaml), where `on`, `yes`
and `n` are still booleans for some readers; an env value "no" must reach the
pod as the string "no". Every other string is double-quoted, with YAML's
escapes, so no value (a command, an env value) can end its scalar.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Unquoted: starts with a letter or '/', then letters, digits and . _ - /;
# not a YAML 1.1 boolean or null (YAML 1.2's are a subset).
_PLAIN = re.compile(r"[A-Za-z/][A-Za-z0-9._/-]*")
_SPECIAL = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off", "null"})


def _represent_str(representer: Any, value: str) -> Any:
    plain = _PLAIN.fullmatch(value) is not None and value.lower() not in _SPECIAL
    return representer.represent_scalar("tag:yaml.org,2002:str", value, style=None if plain else '"')


def dump(documents: Iterable[Mapping[str, Any]], header: Iterable[str] = ()) -> str:
    """`header` lines as `# ` comments (each made printable: comment() below),
    then each document after `---`."""
    from ruamel.yaml import YAML  # only this command needs it at import

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # apiVersion, kind, metadata, spec
    yaml.width = 4096  # no folded lines: a reader sees each value on its line
    yaml.representer.add_representer(str, _represent_str)
    out = io.StringIO()
    for line in header:
        out.write(f"# {comment(line)}\n" if line else "#\n")
    for document in documents:
        out.write("---\n")
        yaml.dump(_plain(document), out)
    return out.getvalue()


def comment(text: str) -> str:
    """`text` safe inside a `#` comment: a line break or other control
    character in it (a command's argument) is shown escaped, never written,
    so nothing after it can become YAML."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _plain(value: Any) -> Any:
    """dicts, lists, str, int and bool only (tuples become lists)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
