"""Parsing of the human-friendly quantities used by profiles and flags.

One parser per kind of quantity, shared by the YAML layer and the CLI, so a
size means the same thing wherever it is written. Each raises ValueError with
a message that says what was expected; callers add the location.
"""

# A value of the wrong type (a YAML list, None) is a ValueError like any other bad value:
# every caller reports ValueError as one located message.
# ruff: noqa: TRY004

from __future__ import annotations

import math
import re

_SIZE = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[KMGT]i?|[kmgt]i?|[Bb])?")
_SIZE_FACTORS = {
    "": 1, "b": 1,
    # Both spellings are binary: `512m` (podman/docker style) and `512Mi`
    # (Kubernetes style) are the same amount, so nobody is surprised by 2.4%.
    "k": 1 << 10, "ki": 1 << 10,
    "m": 1 << 20, "mi": 1 << 20,
    "g": 1 << 30, "gi": 1 << 30,
    "t": 1 << 40, "ti": 1 << 40,
}
MAX_SIZE = 1 << 50  # 1 PiB: anything larger is a typo, not a limit

_DURATION = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s|m|h|d)?")
_DURATION_FACTORS = {"ms": 0.001, "": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION = 30 * 86400.0  # a month: longer is a typo


def parse_size(text: str | int | float) -> int:
    """`512Mi`, `2G`, `65536` (bytes) -> bytes. Must be > 0 and sane. A YAML
    number such as `1e9` is a float: taken when it is a whole number of bytes."""
    if isinstance(text, bool):
        raise ValueError("expected a size like 512Mi or 2G, not a boolean")
    if isinstance(text, (int, float)):
        value = _whole(text, "bytes")
    elif not isinstance(text, str):
        raise ValueError(f"{text!r} is not a size (expected e.g. 512Mi, 2G or a byte count)")
    else:
        m = _SIZE.fullmatch(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a size (expected e.g. 512Mi, 2G or a byte count)")
        value_f = float(m["num"]) * _SIZE_FACTORS[(m["unit"] or "").lower()]
        value = int(value_f)
    if value <= 0:
        raise ValueError(f"size must be greater than zero, got {text!r}")
    if value > MAX_SIZE:
        raise ValueError(f"size {text!r} is absurdly large (maximum 1Pi)")
    return value


def parse_duration(text: str | int | float) -> float:
    """`30s`, `10m`, `1.5h`, `90` (seconds) -> seconds. Must be > 0 and sane."""
    if isinstance(text, bool):
        raise ValueError("expected a duration like 30s or 10m, not a boolean")
    if isinstance(text, (int, float)):
        value = float(text)
    elif not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration (expected e.g. 30s, 10m, 2h or seconds)")
    else:
        m = _DURATION.fullmatch(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a duration (expected e.g. 30s, 10m, 2h or seconds)")
        value = float(m["num"]) * _DURATION_FACTORS[m["unit"] or ""]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"duration must be greater than zero, got {text!r}")
    if value > MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than the 30-day maximum")
    return value


def parse_cpus(text: str | int | float) -> float:
    """`1`, `0.5`, `2.25` -> CPUs (a CFS quota), at least 0.01."""
    if isinstance(text, bool):
        raise ValueError("expected a number of CPUs like 1 or 0.5, not a boolean")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a number of CPUs (expected e.g. 1 or 0.5)") from None
    if not math.isfinite(value) or value < 0.01 or value > 1024:
        raise ValueError(f"cpus must be between 0.01 and 1024, got {text!r}")
    return value


def parse_count(text: str | int | float, *, what: str, maximum: int = 1 << 31) -> int:
    """A positive whole number (pids, open files); a float only when whole (`1e4`), never truncated."""
    if isinstance(text, bool):
        raise ValueError(f"expected a whole number of {what}, not a boolean")
    if isinstance(text, float):
        value = _whole(text, what)
    else:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise ValueError(f"{text!r} is not a whole number of {what}") from None
    if value <= 0 or value > maximum:
        raise ValueError(f"{what} must be between 1 and {maximum}, got {text!r}")
    return value


def _whole(number: int | float, what: str) -> int:
    """`number` as an int; ValueError if it is not a whole number (2.5, inf, nan)."""
    if isinstance(number, float) and not number.is_integer():
        raise ValueError(f"{number!r} is not a whole number of {what}")
    return int(number)


def format_duration(seconds: float) -> str:
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{seconds:g}s"


def format_size(value: int) -> str:
    for unit, factor in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)
