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

The repository's own `core.hooksPath` (relative to the workspace) counts
as one more pattern after the list, taken literally (no globbing): the
hooks that git would run on the host are protected whatever the list says.

Example: `**/.git`, `!.git/objects`, `.git/objects/info` protects every
`.git` at any depth, except the top-level `.git/objects` — but not
`.git/objects/info`, where `alternates` would point git elsewhere.
"""

from __future__ import annotations

import fnmatch
import glob
import posixpath
from collections.abc import Sequence


def why_protected(path: str, patterns: Sequence[str], hooks_path: str = "") -> str | None:
    """The pattern that protects `path` (relative to the workspace root), or None."""
    parts = _fold(path)
    verdict: str | None = None
    for pattern in patterns:
        negated = pattern.startswith("!")
        components = _components(pattern[1:] if negated else pattern)
        if components and _covers(components, parts):
            verdict = None if negated else pattern
    hooks = _hooks_components(hooks_path)
    if hooks is not None and _covers(hooks, parts):
        verdict = f"core.hooksPath={hooks_path}"
    return verdict


def _fold(path: str) -> list[str]:
    # casefold, not lower: it also maps what lower() leaves apart (ß, ligatures).
    return [part.casefold() for part in path.split("/") if part and part != "."]


def _components(pattern: str) -> list[str]:
    return _fold(pattern.strip().strip("/"))


def _hooks_components(hooks_path: str) -> list[str] | None:
    """The hooks directory as literal components; None when it is not inside
    the workspace (then nothing in the tree is git's hooks directory)."""
    if not hooks_path:
        return None
    normal = posixpath.normpath(hooks_path.strip())
    if normal.startswith("/") or normal == ".." or normal.startswith("../"):
        return None
    # "." (hooks in the workspace root itself) covers everything: no components.
    return [glob.escape(part) for part in _fold(normal)]


def _covers(pattern: list[str], parts: list[str]) -> bool:
    """Does `pattern` match `parts` or a leading part of it (a directory above)?"""
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_covers(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _covers(rest, parts[1:])
