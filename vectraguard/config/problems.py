"""Located configuration problems, collected and reported together."""

from __future__ import annotations

from collections.abc import Iterable

from vectraguard.errors import ConfigError, VGError
from vectraguard.records import ordered_record


@ordered_record
class Origin:
    """Where a value came from: a file and line, or a command-line flag."""

    source: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@ordered_record
class Problem:
    """One thing wrong with the configuration, with where it was set."""

    origin: Origin
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.key_path}: " if self.key_path else ""
        return f"{self.origin}: {where}{self.message}"


def raise_if_any(problems: Iterable[Problem], summary: str, error: type[VGError] = ConfigError) -> None:
    found = sorted(set(problems))
    if found:
        raise error(summary, details=[str(p) for p in found])


def dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path)
