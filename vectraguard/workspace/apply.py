"""Bringing a session's change set into the real workspace: the only code
that writes sandbox output into a user's tree.

The change set's names and contents were chosen by whatever ran in the
sandbox; only its format is ours. So:

- every path is reached beneath the workspace root without following a
  link (beneath.Tree); a directory on the way that is a symlink or not a
  directory stops the apply;
- symlink entries are created as links and never followed, but a link
  that is absolute or climbs out of the workspace is refused; special
  files (fifos, sockets, devices) are refused; setuid, setgid and sticky
  bits are dropped (the other permission bits, execute included, kept);
- each path is compared with the baseline recorded when the session
  started; a path changed on the host since is a conflict, and *every*
  conflict and refusal is found by `plan` before `execute` writes
  anything. Conflicts stop the apply unless forced; refused entries are
  left out (they can never be applied); a directory on the way that
  became a link or vanished stops it even when forced;
- protected paths (protected.py) are held back unless the person named
  them (or a protected directory above them) and asked for them;
- each file is written to a temporary file beside it (O_EXCL|O_NOFOLLOW),
  fsynced and renamed over the old one; a sparse blob stays sparse (only
  its data is copied, holes are left as holes), so a file whose logical
  size is far above what it holds takes no more disk than the layer did;
- nothing recurses over the depth of a path: change sets can be deeper
  than Python's stack, and their paths longer than PATH_MAX.

`plan(layer, paths)` decides; `execute(plan)` writes and records the apply
in layer.json (applied paths, state, history). The caller shows the plan
first and records the audit event.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import os
import posixpath
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from vectraguard import errors
from vectraguard.audit import record as audit_record
from vectraguard.workspace import baseline, beneath, sparse, store
from vectraguard.workspace.changeset import ABSENT, DIRECTORY, FILE, SPECIAL, SYMLINK, Change

PERMISSION_BITS = 0o777  # setuid, setgid and sticky are dropped
NAME_MAX = 255
SHA256 = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Problem:
    """A path that cannot be applied as things stand, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class HeldBack:
    """A change not applied because it is protected (or needs one that is)."""

    change: Change
    why: str


@dataclass
class Plan:
    """What `execute` would do, and everything that stands in its way."""

    layer: store.Layer
    record: store.LayerRecord
    steps: list[Change]  # sorted by path, parents first
    protected: list[HeldBack]  # protected changes among the steps (named with include_protected)
    held_back: list[HeldBack]
    conflicts: list[Problem]  # changed on the host since the session started: --force overrides
    blocked: list[Problem]  # the way to the path is not a plain directory: nothing applies
    refused: list[Problem]  # never applicable (special file, escaping link): left out
    skipped: list[str]  # applied before
    pending_after: int  # applicable changes left pending after this apply
    base: dict[str, baseline.Entry] = field(repr=False, default_factory=dict)

    @property
    def stopped(self) -> bool:
        """Nothing can be written without --force (conflicts) or at all (blocked)."""
        return bool(self.blocked or self.conflicts)


@dataclass(frozen=True)
class Outcome:
    """What `execute` wrote; `failure` says why it stopped early, if it did."""

    applied: list[Change]
    failure: str = ""


# -- deciding -----------------------------------------------------------------------------

def plan(layer: store.Layer, paths: Sequence[str] = (), *,
         include_protected: bool | Sequence[str] = False) -> Plan:
    """Everything an apply of `paths` (default: the whole change set) would do and meet.
    `include_protected`: the protected paths to release — True releases those
    among `paths`; a sequence names them itself (and adds them to `paths`)."""
    record = layer.record()
    _check_state(layer, record)
    changes = layer.changes()
    if not isinstance(include_protected, bool):
        paths = [*paths, *include_protected]
    named = names(layer, record, changes, paths)
    released = named if include_protected is True else \
        names(layer, record, changes, include_protected) if include_protected else []
    try:
        base = baseline.load(layer.baseline_path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise errors.ConfigError(f"vectraguard: the baseline of session {layer.session_id} is unreadable "
                                 f"({exc}); without it conflicts cannot be found") from None
    try:
        with beneath.Tree(record.workspace) as tree:
            result = _Planner(layer, record, changes, base, tree, named, released).run()
    except beneath.Unreachable as exc:
        raise errors.UsageError(f"vectraguard: the workspace {record.workspace} {exc.reason}") from None
    if not (result.steps or result.stopped or result.refused):
        _nothing_left(result, named)
    return result


def _check_state(layer: store.Layer, record: store.LayerRecord) -> None:
    if record.state == store.DISCARDED:
        raise errors.UsageError(f"vectraguard: session {layer.session_id} was discarded; its changes are gone")
    if record.state == store.RUNNING:
        raise errors.UsageError(f"vectraguard: session {layer.session_id} has no change set yet "
                                "(still running, or its run was killed before the layer was read)")


def names(layer: store.Layer, record: store.LayerRecord, changes: Sequence[Change], paths: Sequence[str]) -> list[str]:
    """PATH arguments as change-set paths ('' for the root); UsageError for one outside the
    workspace or with no change at or beneath it."""
    named = [_named(path, record.workspace) for path in paths]
    _check_named(layer, named, [c.path for c in changes])
    return named


def selected(path: str, named: Sequence[str]) -> bool:
    """Is `path` at or beneath one of the named paths (all are, when none is named)?"""
    return not named or any(_under(path, name) for name in named)


def _named(path: str, workspace: str) -> str:
    """A PATH argument as a change-set path: relative to the workspace root, or absolute inside it."""
    if "\0" in path or not path:
        raise errors.UsageError(f"vectraguard: {path!r} is not a path")
    normal = posixpath.normpath(path)
    if normal.startswith("/"):
        root = workspace.rstrip("/")
        if normal != root and not normal.startswith(root + "/"):
            raise errors.UsageError(f"vectraguard: {path} is outside the workspace {workspace}")
        normal = normal[len(root):].lstrip("/") or "."
    if normal == ".." or normal.startswith("../"):
        raise errors.UsageError(f"vectraguard: {path} is outside the workspace {workspace}",
                                hint="paths are relative to the workspace root, as `vectraguard changes` lists them")
    return "" if normal == "." else normal


def _check_named(layer: store.Layer, named: list[str], paths: list[str]) -> None:
    """Each named path must be a change, or a directory with changes beneath."""
    ordered = sorted(paths)
    for name in named:
        if name and not _has_under(ordered, name):
            raise errors.UsageError(f"vectraguard: {name} is not in the change set of session {layer.session_id}",
                                    hint=f"`vectraguard changes {layer.session_id}` lists them")


def _has_under(ordered: list[str], name: str) -> bool:
    at = bisect.bisect_left(ordered, name)
    if at < len(ordered) and ordered[at] == name:
        return True
    below = bisect.bisect_left(ordered, name + "/")
    return below < len(ordered) and ordered[below].startswith(name + "/")


def _under(path: str, name: str) -> bool:
    return not name or path == name or path.startswith(name + "/")


def _fold_down(directory: str, memo: dict[str, _T], step: Callable[[str, _T], _T], root: _T) -> _T:
    """memo[directory], where a directory's value is step(it, its parent's value) and the
    root's is `root`. The directories missing from `memo` are filled in top first, in a
    loop: a change set can be deeper than Python's stack, and asking each path about
    every directory above it would cost the square of the depth."""
    missing = []
    at = directory
    while at and at not in memo:
        missing.append(at)
        at = posixpath.dirname(at)
    value = memo[at] if at else root
    for above in reversed(missing):
        value = memo[above] = step(above, value)
    return value


def _nothing_left(result: Plan, named: list[str]) -> None:
    """Nothing to write: an error when it was all applied before (only held-back paths left is not)."""
    session = result.layer.session_id
    held = len(result.held_back)
    hint = (f"{held} protected path(s) were held back: name them with --include-protected to apply them"
            if held else "")
    if result.record.state == store.APPLIED and not (named and held):
        raise errors.UsageError(f"vectraguard: session {session} was already applied", hint=hint)
    if named and not held:
        raise errors.UsageError(f"vectraguard: session {session}: {', '.join(n or '.' for n in named)} "
                                "already applied")


def content_refusal(change: Change, layer: store.Layer) -> str:
    """Why this entry can never be applied ("" when it can)."""
    if max(map(len, os.fsencode(change.path).split(b"/"))) > NAME_MAX:  # at C speed: paths can be deep
        return "a name in the path is longer than the filesystem allows"
    if change.after == SPECIAL:
        return "a special file (fifo, socket or device)"
    if change.after == SYMLINK:
        return link_escape(change.path, change.link)
    if change.after == FILE:
        if change.sha256 == "":  # harvest.py keeps no content past the change set's budget
            return "its content was not kept (its size, a sparse file's, is beyond the layer's cap)"
        if not SHA256.fullmatch(change.sha256):
            return "its content is not named by a SHA-256 in the change set"
        try:
            size = os.stat(layer.blob(change.sha256), follow_symlinks=False).st_size
        except (OSError, ValueError):
            return "its content is missing from the layer"
        if size != change.size:
            return "its content in the layer does not match the change set"
    return ""


def link_escape(path: str, target: str) -> str:
    """Why a link at `path` to `target` would point out of the workspace ("" when it stays inside).

    Only targets of the form `../../a/b` are accepted: climbing first, and no
    further than the link's own directory is deep. A `..` after a name is
    refused, since the name could be a link itself and `..` is taken from
    where that link leads, not lexically (`b -> .` then `l -> b/..` leaves).
    """
    if not target or "\0" in target:
        return "a symbolic link with an empty target"
    if target.startswith("/"):
        return f"a symbolic link to an absolute path ({target})"
    parts = [p for p in target.split("/") if p not in ("", ".")]
    climbs = 0
    while climbs < len(parts) and parts[climbs] == "..":
        climbs += 1
    if ".." in parts[climbs:]:
        return f"a symbolic link whose target ({target}) climbs after descending"
    if climbs > path.count("/"):
        return f"a symbolic link that leads out of the workspace ({target})"
    return ""


class _Planner:
    """One pass over the change set, parents before children."""

    def __init__(self, layer: store.Layer, record: store.LayerRecord, changes: list[Change],
                 base: dict[str, baseline.Entry], tree: beneath.Tree, named: list[str],
                 released: list[str]) -> None:
        self.layer, self.record, self.base, self.tree = layer, record, base, tree
        self.changes = {c.path: c for c in changes}
        self.base_paths = sorted(base)
        self.named, self.released = named, released
        self.applied = set(record.applied)
        self.plan = Plan(layer, record, [], [], [], [], [], [], [], 0, base)
        self.outcome: dict[str, str] = {}  # path -> "apply" | "held" | "refused" | "done"
        self.reachable: dict[str, str] = {}  # directory -> "" or why it cannot be reached
        self.non_directory: dict[str, str] = {}  # directory -> the topmost at or above it the change set
        #                                          makes something else than a directory ("": none)
        self.created_blocked: dict[str, str] = {}  # directory -> the topmost at or above it that this
        #                                           apply would create but holds back or refuses ("": none)
        self.compared: set[str] = set()
        # Directories removed whose whole tree passed a check ("protected", "removable", "compared").
        self.whole: dict[str, set[str]] = {"protected": set(), "removable": set(), "compared": set()}
        self.patterns: dict[str, str | None] = {}

    def run(self) -> Plan:
        self._check_root()
        for path in sorted(self.changes):
            change = self.changes[path]
            if path in self.applied:
                self.outcome[path] = "done"
                if self._selected(path):
                    self.plan.skipped.append(path)
            elif self._selected(path):
                self._decide(change)
        chosen = {c.path for c in self.plan.steps}
        self.plan.pending_after = sum(1 for path in self.changes if path not in self.applied and path not in chosen
                                      and not self._blocked_for_good(path))
        return self.plan

    # -- selection and protection --------------------------------------------------------------
    def _selected(self, path: str) -> bool:
        return selected(path, self.named)

    def _protection(self, path: str) -> str | None:
        if path not in self.patterns:  # asked for the same paths often (named ones, removed trees)
            self.patterns[path] = self.record.protection(path)
        return self.patterns[path]

    def _released(self, path: str) -> bool:
        """A protected path is applied only when asked for, and it or a protected directory above it was named."""
        return any(_under(path, name) and name and self._protection(name) for name in self.released)

    def _blocked_for_good(self, path: str) -> bool:
        """Not counted as pending: protected (until named) or never applicable."""
        return self._protection(path) is not None or bool(content_refusal(self.changes[path], self.layer)) \
            or self.outcome.get(path) in ("held", "refused")

    # -- one change ----------------------------------------------------------------------------
    def _decide(self, change: Change) -> None:
        path = change.path
        pattern = self._protection(path)
        if pattern is not None and not self._released(path):
            return self._hold(change, f"protected ({pattern})")
        refusal = content_refusal(change, self.layer) or self._container_refusal(change)
        if refusal:
            return self._refuse(change, refusal)
        held = self._protected_inside(change)
        if held:
            return self._hold(change, held)
        if not self._ancestors_ready(change) or not self._removable(change):
            return None
        self.outcome[path] = "apply"
        self.plan.steps.append(change)
        if pattern is not None:
            self.plan.protected.append(HeldBack(change, f"protected ({pattern})"))
        self._check_conflicts(change)
        return None

    def _hold(self, change: Change, why: str) -> None:
        self.outcome[change.path] = "held"
        self.plan.held_back.append(HeldBack(change, why))

    def _refuse(self, change: Change, why: str) -> None:
        self.outcome[change.path] = "refused"
        self.plan.refused.append(Problem(change.path, why))

    def _container_refusal(self, change: Change) -> str:
        """A created path beneath one the change set makes a non-directory is not a tree."""
        if change.after == ABSENT:
            return ""  # deleting what was beneath a directory that became a file is part of replacing it
        above = _fold_down(posixpath.dirname(change.path), self.non_directory, self._non_directory_step, "")
        if above:
            return f"inside {above}, which the change set makes a {self.changes[above].after}: an inconsistent " \
                   "change set"
        return ""

    def _non_directory_step(self, directory: str, above: str) -> str:
        other = self.changes.get(directory)
        return above or (directory if other is not None and other.after != DIRECTORY else "")

    def _protected_inside(self, change: Change) -> str:
        """A directory removal takes what is beneath it: held back if any of that is protected."""
        if self._host_kind(change.path) != DIRECTORY or change.after == DIRECTORY \
                or self._checked_above("protected", change.path):
            return ""
        for below in self._base_below(change.path):
            pattern = self._protection(below)
            if pattern is not None and not self._released(below):
                return f"would remove protected {below} ({pattern})"
        self.whole["protected"].add(change.path)
        return ""

    def _checked_above(self, check: str, path: str) -> bool:
        """Did the directory above `path` pass `check` with its whole tree? Then `path`, in
        that tree, did too. A removed tree lists every path beneath it: checking each one's
        whole subtree again would cost the square of the tree's size."""
        if posixpath.dirname(path) in self.whole[check]:
            self.whole[check].add(path)
            return True
        return False

    def _ancestors_ready(self, change: Change) -> bool:
        """Directories the change set creates above a created path are applied with it; the
        others must be plain directories in the workspace now."""
        directory = posixpath.dirname(change.path)
        if change.after == ABSENT:
            return self._reach(change, directory)
        above = _fold_down(directory, self.created_blocked, self._created_step, "")
        if above and self.outcome[above] == "held":
            self._hold(change, f"inside {above}/, which is held back")
            return False
        if above:
            self._refuse(change, f"inside {above}/, which is refused")
            return False
        return self._reach(change, directory)

    def _created_step(self, directory: str, above: str) -> str:
        """Top first: a directory this apply creates is decided (applied along when nobody
        selected it) before what is beneath it; the first held or refused one stops them."""
        other = self.changes.get(directory)
        if above or other is None or not self._creates_directory(other):
            return above
        if directory not in self.outcome:
            self._include_ancestor(other)
        return directory if self.outcome.get(directory) in ("held", "refused") else ""

    def _include_ancestor(self, change: Change) -> None:
        """A new directory needed by a selected path: applied along, unless protected and not asked for."""
        pattern = self._protection(change.path)
        if pattern is not None and not any(_under(name, change.path) for name in self.released):
            return self._hold(change, f"protected ({pattern})")
        return self._decide_implicitly(change, pattern)

    def _decide_implicitly(self, change: Change, pattern: str | None) -> None:
        refusal = content_refusal(change, self.layer) or self._container_refusal(change)
        if refusal:
            return self._refuse(change, refusal)
        if not self._reach(change, posixpath.dirname(change.path)):
            return None
        self.outcome[change.path] = "apply"
        bisect.insort(self.plan.steps, change, key=_path_of)  # not a sort per directory: a chain can be deep
        if pattern is not None:
            self.plan.protected.append(HeldBack(change, f"protected ({pattern})"))
        self._check_conflicts(change)
        return None

    def _removable(self, change: Change) -> bool:
        """A directory this apply removes, and every directory beneath it, must be a plain
        directory of the workspace's filesystem (not a mount point, not a link now)."""
        if self._host_kind(change.path) != DIRECTORY or change.after == DIRECTORY \
                or self._checked_above("removable", change.path):
            return True
        below = (p for p in self._base_below(change.path) if self.base[p].kind == DIRECTORY)
        for directory in (change.path, *below):
            try:
                self.tree.directory(directory)
            except beneath.Unreachable as exc:
                self.outcome[change.path] = "refused"
                self.plan.blocked.append(Problem(change.path, f"{exc.path} {exc.reason}: nothing is removed "
                                                              "through it"))
                return False
        self.whole["removable"].add(change.path)
        return True

    def _creates_directory(self, change: Change) -> bool:
        return change.after == DIRECTORY and self._host_kind(change.path) != DIRECTORY

    def _host_kind(self, path: str) -> str:
        entry = self.base.get(path)
        return entry.kind if entry else ABSENT

    # -- the host side -------------------------------------------------------------------------
    def _reach(self, change: Change, directory: str) -> bool:
        """The directory that will hold `change` is a plain directory now, or one this apply creates."""
        why = self._reachable(directory)
        if why:
            self.outcome[change.path] = "refused"
            self.plan.blocked.append(Problem(change.path, why))
            return False
        return True

    def _reachable(self, directory: str) -> str:
        return _fold_down(directory, self.reachable, self._reachable_step, "")

    def _reachable_step(self, directory: str, above: str) -> str:
        other = self.changes.get(directory)
        if other is not None and self.outcome.get(directory) == "apply" and self._creates_directory(other):
            return ""  # created (or replaced) by this apply before its contents
        return above or self._open(directory)

    def _open(self, directory: str) -> str:
        try:
            fd = self.tree.directory(directory)
        except beneath.Unreachable as exc:
            return f"{exc.path} {exc.reason}: nothing is applied through it"
        except OSError as exc:
            return f"{directory} cannot be opened ({exc.strerror})"
        if fd is None:
            return f"its directory {directory} is no longer in the workspace"
        return ""

    def _check_root(self) -> None:
        before, now = self.base.get(""), self._now("")
        if before is None or now is None or before.ino != now.ino:
            self.plan.conflicts.append(Problem(".", "the workspace directory itself was replaced since the "
                                                    "session started"))

    def _now(self, path: str) -> baseline.Entry | None:
        return _entry_now(self.tree, path)  # None when not reachable as a plain path: _reach reports it

    def _check_conflicts(self, change: Change) -> None:
        path = change.path
        before = self.base.get(path)
        whole = before is not None and before.kind == DIRECTORY and change.after != DIRECTORY
        self._compare(path, contents=whole)
        if whole and not self._checked_above("compared", path):
            for below in self._base_below(path):
                self._compare(below, contents=True)
            self.whole["compared"].add(path)

    def _compare(self, path: str, *, contents: bool) -> None:
        if path in self.compared:
            return
        self.compared.add(path)
        before, now = self.base.get(path), self._now(path)
        why = _difference(before, now, contents)
        if why:
            self.plan.conflicts.append(Problem(path or ".", why))

    def _base_below(self, path: str) -> Iterator[str]:
        prefix = path + "/"
        at = bisect.bisect_left(self.base_paths, prefix)
        while at < len(self.base_paths) and self.base_paths[at].startswith(prefix):
            yield self.base_paths[at]
            at += 1


def _path_of(change: Change) -> str:
    return change.path


def _entry_now(tree: beneath.Tree, path: str) -> baseline.Entry | None:
    """The path's entry now, reached without following a link; None when absent or unreachable."""
    try:
        info = tree.lstat(path)
    except (beneath.Unreachable, OSError):
        return None
    return baseline.entry_of(info) if info is not None else None


def _difference(before: baseline.Entry | None, now: baseline.Entry | None, contents: bool) -> str:
    """How the path changed on the host since the session started ("" when it did not)."""
    if before is None and now is None:
        return ""
    if before is None:
        return "created in the workspace since the session started"
    if now is None:
        return "deleted from the workspace (or made unreachable) since the session started"
    if before.kind != now.kind:
        return f"replaced in the workspace since the session started (was a {before.kind}, now a {now.kind})"
    if now.kind == DIRECTORY:
        same = before.mode == now.mode and (not contents or before.mtime_ns == now.mtime_ns)
    else:
        same = (before.size, before.mtime_ns, before.ctime_ns, before.ino) == (
            now.size, now.mtime_ns, now.ctime_ns, now.ino)
    return "" if same else "changed in the workspace since the session started"


# -- writing ------------------------------------------------------------------------------

def execute(plan: Plan, *, force: bool = False) -> Outcome:
    """Carry out `plan`; record what was applied in layer.json, even when stopped early."""
    if plan.blocked or (plan.conflicts and not force):
        raise ValueError("execute: the plan is stopped by conflicts or blocked paths")
    done: list[Change] = []
    failure = ""
    try:
        with beneath.Tree(plan.record.workspace) as tree:
            _Writer(plan, tree, done).run()
    except (OSError, beneath.Unreachable, _Mismatch) as exc:
        failure = str(exc)
    _record(plan, done, force)
    return Outcome(done, failure)


class _Mismatch(Exception):
    """A blob's content is not what the change set says."""


class _Writer:
    def __init__(self, plan: Plan, tree: beneath.Tree, done: list[Change]) -> None:
        self.plan, self.tree, self.done = plan, tree, done
        top = os.fstat(tree.root_fd)
        # As root, what is created belongs to the workspace's owner, not to root.
        self.owner = (top.st_uid, top.st_gid) if os.geteuid() == 0 else None
        # Directories: chmod at the end, deepest first; with who each is (device, inode).
        self.modes: list[tuple[str, int, tuple[int, int]]] = []
        self.written_in: set[str] = set()

    def run(self) -> None:
        removals = [c for c in self.plan.steps if c.after == ABSENT or self._must_remove(c)]
        for change in sorted(removals, key=lambda c: c.path, reverse=True):
            self._remove(change.path)
            if change.after == ABSENT:
                self.done.append(change)  # also when it was gone already: the result is the same
        for change in self.plan.steps:
            if change.after != ABSENT:
                self._create(change)
                self.done.append(change)
        self._chmod_directories()
        self._sync()

    def _must_remove(self, change: Change) -> bool:
        try:
            info = self._lstat(change.path)
        except beneath.Unreachable:
            return False  # beneath a file this apply replaces with a directory: created later
        if info is None:
            return False
        # A directory cannot be renamed over, nor can anything be renamed over one.
        return stat.S_ISDIR(info.st_mode) != (change.after == DIRECTORY)

    def _lstat(self, path: str) -> os.stat_result | None:
        return self.tree.lstat(path)

    def _parent(self, path: str) -> tuple[int, str]:
        fd, name = self.tree.parent(path)
        if fd is None:
            raise OSError(0, f"{posixpath.dirname(path)} is no longer in the workspace")
        self.written_in.add(posixpath.dirname(path))
        return fd, name

    def _remove(self, path: str) -> None:
        info = self._lstat(path)
        if info is None:
            return
        self.tree.forget(path)
        fd, name = self._parent(path)
        if stat.S_ISDIR(info.st_mode):
            _remove_tree(fd, name, self.tree.device)
        else:
            os.unlink(name, dir_fd=fd)

    def _create(self, change: Change) -> None:
        if change.after == DIRECTORY:
            self._directory(change)
        elif change.after == SYMLINK:
            self._symlink(change)
        else:
            self._file(change)

    def _directory(self, change: Change) -> None:
        exists = self._lstat(change.path) is not None
        fd, name = self._parent(change.path)  # last: a Tree fd is valid until the next Tree call
        if not exists:
            os.mkdir(name, 0o700, dir_fd=fd)  # opened up by the final chmod, after its contents
            if self.owner:
                os.chown(name, *self.owner, dir_fd=fd, follow_symlinks=False)
        info = os.lstat(name, dir_fd=fd)
        self.modes.append((change.path, change.mode & PERMISSION_BITS, (info.st_dev, info.st_ino)))

    def _symlink(self, change: Change) -> None:
        fd, name = self._parent(change.path)
        temporary = _temporary_name()
        os.symlink(change.link, temporary, dir_fd=fd)
        try:
            if self.owner:
                os.chown(temporary, *self.owner, dir_fd=fd, follow_symlinks=False)
            os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            _unlink_quietly(temporary, fd)
            raise

    def _file(self, change: Change) -> None:
        fd, name = self._parent(change.path)
        temporary = _temporary_name()
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=fd)
        try:
            try:
                self._copy_blob(change, out)
                if self.owner:
                    os.fchown(out, *self.owner)
                os.fchmod(out, change.mode & PERMISSION_BITS)
                os.fsync(out)
            finally:
                os.close(out)
            os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            _unlink_quietly(temporary, fd)
            raise

    def _copy_blob(self, change: Change, out: int) -> None:
        """The blob's data at the same offsets, its holes left unwritten (ftruncate gives the
        logical size); the digest is over the whole content, holes read as zeros."""
        source = os.open(self.plan.layer.blob(change.sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            sha, _ = sparse.copy(source, out)
        finally:
            os.close(source)
        if sha != change.sha256:
            raise _Mismatch(f"{change.path}: its content in the layer does not match the change set "
                            "(the layer was altered); stopped")

    def _chmod_directories(self) -> None:
        """Deepest first: a mode without search permission must not keep the walk from
        what is beneath. Going up a deep chain, the next directory is mostly the parent
        of the last one: reached by `..` from it when that is the directory this apply
        made or found there, rather than walked down to again (the square of the depth)."""
        below: tuple[str, int] | None = None  # the directory changed last, and its fd
        try:
            for path, mode, identity in sorted(self.modes, reverse=True):
                target = _up_to(below, path, identity) if below else -1
                if target < 0:
                    fd, name = self._parent(path)
                    target = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                if below:
                    os.close(below[1])
                below = (path, target)
                os.fchmod(target, mode)
        finally:
            if below:
                os.close(below[1])

    def _sync(self) -> None:
        """The renames and removals made durable: fsync each directory written in."""
        for directory in sorted(self.written_in):
            try:
                fd = self.tree.directory(directory)
                if fd is None:
                    continue
                readable = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            except (OSError, beneath.Unreachable):
                continue
            try:
                os.fsync(readable)
            except OSError:
                pass
            finally:
                os.close(readable)


def _remove_tree(parent_fd: int, name: str, device: int) -> None:
    """rm -r of directory `name`, through fds: never following a link, never entering
    another filesystem mounted beneath it (what the sandbox never saw is not removed).

    Depth first in a loop holding one directory open at a time: a tree can be deeper
    than Python's stack or than the fds a process may hold. Going back up opens `..`
    and checks it is the directory the walk came down from (a directory moved away
    meanwhile stops the removal rather than letting it go on somewhere else).
    """
    fd = _open_to_remove(parent_fd, name, device)
    try:
        frames = [_Frame(name, _identity(fd), _clear(fd))]
        while frames:
            frame = frames[-1]
            if frame.subdirectories:
                below = frame.subdirectories.pop()
                child = _open_to_remove(fd, below, device)
                os.close(fd)
                fd = child
                frames.append(_Frame(below, _identity(fd), _clear(fd)))
                continue
            frames.pop()
            if frames:
                fd = _up(fd, frames[-1].identity)
                os.rmdir(frame.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


@dataclass
class _Frame:
    """A directory being emptied: its name in the one above, who it is, the subdirectories left."""

    name: str
    identity: tuple[int, int]
    subdirectories: list[str]


def _open_to_remove(parent_fd: int, name: str, device: int) -> int:
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    if os.fstat(fd).st_dev != device:
        os.close(fd)
        raise OSError(errno.EXDEV, f"{name} is where another filesystem is mounted; not removed")
    return fd


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _clear(fd: int) -> list[str]:
    """Unlink everything in the directory but its subdirectories; their names."""
    with os.scandir(fd) as listing:
        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
    for entry_name, is_directory in entries:
        if not is_directory:
            os.unlink(entry_name, dir_fd=fd)
    return [entry_name for entry_name, is_directory in entries if is_directory]


def _up_to(below: tuple[str, int], path: str, identity: tuple[int, int]) -> int:
    """An fd of `path` reached by `..` from the directory `below` (path, fd) beneath it,
    if that is the directory `identity` names; -1 otherwise."""
    if posixpath.dirname(below[0]) != path:
        return -1
    try:
        parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=below[1])
    except OSError:
        return -1  # e.g. the mode just given to `below` has no search permission
    if _identity(parent) != identity:
        os.close(parent)
        return -1
    return parent


def _up(fd: int, expected: tuple[int, int]) -> int:
    """The directory above `fd` (which is closed), if it is still the one the walk came from."""
    parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    if _identity(parent) != expected:
        os.close(parent)
        raise OSError(errno.ESTALE, "a directory being removed was moved meanwhile; stopped")
    os.close(fd)
    return parent


def _temporary_name() -> str:
    return f".vg-apply-{secrets.token_hex(8)}"


def _unlink_quietly(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


# -- recording ----------------------------------------------------------------------------

def _record(plan: Plan, done: list[Change], force: bool) -> None:
    """layer.json: applied paths, state, a history entry; the baseline moves on to what was written."""
    if not done:
        return
    record = plan.layer.record()
    applied = tuple(sorted(set(record.applied) | {c.path for c in done}))
    left = plan.pending_after + (len(plan.steps) - len(done))
    user, host = audit_record.who()
    entry = {"event": "applied", "at": audit_record.now(), "user": user, "host": host, "forced": force,
             "paths": [{"path": c.path, "action": c.action, "sha256": c.sha256} for c in done]}
    plan.layer.update(applied=applied, state=store.APPLIED if left == 0 else store.PENDING,
                      history=(*record.history, entry))
    _refresh_baseline(plan, done)


def _refresh_baseline(plan: Plan, done: list[Change]) -> None:
    """A later apply of this layer (the held-back paths) must not see this one's writes as host edits."""
    base = dict(plan.base)
    touched = {c.path for c in done} | {posixpath.dirname(c.path) for c in done}
    removed = {c.path for c in done if c.after != DIRECTORY and c.path in base and base[c.path].kind == DIRECTORY}
    _drop_beneath(base, removed)
    try:
        tree = beneath.Tree(plan.record.workspace)
    except beneath.Unreachable:
        return  # the workspace is gone: a later apply reports every path as a conflict
    with tree:
        for path in sorted(touched):  # parents first: each directory is opened once
            entry = _entry_now(tree, path)
            if entry is None:
                base.pop(path, None)
            else:
                base[path] = entry
    try:
        baseline.save(plan.layer.baseline_path, base)
    except OSError:
        pass  # a later apply then reports these paths as conflicts: safe


def _drop_beneath(base: dict[str, baseline.Entry], removed: set[str]) -> None:
    """Forget what was beneath the directories removed. Only the topmost of them are
    looked for (a removed tree lists every directory in it), each as one sorted range:
    matching every path against every removed directory costs their product."""
    tops = [path for path in removed if posixpath.dirname(path) not in removed]
    if not tops:
        return
    ordered = sorted(base)
    for top in tops:
        prefix = top + "/"
        at = bisect.bisect_left(ordered, prefix)
        while at < len(ordered) and ordered[at].startswith(prefix):
            base.pop(ordered[at], None)
            at += 1


# -- locking ------------------------------------------------------------------------------

@contextmanager
def locked(layer: store.Layer) -> Iterator[None]:
    """One apply or discard of a layer at a time."""
    try:
        fd = os.open(layer.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise errors.ConfigError(f"vectraguard: the layer {layer.path} cannot be opened ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise errors.UsageError(f"vectraguard: session {layer.session_id} is being applied or discarded by "
                                    "another vectraguard; try again when it is done") from None
        yield
    finally:
        os.close(fd)
