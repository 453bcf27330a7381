"""Time arguments of the command line (`logs list --since/--until`, `logs prune
--before`): one parser, so every option reads a time the same way.

Accepted forms, read as journalctl(1) reads them:

- `now`; `today`, `yesterday`, `tomorrow`: the start (00:00) of that day in
  local time;
- ISO 8601 (`datetime.fromisoformat`): `2026-11-30T10:24:00+01:00`,
  `2026-11-30T09:24:00Z`, `2026-11-30 10:24`; without a zone it is local
  time; a bare date (`2026-11-30`) is the start of that day, local;
- `@SECONDS`: seconds since the Unix epoch;
- relative ages, read by dateparser's relative-time parser
  (https://dateparser.readthedocs.io) with strict parsing: `90m`, `36h`,
  `7d`, `2 hours ago`, `3 weeks ago`, `1 month ago`, `1h30m`.

Anything else (`March`, `5`, `yesterday 10:00`, an empty value) is refused
rather than guessed at.

The result is an aware datetime in UTC. The audit store keeps times as
`YYYY-MM-DDTHH:MM:SS.mmmZ` text (audit/record.py `now`); `store_form` gives a
time in that form, which compares with them as times (fixed width, UTC).

dateparser costs ~60 ms to import and ~100 ms to load its English data: it is
imported here, inside `parse_time`, only when a value is not one of the exact
forms above, never on the path of `run`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from vectraguard import errors

FORMS = ("ISO 8601 (2026-11-30T10:24:00+01:00, 2026-11-30 10:24; no zone = local time), a date "
         "(2026-11-30 = the start of that day, local), an age (90m, 36h, 7d, '2 hours ago'), @SECONDS, "
         "or now, today, yesterday, tomorrow (the start of that day, local)")
_DAY_WORDS = {"today": 0, "yesterday": -1, "tomorrow": 1}
_EPOCH = re.compile(r"@([0-9]{1,12})(\.[0-9]{1,9})?")
# dateparser reads only relative ages here (see _general); "UTC" with a UTC
# RELATIVE_BASE keeps it from asking tzlocal for the local zone at all.
_DATEPARSER_SETTINGS: dict[str, object] = {
    "PARSERS": ["relative-time"], "STRICT_PARSING": True, "TIMEZONE": "UTC", "TO_TIMEZONE": "UTC",
    "RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "past"}
_TIME_OF_DAY = re.compile(r"\d\s*(:|[ap]\.?m\b)", re.IGNORECASE)
# What a relative age is written with: dateparser skips what it does not
# know rather than failing (`1,5h` would be 5 hours; `1d` and a stray byte, a day).
_RELATIVE_TEXT = re.compile(r"[A-Za-z0-9 .+-]+")


def parse_time(text: str, option: str) -> datetime:
    """`text`, given to `option` (named in the error), as an aware UTC datetime.

    Raises errors.UsageError (exit 125) naming the option and the accepted
    forms when `text` is none of them or lies outside what a datetime holds.
    """
    value = text.strip()
    try:
        found = _exact(value) or _general(value)
    except (ValueError, OverflowError):
        found = None
    if found is None:
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise errors.UsageError(f"vectraguard: {option}: {shown!r} is not a time; give {FORMS}")
    return found


def store_form(moment: datetime) -> str:
    """`moment` as the audit store writes times: `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_text(stored: str | None) -> str:
    """A time in the store's form as a table shows it: local time, to the second
    (`2026-11-30 10:24:00`), which parse_time reads back as the same second.
    Text that is not in that form is returned as it is (the table escapes it)."""
    try:
        moment = datetime.fromisoformat(stored or "")
    except ValueError:
        return stored or ""
    if moment.tzinfo is None:
        return stored or ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _exact(value: str) -> datetime | None:
    """The forms read without dateparser: words, ISO 8601, dates, @SECONDS."""
    word = value.lower()
    if word == "now":
        return datetime.now(UTC)
    if word in _DAY_WORDS:
        return _local_midnight(date.today() + timedelta(days=_DAY_WORDS[word]))
    epoch = _EPOCH.fullmatch(value)
    if epoch:
        return datetime.fromtimestamp(float(value[1:]), UTC)
    if not value[:1].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A naive time (a date alone is its midnight) is local: astimezone() reads it so.
    return moment.astimezone(UTC)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time()).astimezone(UTC)


def _general(value: str) -> datetime | None:
    """Relative ages, by dateparser; None when it reads nothing.

    Only its relative-time parser, counted back from now in UTC: absolute
    English dates ("March", "Tuesday 5pm") would be read in dateparser's
    idea of the local zone (tzlocal, which fails on a POSIX TZ such as
    `CET-1`) and guessed at when incomplete; ISO 8601 says it exactly. For
    the same reason a time of day (`yesterday 10:00`) is not taken here, nor
    any character but ASCII letters, digits, space and `.+-`.
    """
    if len(value) > 100 or not _RELATIVE_TEXT.fullmatch(value) or _TIME_OF_DAY.search(value):
        return None  # (100: nobody types more; dateparser's regexes need not see it)
    import dateparser

    settings = {**_DATEPARSER_SETTINGS, "RELATIVE_BASE": datetime.now(UTC).replace(tzinfo=None)}
    found = dateparser.parse(value, languages=["en"], settings=settings)
    return None if found is None else found.astimezone(UTC)
