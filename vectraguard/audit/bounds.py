"""How big a record can get: the caps on what the sandbox or the command
line can grow in a run's records, and the helpers that apply them.

The audit store keeps a reserve for the largest record a run can produce, so
every list in a record that someone else controls keeps its first items in
full and counts the rest, and every text they can make long is cut, with a
mark that says how much went. Sizes are in bytes of the record as stored
(compact JSON, UTF-8; store.canonical). What stays whole: argv, the command
of a check and the environment's names (the kernel bounds them: ARG_MAX,
MAX_ARG_STRLEN), and what comes from configuration (mounts, the profile's
network section). The caps are stated in vectraguard-profile(5), WHAT
RECORDS KEEP; the network's own aggregation is network/attempts.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from vectraguard.digests import sha256_hex

TEXT_BYTES = 256  # a host, a per-attempt reason, a path, each field of a finding or approval
REASON_BYTES = 2048  # the reason of a refused, finished or checked record
FINDINGS_IN_FULL = 10  # findings per approval entry, and of a check
APPROVAL_ENTRIES = 1  # approval entries per record (the gate gives a run one: the decision that let it go)
RUNS_IN_FULL = 10  # files an approval binds (approvals/bound_files.py)
PROTECTED_IN_FULL = 20  # protected paths an `rw` run changed
PATHS_IN_FULL = 50  # each list of paths in a workspace-applied or workspace-discarded event
NETWORK_IN_FULL = 20  # connection attempts recorded one by one; the rest are counted per destination
NETWORK_DESTINATIONS = 20  # destinations counted by name after those; the others in one bucket
OTHERS_COUNTED = 10_000  # distinct destinations the "others" bucket tells apart (memory stays bounded)
SANDBOX_BYTES = 32 * 1024  # the resolved profile and container spec a `started` record keeps (sessions/snapshot.py)

_MARK_BYTES = 24  # room kept for the cut mark, "…[+NNNNNNNNNN chars]"
T = TypeVar("T")


def stored_bytes(char: str) -> int:
    """What one character costs in a stored record: JSON escapes (`\\"`,
    `\\u001b`), UTF-8, and an undecodable byte (a lone surrogate) written as
    an escape by store.recordable."""
    code = ord(char)
    if char in '"\\\n\r\t\b\f':
        return 2
    if code < 0x20:
        return 6
    if 0xD800 <= code <= 0xDFFF:
        return 6
    return len(char.encode())


def cut(text: str, max_bytes: int) -> str:
    """`text` if it costs at most `max_bytes` stored, else its beginning and
    a mark naming how many characters went: `abc…[+1234 chars]`."""
    if len(text) * 6 <= max_bytes:  # the common case, without counting
        return text
    used, budget = 0, max_bytes - _MARK_BYTES
    for index, char in enumerate(text):
        used += stored_bytes(char)
        if used > budget:
            return f"{text[:index]}…[+{len(text) - index} chars]"
    return text


def first(items: Sequence[T], count: int) -> tuple[list[T], int]:
    """The first `count` items, and how many were left out."""
    return list(items[:count]), max(0, len(items) - count)


def findings(found: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`{"findings": [the first FINDINGS_IN_FULL, each text cut]}`, plus
    `findings_omitted: N` when there were more."""
    kept, omitted = first(found, FINDINGS_IN_FULL)
    return {"findings": [_texts(f) for f in kept], **({"findings_omitted": omitted} if omitted else {})}


def approvals(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Approval entries with their findings and bound files capped and each
    text cut; entries beyond APPROVAL_ENTRIES become one count in the last kept."""
    kept, omitted = first(entries, APPROVAL_ENTRIES)
    bounded = [_approval(entry) for entry in kept]
    if omitted:
        bounded[-1]["entries_omitted"] = omitted
    return bounded


def _approval(entry: Mapping[str, Any]) -> dict[str, Any]:
    other = {key: value for key, value in entry.items() if key not in ("findings", "runs")}
    bounded: dict[str, Any] = _texts(other)
    if "findings" in entry:
        bounded.update(findings(entry["findings"]))
    if "runs" in entry:
        runs, omitted = first(entry["runs"], RUNS_IN_FULL)
        bounded["runs"] = [_texts(run) for run in runs]
        if omitted:
            bounded["runs_omitted"] = omitted
    return bounded


def protected_changed(paths: Sequence[str]) -> dict[str, Any]:
    """The `rw` workspace's changed protected paths: the first PROTECTED_IN_FULL, each cut, and a count."""
    kept, omitted = first(paths, PROTECTED_IN_FULL)
    return {"protected_changed": [cut(p, TEXT_BYTES) for p in kept],
            **({"protected_changed_omitted": omitted} if omitted else {})}


def listed(key: str, items: Sequence[Any]) -> dict[str, Any]:
    """A workspace event's list of paths (or of {path, action, kind, sha256}):
    `{key: the first PATHS_IN_FULL, texts cut}`; when there were more,
    `KEY_omitted: N` and `KEY_sha256`, the SHA-256 of the whole list as
    compact ASCII JSON with sorted keys (the paths an apply wrote are all in the
    history of the layer's record, layer.json, as long as the layer is kept)."""
    kept, omitted = first(items, PATHS_IN_FULL)
    bounded = [cut(item, TEXT_BYTES) if isinstance(item, str) else _texts(item) for item in kept]
    if not omitted:
        return {key: bounded}
    # ASCII JSON (non-ASCII as \u escapes): any string hashes, a lone surrogate of a file name included.
    whole = json.dumps(list(items), sort_keys=True, separators=(",", ":"))
    digest = sha256_hex(whole.encode())
    return {key: bounded, f"{key}_omitted": omitted, f"{key}_sha256": digest}


def _texts(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Each text value cut to TEXT_BYTES; numbers, booleans and None as they are."""
    return {key: cut(value, TEXT_BYTES) if isinstance(value, str) else
            value if value is None or isinstance(value, (bool, int, float)) else cut(str(value), TEXT_BYTES)
            for key, value in mapping.items()}


def whole_or_digest(value: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """`value` if it costs at most `max_bytes` stored (compact JSON, UTF-8),
    else `{"omitted_bytes": N, "sha256": SHA-256 of that JSON}`: a document
    made from configuration is kept whole or not at all, never cut."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= max_bytes:
        return value
    return {"omitted_bytes": size, "sha256": sha256_hex(text.encode("utf-8", "surrogatepass"))}
