"""The chain head kept elsewhere: `SEQ:HASH`, the anchor `logs verify --head` checks against.

A hash chain alone cannot show that events were removed from its end, or
that the whole chain was re-hashed after an edit: what is left is a valid
chain. Written down somewhere the store's writers cannot reach (a ticket, a
SIEM, another host), the head — the last event's sequence number and hash,
as `logs head` prints it — lets `logs verify --head SEQ:HASH` prove that
today's store still holds that very event and extends it.

Format: decimal sequence number (0 for an empty store), a colon, the
event's SHA-256 chain hash as 64 hexadecimal digits (case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vectraguard.errors import ConfigError, UsageError

_FORM = re.compile(r"(0|[1-9][0-9]{0,18}):([0-9a-fA-F]{64})")
FORM_HINT = "give it as `logs head` prints it: SEQ:HASH (a number, a colon, 64 hexadecimal digits)"


@dataclass(frozen=True)
class Anchor:
    """An event the store must still hold: its sequence number and chain hash (lowercase hex)."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse(text: str, where: str = "--head") -> Anchor:
    """`SEQ:HASH` (surrounding whitespace ignored) as an Anchor; UsageError
    (exit 125) naming `where` for anything else."""
    match = _FORM.fullmatch(text.strip())
    if not match:
        shown = text.strip()[:80]
        raise UsageError(f"vectraguard: {where}: {shown!r} is not a chain head", hint=FORM_HINT)
    return Anchor(int(match.group(1)), match.group(2).lower())


def read(path: Path) -> Anchor:
    """The anchor kept in a file: its first non-empty line is `SEQ:HASH`.
    ConfigError (exit 125) when the file cannot be read or holds no head."""
    try:
        with path.open("rb") as file:
            data = file.read(4096)  # a head is 85 bytes; do not read a large file named by mistake
    except OSError as exc:
        raise ConfigError(f"vectraguard: --head-file {path}: cannot be read ({exc.strerror})") from None
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"vectraguard: --head-file {path}: is empty", hint=FORM_HINT)
    return parse(lines[0], f"--head-file {path}")
