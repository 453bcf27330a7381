"""The mount deny list of a run, kept between runs and reused only when
every path it was resolved through is as it was.

Building the list (sandbox/mounts.py `denied_sources`: ~270 rules, each
kept as written and resolved through symbolic links) costs ~5 ms of every
`vectraguard run`; checking that none of what it looked at changed costs
one lstat(2) per path it looked at. What the list depends on, and where
that is checked:

- the key (SHA-256 over canonical JSON): the caller's home and every login
  home with how it is named (from the password database, read each run),
  Vectra Guard's own state directories, the system policy's denied paths
  and allowed sockets, the environment variables the rules read (TMPDIR,
  XDG_RUNTIME_DIR, XDG_DATA_HOME, XDG_CONFIG_HOME,
  CONTAINERS_STORAGE_CONF), the effective uid, where Vectra Guard's code,
  profiles, schemas and virtual environment are, the stat identity of each
  storage.conf the rules read (private_cache.identity) and of the code
  that builds the rules (`code_identity`);
- the entry's paths (checked on every use): each path the resolution
  lstat'ed, whether it was a symbolic link, and for a link what it
  resolved to (os.path.realpath, again, on use). Each path is its parent's
  resolved form plus one name, and parents come first, so equal answers
  for all of them give the very same resolution. A path that was no link
  is taken as unchanged without an lstat when its directory's identity
  (device, inode, mtime, ctime...) is as recorded: an entry created,
  removed or replaced there changes the directory's mtime and ctime. A
  mount does not, but it cannot make a link appear (mount(2) follows the
  target's links), and one over a directory changes that directory's
  identity. Directories of kernel file systems and those changed within
  private_cache.RACY_S of the entry have their entries lstat'ed each time.

An entry whose storage.conf changed less than private_cache.RACY_S ago is
not kept. A corrupt or foreign entry is no entry (private_cache.py).
"""

from __future__ import annotations

import functools
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from vectraguard import __version__, private_cache
from vectraguard.digests import sha256_hex

FORMAT = 1
CACHE_NAME = "denied"
PACKAGE = Path(__file__).resolve().parent.parent
CODE = ("sandbox/mounts.py", "sandbox/deny_cache.py", "private_cache.py", "records.py")
ENVIRONMENT = ("TMPDIR", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "CONTAINERS_STORAGE_CONF")

# Directories whose file systems keep no timestamp of their entries' changes.
KERNEL_TREES = ("/proc", "/sys", "/dev")
Identity = private_cache.Identity
Checked = list[Any]  # [path, is a symbolic link (None: not known), what it resolves to]


@functools.cache
def code_identity() -> list[Any]:
    """The code that builds the rules: each file's stat identity, and the version."""
    return [__version__, *([name, private_cache.identity(str(PACKAGE / name))] for name in CODE)]


def key(parts: dict[str, Any], storage_confs: list[str]) -> str | None:
    """The entry's key for the rules' inputs `parts` (JSON-able) and the
    storage.conf files they read; None when one of those changed just now."""
    found = [private_cache.identity(name) for name in storage_confs]
    if any(private_cache.racy(identity) for identity in found):
        return None
    confs = [[name, identity] for name, identity in zip(storage_confs, found, strict=True)]
    everything = {
        "format": FORMAT, "code": code_identity(), "inputs": parts, "storage_confs": confs,
        "environment": [os.environ.get(name) for name in ENVIRONMENT], "euid": os.geteuid(),
        "prefix": [sys.prefix, sys.base_prefix, str(PACKAGE)],
    }
    try:
        return sha256_hex(json.dumps(everything, sort_keys=True).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        return None


def lookup(entry_key: str | None) -> tuple[list[list[Any]], list[str]] | None:
    """(rules as field lists, allowed socket patterns) of a valid entry, else None."""
    if entry_key is None:
        return None
    entry = private_cache.read(private_cache.directory(CACHE_NAME), f"{entry_key}.json")
    try:
        if entry is None or entry["key"] != entry_key or not _all_still(entry["paths"], entry["directories"]):
            return None
        rules, sockets = entry["rules"], entry["sockets"]
        if not isinstance(rules, list) or not isinstance(sockets, list):
            return None
        return rules, sockets
    except (KeyError, TypeError, ValueError):
        return None


def _all_still(paths: list[Checked], directories: dict[str, Any]) -> bool:
    """Whether every checked path resolves as it did. A directory whose
    identity is unchanged has the same entries (creating, removing or
    renaming one changes its mtime and ctime), so its entries that were
    not links are not lstat'ed again; links always are (realpath follows
    them through directories not listed here)."""
    unchanged = {directory for directory, found in directories.items()
                 if found is not None and private_cache.identity(directory) == found}
    return all(still(path, was_link, resolved) if was_link or (path.rpartition("/")[0] or "/") not in unchanged
               else path == resolved for path, was_link, resolved in paths)


def still(path: str, was_link: bool, resolved: str) -> bool:
    """Whether `path` resolves as it did: the same kind (a symbolic link or
    not) and, for a link, the same real path."""
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        is_link = False  # absent: taken as it stands, as realpath takes it
    if is_link != was_link:
        return False
    return os.path.realpath(path) == resolved if is_link else path == resolved


def store(entry_key: str | None, paths: list[Checked], rules: list[list[Any]], sockets: list[str]) -> None:
    if entry_key is None or any(was_link is None for _, was_link, _ in paths):
        return  # a path resolved by realpath alone: its steps are not known to check them again
    private_cache.write(private_cache.directory(CACHE_NAME), f"{entry_key}.json",
                        {"key": entry_key, "paths": paths, "directories": _directories(paths), "rules": rules,
                         "sockets": sockets})


def _directories(paths: list[Checked]) -> dict[str, Identity | None]:
    """Each directory the checked paths are entries of, with its identity;
    None where it cannot vouch for its entries: changed just now (its
    timestamps could not show the next change), or a kernel file system
    (proc, sysfs, devtmpfs: entries come and go without a timestamp)."""
    found: dict[str, Identity | None] = {}
    for path, _, _ in paths:
        directory = path.rpartition("/")[0] or "/"  # as _all_still names it
        if directory in found:
            continue
        identity = None if directory.startswith(KERNEL_TREES) else private_cache.identity(directory)
        found[directory] = None if private_cache.racy(identity) else identity
    return found
