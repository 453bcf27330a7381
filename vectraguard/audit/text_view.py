"""A record's values as people read them in `logs show`: YAML-like, nested, times in ISO 8601.

`str()` of a record's value gave Python's spelling (`None`, `{'command': ...}`,
a several-KB one-line `sandbox: {...}`) and published connections' times as
seconds since the epoch while every other time is ISO. Here a mapping is a
block of `key: value` lines indented under its key, a list of scalars one
line (texts as shell words), a list of mappings `- ` items, None `-`, booleans `yes`/`no`, and a
number under a time key (TIME_KEYS: how the record's writers name seconds
since the epoch, network/publish_log.py) UTC ISO 8601 to the millisecond, as
`record.now()` writes the others. `--json` keeps the record exact.

Every key and text is made printable by the caller (terminal/escape.py);
a string that is not UTF-8 is the shell word that names its bytes (audit/exact.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from vectraguard.audit import exact

INDENT = "  "
# Keys whose numbers are seconds since the epoch (published connections: network/publish_log.py).
TIME_KEYS = frozenset({"at", "ended_at", "started_at", "first_at", "last_at", "expires_at", "created_at"})


def lines(key: str, value: Any, depth: int = 0) -> list[str]:
    """`key: value` as lines at indentation `depth`, nested values below their key."""
    pad = INDENT * depth
    if isinstance(value, dict):
        if not value:
            return [f"{pad}{key}: {{}}"]
        return [f"{pad}{key}:", *(line for k, v in value.items() for line in lines(str(k), v, depth + 1))]
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return [f"{pad}{key}:", *(line for item in value for line in _item(item, depth + 1))]
    return [f"{pad}{key}: {scalar(key, value)}"]


def _item(item: Any, depth: int) -> list[str]:
    """One list item: `- ` and its first line, the rest of a mapping aligned under it."""
    pad = INDENT * depth
    if not isinstance(item, dict) or not item:
        nested = lines("", item, depth)
        return [f"{pad}- {nested[0].strip().removeprefix(':').strip()}", *nested[1:]]
    body = [line for k, v in item.items() for line in lines(str(k), v, depth + 1)]
    return [f"{pad}- {body[0].strip()}", *body[1:]]


def scalar(key: str, value: Any) -> str:
    """A value that is not a mapping (nor a list holding one) as one line's text."""
    if isinstance(value, list):
        if value and all(isinstance(item, str) for item in value):
            return exact.index_line(value)  # shell words: a list of texts reads as the command line it often is
        return ", ".join(scalar(key, item) for item in value) if value else "[]"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and key in TIME_KEYS:
        return iso(value)
    if isinstance(value, str):
        return exact.shell_word(value) if not exact.is_exact(value) else value
    return str(value)


def iso(seconds: float) -> str:
    """Seconds since the epoch as UTC ISO 8601 to the millisecond (`2026-12-01T15:13:00.123Z`)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def printed(key: str, value: Any, escape: Callable[[str], str]) -> list[str]:
    """lines() with every line escaped by `escape` (terminal/escape.printable)."""
    return [escape(line) for line in lines(key, value)]
