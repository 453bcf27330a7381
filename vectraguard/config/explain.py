"""`profile show NAME --explain` as a table that fits the terminal.

Rows are (key, value, set by). The "set by" column is what the command is
for, so it is never pushed off the screen: origins are abbreviated (the
shipped profiles directory is `(shipped)`, the home directory `~`) and
the value column takes what is left, wrapped (a path or file:line is never
split across lines: it is shortened from the left, terminal/fit.py); a value longer than
MAX_VALUE_LINES lines (the shipped risk rules are ~64 KiB) ends with how
much was left out (`--json` gives every value whole). Width in columns:
$COLUMNS, else the terminal's, else 80 when stdout is not a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from vectraguard.terminal import fit
from vectraguard.terminal.escape import printable

DEFAULT_WIDTH = 80
MAX_VALUE_LINES = 4
KEY_MAX = 34  # longer keys wrap: risk.patterns.secret-variables is 32
VALUE_MIN = 20
GAP = "  "
SHIPPED = "(shipped)"


def width(fd: int = 1) -> int:
    """$COLUMNS when it is a positive integer, else the terminal's width on `fd`,
    else DEFAULT_WIDTH (not a terminal: a pipe or a file)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(fd).columns if os.isatty(fd) else DEFAULT_WIDTH
    except OSError:
        return DEFAULT_WIDTH


def abbreviate(origin: str, shipped: str, home: str | None) -> str:
    """A file's path as few columns as it takes to recognise it: under the
    shipped profiles directory `shipped`, `(shipped)/REST`; under `home`, `~/REST`."""
    for prefix, short in ((shipped, SHIPPED), (home, "~")):
        if prefix and origin.startswith(prefix.rstrip("/") + "/"):
            return short + origin[len(prefix.rstrip("/")):]
    return origin


def table(rows: Sequence[tuple[str, str, str]], columns: int) -> list[str]:
    """The lines of the table, each at most `columns` wide when the key and
    origin columns leave VALUE_MIN for values (else as narrow as they allow)."""
    rows = [(printable(key), printable(value), printable(origin)) for key, value, origin in rows]
    key_w = min(KEY_MAX, max([3, *(len(key) for key, _, _ in rows)]))
    # Never narrower than the shortest form of each origin (`…/default.yaml:105`: terminal/fit.py).
    least = max([6, *(_least(origin) for _, _, origin in rows)])
    origin_w = max(least, min(max(6, (columns - key_w) // 2), max([6, *(len(origin) for _, _, origin in rows)])))
    value_w = max(VALUE_MIN, columns - key_w - origin_w - 2 * len(GAP))
    lines = [_line(("key", "value", "set by"), (key_w, value_w, origin_w)),
             _line(("-" * key_w, "-" * value_w, "-" * origin_w), (key_w, value_w, origin_w))]
    for key, value, origin in rows:
        cells = [_wrap(key, key_w), _value_lines(value, value_w), _wrap(origin, origin_w)]
        for index in range(max(len(cell) for cell in cells)):
            parts = tuple(cell[index] if index < len(cell) else "" for cell in cells)
            lines.append(_line(parts, (key_w, value_w, origin_w)))
    return lines


def _line(parts: Sequence[str], widths: Sequence[int]) -> str:
    return GAP.join(part.ljust(w) for part, w in zip(parts, widths)).rstrip()


def _wrap(text: str, w: int) -> list[str]:
    return fit.wrap(text, w)


def _least(origin: str) -> int:
    """The columns the shortest form of `origin` takes: `…/NAME:LINE` for a file, else its longest word."""
    if "/" in origin:
        return len(fit.ELLIPSIS + "/" + origin.rsplit("/", 1)[1])
    return max([0, *(len(word) for word in origin.split())])


def _value_lines(value: str, w: int) -> list[str]:
    lines = fit.wrap(value, w, whole_names=False)
    if len(lines) <= MAX_VALUE_LINES:
        return lines
    kept = lines[:MAX_VALUE_LINES]
    # Room for the marker, whose count is of characters not shown (about: wrapping drops spaces).
    last = kept[-1][: max(0, w - len(f"… +{len(value)} (--json)") - 1)]
    left_out = max(0, len(value) - sum(len(line) for line in kept[:-1]) - len(last))
    kept[-1] = f"{last} … +{left_out} (--json)".strip()
    return kept
