"""Session ids as people type them: the whole id, or its first or its last
characters, for every command that takes an ID (logs show/replay, changes,
diff, apply, discard).

Ids are time-ordered (audit/record.py `new_session_id`: 12 hex digits of
milliseconds, then 10 random ones), so sessions started the same day share
their first 6 or 7 characters and a prefix tells them apart only when it is
long; the last characters are random: 8 of them name one session in a store
of 100,000 but for about 1 in 40,000 ids. A fragment that names several
sessions is refused, listing them.
"""

from __future__ import annotations

from collections.abc import Iterable

from vectraguard import errors

SHOWN = 10  # candidates listed when a fragment is ambiguous


def matching(given: str, ids: Iterable[str]) -> list[str]:
    """The ids that start or end with `given`, sorted."""
    return sorted({i for i in ids if given and (i.startswith(given) or i.endswith(given))})


def one(given: str, matches: list[str], *, what: str, hint: str, missing: str = "") -> str:
    """The single id in `matches` (which may stop after SHOWN + 1); UsageError
    (125) when there is none, or several (naming up to SHOWN of them, one a
    line). `what` names the kind of thing looked for ("session"), `missing`
    what is not there (default: "no WHAT"), `hint` where to find ids."""
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise errors.UsageError(f"vectraguard: {missing or 'no ' + what} {given!r}", hint=hint)
    count = f"more than {SHOWN}" if len(matches) > SHOWN else str(len(matches))
    raise errors.UsageError(f"vectraguard: {given!r} names {count} {what}s",
                            hint="give more of the first or the last characters of the id", details=matches[:SHOWN])
