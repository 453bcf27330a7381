"""Diagnostic logging: the one place that configures loguru.

Diagnostics are for people debugging Vectra Guard (`-v`, `-vv`); they are
not the audit record and not user-facing output. loguru costs ~60 ms to
import, so it is imported only when a message will actually be shown.

Notices are user-facing ("limits are best-effort", "ignoring a project file
owned by another user"): printed as plain `vectraguard: ...` lines on stderr
unless `-q` asked for errors only. Verbosity: -1 (-q) errors only, 0
notices and warnings, 1 (-v) info, 2 (-vv) debug.
"""

from __future__ import annotations

import sys
from typing import Any

_LEVELS = {-1: "ERROR", 0: "WARNING", 1: "INFO", 2: "DEBUG"}
_threshold = 0  # messages at or below this verbosity are shown
_logger: Any = None


def configure(verbosity: int) -> None:
    global _threshold, _logger
    _threshold = max(-1, min(2, verbosity))
    _logger = None


def _get() -> Any:
    global _logger
    if _logger is None:
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level=_LEVELS[_threshold],
                   format="{time:HH:mm:ss.SSS} vectraguard {level}: {message}", colorize=False)
        _logger = logger
    return _logger


def notices_shown() -> bool:
    """False under -q: only errors are wanted."""
    return _threshold >= 0


def notice(line: str, end: str = "\n") -> None:
    """A user-facing line on stderr (already prefixed), unless -q; end="\r\n" while a terminal is raw."""
    if notices_shown():
        print(line, file=sys.stderr, end=end, flush=True)


def debug(message: str) -> None:
    if _threshold >= 2:
        _get().debug(message)


def info(message: str) -> None:
    if _threshold >= 1:
        _get().info(message)


def warning(message: str) -> None:
    if _threshold >= 0:
        _get().warning(message)
