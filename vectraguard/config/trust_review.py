"""What a project file about to be trusted changes, profile by profile.

Compared with the version last trusted in that directory (its content is kept
by config/trust.py) or, on a first trust, with what runs there without a
project file: each profile the file defines (and the profile runs use by
default) is resolved both ways and compared by config/widening.py.
"""

from __future__ import annotations

import difflib

from vectraguard.config import profiles
from vectraguard.config.layers import Layer
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.config.widening import Change, compare
from vectraguard.errors import VGError
from vectraguard.records import record


@record
class ProfileReview:
    """The changes to one profile; `note` says what it was compared with, when not itself."""

    name: str
    changes: tuple[Change, ...]
    note: str = ""


def review(new: Layer, old: Layer | None) -> list[ProfileReview]:
    """Every profile `new` defines or names as default, compared with `old`'s (None: no project file)."""
    before, after = profiles.Sources(old), profiles.Sources(new)
    names = dict.fromkeys([after.default_name(), *after.project_profiles(), *before.project_profiles()])
    reviews = []
    for name in names:
        if name not in after.project_profiles() and name != after.default_name():
            reviews.append(ProfileReview(name, (), "no longer defined by the file"))
            continue
        now = profiles.resolve(name, [], after)
        was, note = _baseline(name, new, before)
        if was is not None:
            changes = tuple(compare(was, now))
            if changes or note:
                reviews.append(ProfileReview(name, changes, note))
    if before.default_name() != after.default_name():
        was = _resolved(before.default_name(), before)
        if was is not None:
            now = profiles.resolve(after.default_name(), [], after)
            reviews.insert(0, ProfileReview("(default)", tuple(compare(was, now)),
                                            f"runs without -p now use {after.default_name()} "
                                            f"instead of {before.default_name()}"))
    return reviews


def _baseline(name: str, new: Layer, before: profiles.Sources) -> tuple[ResolvedProfile | None, str]:
    was = _resolved(name, before)
    if was is not None:
        return was, ""
    # A profile new here: compared with the one it builds on.
    body = new.data.get("profiles", {}).get(name, {})
    parent = str(body.get("extends", profiles.IMPLICIT_PARENT)) if isinstance(body, dict) else profiles.IMPLICIT_PARENT
    return _resolved(parent, before), f"new profile; compared with {parent}, which it extends"


def _resolved(name: str, sources: profiles.Sources) -> ResolvedProfile | None:
    try:
        return profiles.resolve(name, [], sources)
    except VGError:
        return None


def text_diff(old: str, new: str, label: str) -> list[str]:
    """A unified diff of the two versions (lines without their ends); the caller escapes them."""
    return [line.rstrip("\n") for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        f"{label} (last trusted)", f"{label} (now)", n=2)]
