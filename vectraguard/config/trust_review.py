"""What a project file about to be trusted changes, profile by profile.

Compared with the version last trusted in that directory (its content is kept
by config/trust.py) or, on a first trust, with what runs there without a
project file: every profile — those the file defines or no longer defines,
the one runs use by default, and the shipped, system and user ones (a file
may adjust a profile they extend) — is resolved both ways and compared by
config/widening.py; those that differ are shown.
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
    """Every profile whose resolution may differ between `old` (None: no project
    file) and `new`: those either file defines, the default one, and every other
    profile available (a file can adjust one a shipped profile extends)."""
    before, after = profiles.Sources(old), profiles.Sources(new)
    names = dict.fromkeys([after.default_name(), *after.project_profiles(), *before.project_profiles(),
                           *profiles.available(after), *profiles.available(before)])
    reviews = [item for name in names if (item := _profile(name, new, before, after)) is not None]
    if before.default_name() != after.default_name():
        was = _resolved(before.default_name(), before)
        if was is not None:
            now = profiles.resolve(after.default_name(), [], after)
            reviews.insert(0, ProfileReview("(default)", tuple(compare(was, now)),
                                            f"runs without -p now use {after.default_name()} "
                                            f"instead of {before.default_name()}"))
    return reviews


def _profile(name: str, new: Layer, before: profiles.Sources, after: profiles.Sources) -> ProfileReview | None:
    """The review of one profile; None when nothing about it changed."""
    dropped = name in before.project_profiles() and name not in after.project_profiles()
    now = _resolved(name, after)
    if now is None:
        # Runs naming it fail now: nothing widens.
        return ProfileReview(name, (), "no longer defined by the file, nor anywhere else") if dropped else None
    was, note = _baseline(name, new, before)
    if was is None:
        return None
    if dropped:
        note = "no longer defined by the file; compared with what it resolves to without it"
    changes = tuple(compare(was, now))
    return ProfileReview(name, changes, note) if changes or note else None


def _baseline(name: str, new: Layer, before: profiles.Sources) -> tuple[ResolvedProfile | None, str]:
    was = _resolved(name, before)
    if was is not None:
        return was, ""
    if name not in new.data.get("profiles", {}):
        # Not the file's, yet it resolves only with it (it extends one the file defines).
        return (_resolved(profiles.IMPLICIT_PARENT, before),
                f"resolves only with this file; compared with {profiles.IMPLICIT_PARENT}")
    # A profile new here: compared with the one it builds on.
    body = new.data.get("profiles", {}).get(name, {})
    parent = str(body.get("extends", profiles.IMPLICIT_PARENT)) if isinstance(body, dict) else profiles.IMPLICIT_PARENT
    return _resolved(parent, before), f"new profile; compared with {parent}, which it extends"


def _resolved(name: str, sources: profiles.Sources) -> ResolvedProfile | None:
    try:
        return profiles.resolve(name, [], sources)
    except VGError:
        return None


def text_diff(old: str, new: str, label: str, before: str = "last trusted") -> list[str]:
    """A unified diff of the two versions (lines without their ends); the caller escapes them."""
    return [line.rstrip("\n") for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        f"{label} ({before})", f"{label} (now)", n=2)]
