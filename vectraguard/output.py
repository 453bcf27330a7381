"""The one way commands print results on stdout: a table, or JSON.

Diagnostics and progress go to stderr elsewhere; stdout carries only what a
user or a script asked for, so `--json` output can always be piped to a parser.
tabulate is imported only when a table is actually printed. Text that came
from a sandboxed command (its argv, file names) reaches the terminal only
through `printable`: escape sequences in it must not drive the user's terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def printable(text: str) -> str:
    """Control characters (escape sequences, carriage returns ...) made visible."""
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        else:
            out.append(repr(char)[1:-1] if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(out)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as a plain-text table with the given columns, in that order."""
    from tabulate import tabulate

    cells = [["" if row.get(column) is None else printable(str(row[column])) for column in columns] for row in rows]
    # disable_numparse: IDs like "1234e5" must not be reformatted as numbers.
    sys.stdout.write(tabulate(cells, headers=columns, tablefmt="simple", disable_numparse=True) + "\n")


def print_json(obj: Any) -> None:
    """One JSON document, indented for people, stable key order for diffs."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
