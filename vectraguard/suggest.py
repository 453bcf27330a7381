"""Suggestions for mistyped words ("did you mean …?"): one helper for every place that guesses.

Used for unknown keys in configuration files (config/schema.py), unknown
profile names (config/profiles.py) and the command line's unknown commands,
choices and options (cli.py). difflib is imported only when a word is wrong:
nothing here runs on the path of a correct command line.
"""

from __future__ import annotations

from collections.abc import Iterable

# difflib's similarity ratio (0-1) a candidate needs: its own default, which
# takes `rnu` for `run` and `untrsted` for `untrusted` but not `x` for `run`.
CUTOFF = 0.6


def close_match(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word`, or None when none is like it enough."""
    import difflib

    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=CUTOFF)
    return found[0] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'WORD'?)` to append to a message, or "" without a close candidate."""
    found = close_match(word, candidates)
    if found is None:
        return ""
    return f" (did you mean {found!r}?)"
