"""Text wrapped to a column without breaking a path or a file:line.

textwrap breaks a word longer than the column anywhere: `(shipped)/default.yaml:105`
became `…:10` / `5` (read as line 10) and `/opt/vectraguard/...` became `/o` /
`pt/vectraguard/...`. Here a word that names a file (it holds a `/`, or
ends in `:LINE`) is never split across lines: it moves to a line of its
own, and when even that is too narrow it is shortened from the left at a
`/` (`…/default.yaml:105`: the name and line, which identify it, stay;
a name wider than the column is left whole, the line wider).
Other over-long words (a hash, a long value) are cut as textwrap cuts them.
Used by `profile show --explain` (config/explain.py) and the tables of
output.py (`doctor`).
"""

from __future__ import annotations

import re
import textwrap

ELLIPSIS = "…"
_FILE_LINE = re.compile(r":\d+[),;.]*$")
# Characters of patterns and code, not of the paths people read (a risk rule's regex holds `/` too).
_NOT_IN_PATHS = re.compile("[|\\\\^$*?\\[\\]{}<>'\"`]")


def names_a_file(word: str) -> bool:
    """Whether `word` is a path or a FILE:LINE (never split across lines)."""
    return ("/" in word or bool(_FILE_LINE.search(word))) and not _NOT_IN_PATHS.search(word)


def shorten_left(word: str, width: int, whole_name: bool = True) -> str:
    """`word` in at most `width` columns: whole, else `…` and its end from a
    `/` on (`…/default.yaml:105`). When even `…/NAME` is wider than `width`:
    that (the line is wider: a file's name is what identifies it), or with
    `whole_name` False (a value, whose whole is a --json away) `…` and as
    much of its end as fits."""
    if len(word) <= width:
        return word
    cuts = [at for at in range(1, len(word)) if word[at] == "/"]
    for at in cuts:
        if len(word) - at + len(ELLIPSIS) <= width:
            return ELLIPSIS + word[at:]
    if not whole_name:
        return ELLIPSIS + word[len(word) - max(1, width - len(ELLIPSIS)):]
    return ELLIPSIS + word[cuts[-1]:] if cuts else word


def wrap(text: str, width: int, whole_names: bool = True) -> list[str]:
    """The lines of `text` (its own newlines kept) at most `width` wide, words
    naming files kept whole (shortened from the left when longer than `width`;
    `whole_names`: as shorten_left's `whole_name`)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += _wrap_paragraph(paragraph, max(1, width), whole_names)
    return lines or [""]


def _wrap_paragraph(paragraph: str, width: int, whole_names: bool) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in paragraph.split():
        for piece in _pieces(word, width, whole_names):
            if current and len(current) + 1 + len(piece) <= width:
                current += " " + piece
                continue
            if current:
                lines.append(current)
            current = piece
    lines.append(current)
    return lines


def _pieces(word: str, width: int, whole_names: bool) -> list[str]:
    if len(word) <= width:
        return [word]
    if names_a_file(word):
        return [shorten_left(word, width, whole_names)]
    return textwrap.wrap(word, width, break_long_words=True, break_on_hyphens=False)
