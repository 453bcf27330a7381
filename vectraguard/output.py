"""The one way commands print results on stdout: a table, or JSON.

Diagnostics and progress go to stderr elsewhere; stdout carries only what a
user or a script asked for, so `--json` output can always be piped to a parser.
tabulate is imported only when a table is actually printed. Text that came
from a sandboxed command (its argv, file names) reaches the terminal only
through `printable` (vectraguard/terminal/escape.py, re-exported here), and
JSON only with the same characters escaped: escape sequences in it must not
drive the user's terminal, bidi controls must not reorder what the user reads,
and a lone surrogate (a non-UTF-8 file name, decoded with surrogateescape) must
not make the strict UTF-8 stdout raise.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from vectraguard.terminal.escape import printable, unsafe

__all__ = ["json_text", "print_json", "print_table", "printable", "unsafe"]

# What json.dumps(ensure_ascii=False) may leave raw that needs a look: all but
# printable ASCII and the newlines of its own indentation (inside strings it
# escapes C0 controls, so a raw newline is never part of one).
_NOT_PLAIN_ASCII = re.compile(r"[^\n\x20-\x7e]")


def print_table(rows: list[dict[str, Any]], columns: list[str],
                wrap: dict[str, float] | None = None, width: int | None = None) -> None:
    """Rows as a plain-text table with the given columns, in that order. With
    `width` (columns of the terminal) and `wrap` (column -> its share of what
    the other columns leave), those columns are wrapped to fit — a path or a
    file:line never split across lines (terminal/fit.py: tabulate's own
    wrapping would cut it anywhere)."""
    from tabulate import tabulate

    from vectraguard.terminal import fit

    cells = [["" if row.get(column) is None else printable(str(row[column])) for column in columns] for row in rows]
    limits: list[int | None] | None = None
    if wrap and width:
        fixed = sum(max([len(column), *(len(row[i]) for row in cells)]) + 2
                    for i, column in enumerate(columns) if column not in wrap)
        room = max(20 * len(wrap), width - fixed - 2 * len(wrap))
        limits = _fitted([max(20, int(room * wrap[column])) if column in wrap else None for column in columns],
                         [max([0, *(len(w) for row in cells for w in row[i].split() if fit.names_a_file(w))])
                          for i in range(len(columns))], room)
        cells = [["\n".join(fit.wrap(cell, limit)) if limit else cell for cell, limit in zip(row, limits)]
                 for row in cells]
    # disable_numparse: IDs like "1234e5" must not be reformatted as numbers.
    sys.stdout.write(tabulate(cells, headers=columns, tablefmt="simple", disable_numparse=True) + "\n")


def _fitted(limits: list[int | None], paths: list[int], room: int) -> list[int | None]:
    """The wrapped columns' widths (`limits`, None: not wrapped), each widened
    to its longest path (`paths`: columns) where the others can give up the
    columns (down to 20 or their own longest path): a path is then shown whole
    on a line of its own rather than shortened. Their sum stays `room`."""
    widths = list(limits)
    for i, mine in enumerate(limits):
        if mine is None or paths[i] <= mine:
            continue
        for j, theirs in enumerate(widths):
            current = widths[i]
            if j == i or theirs is None or current is None:
                continue
            give = min(theirs - max(20, paths[j]), paths[i] - current)
            if give > 0:
                widths[j], widths[i] = theirs - give, current + give
    return widths


def print_json(obj: Any) -> None:
    """One JSON document, indented for people, stable key order for diffs; ordinary
    non-ASCII text stays readable, what `unsafe` names is escaped."""
    sys.stdout.write(json_text(obj) + "\n")


def json_text(obj: Any, indent: int | None = 2) -> str:
    """As print_json writes it (indent=None: one line, as JSON Lines want): still valid
    JSON, decoding to the same strings (a lone surrogate comes back as itself), but with
    no character raw that `unsafe` names."""
    text = json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False)
    # Such characters can only be inside JSON strings (the structure is ASCII), where a
    # \uXXXX escape stands for the same character.
    return _NOT_PLAIN_ASCII.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if not unsafe(char):
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells a character beyond the BMP as a UTF-16 surrogate pair
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"
