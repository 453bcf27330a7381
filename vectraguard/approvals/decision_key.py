"""The key of a cached gate decision: everything the decision depends on
that is known before judging, without importing the judge.

What `risk/assess.py` and `approvals/gate.py` read, and where it is in the key:

- the command (argv) and the working directory: as given;
- the resolved profile: its digest (every value, the rules and
  `risk.decisions` of the shipped rule set and of every layer included) and
  its provenance (a finding's `by` names the file and line that decided);
- the profile as its files define it, when the command line set anything
  (`profile_without_command_line`: what the command line widens the network
  by is a finding), likewise;
- the system policy: its file, data and lines (floors, its own rules,
  `approvals.allow_yes`);
- `--yes`;
- whether it is an exec's command in a running session (judged without the
  session's own network: risk/assess.py), so an exec's decision is never a run's;
- the approvals store: its path and generation (approvals/store.py);
- the judge itself: Vectra Guard's version and the identity of the judge's
  source files (`judge_digest`), so that an edited checkout is not served
  decisions its older code made.

What judging reads from the file system (scripts, makefiles, symbolic links,
`~`) is not known before judging: approvals/observed.py notes it, and the
cached entry is checked against it. The clock (a remembered approval's
expiry) bounds the entry's life (approvals/cached_gate.py). The terminal
is never part of a cached decision: an outcome that consulted it is not cached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vectraguard import __version__, errors
from vectraguard.approvals import store
from vectraguard.config import profiles
from vectraguard.config.flags import COMMAND_LINE
from vectraguard.config.policy import Policy
from vectraguard.config.resolved import ResolvedProfile, digest
from vectraguard.digests import sha256_hex

FORMAT = 1  # of the key's parts and of cache entries; a change makes every old entry a miss
PACKAGE = Path(__file__).resolve().parent.parent
# The judge's source: the risk package, the approvals package (the gate, the
# binding, the store's reading) and the allowlist `network-widened` compares with.
JUDGE_SOURCES = ("risk", "approvals", "network/allowlist.py", "network/addresses.py")


def key(argv: tuple[str, ...], cwd: str, profile: ResolvedProfile, sources: profiles.Sources,
        system_policy: Policy | None, *, yes: bool, within_session: bool = False) -> str | None:
    """A hex SHA-256 over the parts above; None when one of them cannot be
    known (an unreadable approvals store): then nothing is cached."""
    generation = store.generation()
    if generation is None:
        return None
    base = profile_without_command_line(profile, sources)
    parts = {
        "format": FORMAT,
        "judge": judge_digest(),
        "argv": list(argv),
        "cwd": cwd,
        "profile": _profile_identity(profile),
        "base": "the same" if base is profile else None if base is None else _profile_identity(base),
        "policy": _policy_identity(system_policy),
        "yes": yes,
        "within_session": within_session,
        "approvals": [str(store.store_path()), generation],
    }
    try:
        text = json.dumps(parts, sort_keys=True)
    except (TypeError, ValueError):  # a value JSON cannot hold: no key, no cache
        return None
    return sha256_hex(text.encode("utf-8", "surrogatepass"))


def profile_without_command_line(profile: ResolvedProfile, sources: profiles.Sources) -> ResolvedProfile | None:
    """The profile as its files define it (trusted project file included);
    None when it does not resolve without the command line's values, so that
    all of its network counts as the command line's. Every key a layer sets
    or appends to has an origin (config/merge.py): none from the command
    line means the command line changed nothing, and `profile` itself is returned."""
    if not any(origin.source == COMMAND_LINE for origin in profile.provenance.values()):
        return profile
    try:
        return profiles.resolve(profile.name, [], sources)
    except errors.ConfigError:
        return None


def judge_digest() -> str:
    """Vectra Guard's version and, for each of the judge's source files, its
    name, size, modification time and inode: an installed release changes
    them only by being replaced; a checkout, whenever it is edited."""
    listing: list[Any] = [__version__]
    for name in JUDGE_SOURCES:
        place = PACKAGE / name
        files = sorted(p for p in place.iterdir() if p.suffix == ".py") if place.is_dir() else [place]
        for path in files:
            try:
                info = os.stat(path)
            except OSError:
                listing.append([str(path), None])
                continue
            listing.append([str(path), info.st_size, info.st_mtime_ns, info.st_ino])
    return sha256_hex(json.dumps(listing).encode())


def _profile_identity(profile: ResolvedProfile) -> list[Any]:
    return [digest(profile), sorted([path, str(origin)] for path, origin in profile.provenance.items())]


def _policy_identity(system_policy: Policy | None) -> Any:
    if system_policy is None:
        return None
    layer = system_policy.layer
    return [layer.source, layer.data, layer.lines, [[path, list(values)] for path, values in layer.appends]]
