"""Protected paths: what `apply` holds back unless a person names it.

A sandbox that can write where the host later runs code (git's config,
hooks and `commondir`, direnv's `.envrc`, editor tasks, CI files, the
project file) can make the host run its code. Such paths are listed in a
profile's `filesystem.protected`; `changes` flags them and `apply` brings
them in only when named with `--include-protected`.

Pattern language (`filesystem.protected`, one pattern per entry):

- a path relative to the workspace root, '/'-separated; a leading '/' is
  allowed and means the same (patterns are always anchored at the root);
- each component is a shell glob (`*`, `?`, `[...]`, as in fnmatch) that
  matches one component of the path; a component `**` matches any number
  of components (none included), so a leading `**/` means "at any depth";
- matching ignores letter case (`.GIT` is `.git`: case-insensitive
  filesystems and git itself treat them alike);
- a pattern protects the path it matches *and everything beneath it*;
- a pattern starting with `!` un-protects what it matches (and what is
  beneath it); the last pattern that matches a path decides.

`findings` are (path, reason) pairs a session found (what git itself would
read or run: its configuration's hooks directory, included files, planted
repositories, forged objects...: workspace/gitguard.py). Each counts after
the list, taken literally (no globbing), so no `!` pattern undoes it.

Example: `**/.git`, `!.git/objects`, `.git/objects/info` protects every
`.git` at any depth, except the top-level `.git/objects` — but not
`.git/objects/info`, where `alternates` would point git elsewhere.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import posixpath
from collections.abc import Iterator, Sequence

GLOB_CHARS = frozenset("*?[")


def why_protected(path: str, patterns: Sequence[str], findings: Sequence[tuple[str, str]] = ()) -> str | None:
    """Why `path` (relative to the workspace root) is protected: the first finding
    that covers it ("PATH: reason"), else the pattern that decides; None if nothing does."""
    path_ = _Path(_fold(path))
    verdict: str | None = None
    for pattern in patterns:
        negated = pattern.startswith("!")
        segments = _segments(pattern[1:] if negated else pattern)
        if segments != ((),) and _covers(segments, path_):
            verdict = None if negated else pattern
    for found, reason in findings:
        literal = _literal_components(found)
        if literal is not None and _covers((tuple(literal),), path_):
            return f"{found}: {reason}"
    return verdict


def _fold(path: str) -> list[str]:
    # casefold, not lower: it also maps what lower() leaves apart (ß, ligatures). Folded
    # whole (it maps each character alone, never to '/'): a path can have thousands of parts.
    parts = path.casefold().split("/")
    if "" in parts or "." in parts:
        parts = [part for part in parts if part and part != "."]
    return parts


@functools.lru_cache(maxsize=256)
def _segments(pattern: str) -> tuple[tuple[str, ...], ...]:
    """The pattern's components cut at each `**`: 'a/**/b/c' -> (('a',), ('b', 'c'))."""
    segments: list[tuple[str, ...]] = [()]
    for component in _fold(pattern.strip().strip("/")):
        if component == "**":
            segments.append(())
        else:
            segments[-1] += (component,)
    return tuple(segments)


def _literal_components(path: str) -> list[str] | None:
    """A found path as literal (glob-escaped) components; None when it is not
    inside the workspace (then it covers nothing in the tree)."""
    if not path:
        return None
    normal = posixpath.normpath(path)
    if normal.startswith("/") or normal == ".." or normal.startswith("../"):
        return None
    # "." (the workspace root itself) covers everything: no components.
    return [glob.escape(part) for part in _fold(normal)]


class _Path:
    """A folded path's components, and the set of them (a deep path repeats its names:
    a pattern naming none of them is answered at once)."""

    def __init__(self, parts: list[str]) -> None:
        self.parts = parts
        self.names = frozenset(parts)


def _covers(segments: tuple[tuple[str, ...], ...], path: _Path) -> bool:
    """Does the pattern match the path or a leading part of it (a directory above)?

    The first segment must match at the start; each next one (after a `**`) is
    searched for after the previous, leftmost first — which never loses a match,
    since `**` takes any number of components —; what follows the last is beneath
    the match. No recursion and no copies of the parts: a path can be thousands of
    components deep, and every path of a change set is asked about.
    """
    first, rest = segments[0], segments[1:]
    if not _matches_at(first, path.parts, 0):
        return False
    at = len(first)
    for segment in rest:
        found = _find(segment, path, at)
        if found < 0:
            return False
        at = found + len(segment)
    return True


def _matches_at(segment: tuple[str, ...], parts: list[str], at: int) -> bool:
    if at + len(segment) > len(parts):
        return False
    return all(_component_matches(parts[at + i], glob_) for i, glob_ in enumerate(segment))


def _component_matches(part: str, glob_: str) -> bool:
    return part == glob_ if GLOB_CHARS.isdisjoint(glob_) else fnmatch.fnmatchcase(part, glob_)


def _find(segment: tuple[str, ...], path: _Path, start: int) -> int:
    """The first position at or after `start` where `segment` matches; -1 if none."""
    if not segment:
        return start
    for at in _candidates(segment[0], path, start, len(path.parts) - len(segment)):
        if _matches_at(segment, path.parts, at):
            return at
    return -1


def _candidates(glob_: str, path: _Path, start: int, last: int) -> Iterator[int]:
    """Positions start..last whose component matches `glob_`, in order. A literal is
    found by list.index; a glob is tried once per distinct component, not once per
    component."""
    parts = path.parts
    if start > last:
        return
    if GLOB_CHARS.isdisjoint(glob_):
        names = {glob_} & path.names
    else:
        names = {name for name in path.names if fnmatch.fnmatchcase(name, glob_)}
    if len(names) == 1:
        (name,) = names
        at = start
        while True:
            try:
                at = parts.index(name, at, last + 1)
            except ValueError:
                return
            yield at
            at += 1
    elif names:
        yield from (at for at in range(start, last + 1) if parts[at] in names)
