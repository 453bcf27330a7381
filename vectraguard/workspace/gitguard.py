"""What git on the host would read or run from a workspace, beyond the
shipped patterns of `filesystem.protected`: found per session, recorded as
(path, reason) pairs that `apply` holds back like protected paths.

- `configured(workspace)` (when the session starts, on the untouched tree):
  git's own view of its configuration — system, global, repository,
  worktree and every included file — through `git config --list
  --show-origin` run in the workspace (it reads files; it runs no hook,
  fsmonitor or alias). Protected: configuration files that lie inside the
  workspace (a tracked `.gitconfig` pulled in by `include.path`), the hooks
  directory (`core.hooksPath`, `~` expanded, relative to the top level),
  the git directory and common directory when they are not `.git` (a
  worktree's or submodule's `gitdir:`), and any program or file a
  configuration value names inside the workspace (a textconv, a filter, a
  pager script...).
- `planted_git_dirs(changes, base)` (after the run): a directory the
  session touched that now holds `HEAD` and `objects/` or `commondir` —
  git treats it as a repository (a bare one needs no `.git`), reading its
  `config`: its git files are protected.
- `smuggled_commits(...)` (after the run): refs the sandbox moved to new
  commits are held back when a new commit adds or changes a protected path
  (a later `git checkout`, `restore` or `push` would bring it in unseen).
  The new objects are read by the host's git in a scratch repository that
  borrows the real object store (objects/info/alternates), with no
  configuration, hooks or attributes of the workspace's. Undecidable (git
  missing, objects unreadable) means held back.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from vectraguard import errors
from vectraguard.workspace.changeset import ABSENT, DIRECTORY, FILE, Change

GIT_TIMEOUT_S = 10
# coreutils timeout(1) after it sent KILL: 128+9, or killed by it itself (it re-raises the
# signal it sent on itself: -9 to subprocess); 127: the command was not found.
TIMEOUT_KILLED, TIMEOUT_MISSING = (128 + 9, -9), 127
# What git reads in a git directory (gitrepository-layout(5)).
GIT_DIR_NAMES = ("HEAD", "config", "config.worktree", "commondir", "gitdir", "objects", "refs", "packed-refs",
                 "hooks", "info", "logs", "index", "worktrees", "modules", "shallow", "branches")
SHA = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{40})(?![0-9a-fA-F])")
LOOSE = re.compile(r"\.git/objects/[0-9a-f]{2}/(?:[0-9a-f]{38}|[0-9a-f]{62})")
PACK = re.compile(r"\.git/objects/pack/pack-[0-9a-f]{40,64}\.(pack|idx)")
INFLATE_LIMIT = 1 << 31  # an object that inflates past this is not checked, so not trusted

Finding = tuple[str, str]  # (path relative to the workspace, why git would use it)


class GitDidNotAnswer(errors.PolicyError):
    """git, asked about a repository a sandbox could have written, did not answer in time."""


def _git(args: Sequence[str], cwd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes] | None:
    """git's answer; None without git. The repository may be one a sandbox
    wrote (found by a blind attack: an `include.path` naming a FIFO, or
    /dev/tty, kept git — and the run — waiting forever, and a git orphaned
    by a killed vectraguard waited on). So git runs in a session of its own
    (no controlling terminal: /dev/tty cannot be opened), under coreutils'
    `timeout`, which kills it even if we are gone; GitDidNotAnswer when it
    had to."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(["timeout", "-s", "KILL", str(GIT_TIMEOUT_S), git, "-c", "safe.directory=*", *args],
                              cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S + 10, check=False,
                              stdin=subprocess.DEVNULL, start_new_session=True,
                              env=env if env is not None else {**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        return None  # no coreutils timeout: as without git
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is not None and done.returncode == TIMEOUT_MISSING:
        return None
    if done is None or done.returncode in TIMEOUT_KILLED:
        raise GitDidNotAnswer(
            f"vectraguard: git did not answer within {GIT_TIMEOUT_S} s about the repository in {cwd}: its "
            "configuration may include something that never ends (a FIFO, a terminal); nothing ran",
            hint="look at .git/config (include.path, includeIf) before running git there yourself")
    return done


def _inside(workspace: str, path: str) -> str | None:
    """`path` (absolute) relative to the real workspace, or None when outside."""
    real = os.path.realpath(path)
    relative = posixpath.relpath(real, workspace)
    return None if relative == "." or relative.startswith("../") or relative == ".." else relative


def configured(workspace: str) -> list[Finding]:
    """Files inside `workspace` that git's configuration makes it read or run."""
    workspace = os.path.realpath(workspace)
    where_git = _git(["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"], workspace)
    if where_git is None or where_git.returncode != 0:
        return []  # not a repository (or no git): the patterns are all there is
    toplevel, *git_dirs = os.fsdecode(where_git.stdout).splitlines()
    found: list[Finding] = []
    hooks = _git(["config", "--type=path", "--get", "core.hooksPath"], workspace)
    if hooks is not None and hooks.returncode == 0 and hooks.stdout.strip():
        value = os.fsdecode(hooks.stdout.strip())
        where = _inside(workspace, value if value.startswith("/") else os.path.join(toplevel, value))
        if where:
            found.append((where, "core.hooksPath: git runs the hooks in it"))
    for line in git_dirs:
        where = _inside(workspace, line if line.startswith("/") else os.path.join(workspace, line))
        if where and where.split("/")[0].lower() != ".git":
            found.append((where, "the repository's git directory"))
    listing = _git(["config", "--list", "--show-origin", "-z"], workspace)
    if listing is not None and listing.returncode == 0:
        found += _from_listing(workspace, toplevel, listing.stdout)
    first: dict[str, Finding] = {}  # one entry per path, the most specific reason (found first)
    for path, why in found:
        first.setdefault(path, (path, why))
    return list(first.values())


def _from_listing(workspace: str, toplevel: str, listing: bytes) -> list[Finding]:
    """`--show-origin -z` output: "ORIGIN" NUL "KEY\nVALUE" NUL, repeated."""
    found: list[Finding] = []
    items = listing.split(b"\0")
    for origin, entry in zip(items[0::2], items[1::2]):
        found.extend(_origin_finding(workspace, origin))
        key, _, value = entry.partition(b"\n")
        for token in re.split(r"[\s\"';|&()]+", os.fsdecode(value)):
            if "/" in token or token.startswith("."):
                path = os.path.expanduser(token)
                where = _inside(workspace, path if path.startswith("/") else os.path.join(toplevel, path))
                if where and os.path.lexists(os.path.join(workspace, where)):
                    found.append((where, f"named by git's {os.fsdecode(key)}"))
    return found


def _origin_finding(workspace: str, origin: bytes) -> list[Finding]:
    if not origin.startswith(b"file:"):
        return []
    where = _inside(workspace, os.fsdecode(origin[5:]))
    return [(where, "git reads its configuration from it")] if where else []


def planted_git_dirs(changes: Sequence[Change], present: Callable[[str], bool]) -> list[Finding]:
    """Directories the session touched that git would take for a repository.
    `present(path)`: is anything at `path` after the session (git follows a
    `HEAD` or `objects` that is a symlink, so any kind counts)."""
    touched = {posixpath.dirname(c.path) for c in changes if c.after != ABSENT}
    touched |= {c.path for c in changes if c.after == DIRECTORY}
    found: list[Finding] = []
    for directory in sorted(touched):
        if ".git" in (part.lower() for part in directory.split("/")):
            continue  # inside a .git: the patterns protect it already
        join = (lambda name: f"{directory}/{name}") if directory else (lambda name: name)
        if present(join("HEAD")) and (present(join("objects")) or present(join("commondir"))):
            reason = f"git would take {directory or 'the workspace'} for a repository (HEAD and objects)"
            found += [(join(name), reason) for name in GIT_DIR_NAMES]
    return found


def smuggled_commits(changes: Sequence[Change], blob: Callable[[str], Path], workspace: str,
                     protection: Callable[[str], str | None]) -> list[Finding]:
    """The changed refs of the top-level .git to hold back, with the reason."""
    refs = [c for c in changes if c.after == FILE and _is_ref(c.path)]
    if not refs:
        return []
    tips = {tip for c in refs for tip in _tips(blob(c.sha256))}
    try:
        touched = _paths_of_new_commits(changes, blob, workspace, tips)
    except (OSError, ValueError) as exc:
        return [(c.path, f"moves a ref to commits that could not be checked ({exc})") for c in refs]
    bad = sorted({p for p in touched if protection(p)})
    if not bad:
        return []
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return [(c.path, f"moves a ref to new commits that change protected paths: {shown}") for c in refs]


def _is_ref(path: str) -> bool:
    return path in (".git/HEAD", ".git/packed-refs", ".git/ORIG_HEAD", ".git/FETCH_HEAD") or \
        path.startswith(".git/refs/")


def _tips(path: Path) -> set[str]:
    """Every object id a ref file names, in any letter case (git accepts upper case)."""
    try:
        text = path.read_bytes().decode("ascii", "replace")
    except OSError:
        return set()
    return {found.lower() for found in SHA.findall(text)}


def forged_objects(changes: Sequence[Change], blob: Callable[[str], Path], workspace: str) -> list[Finding]:
    """New or changed files in the top-level object store that do not hold
    what their names say. Git does not re-hash an object when it reads it for
    a checkout, so a pack or loose object that answers an existing id with
    other content would put unreviewed files (a hook) into the tree later.
    Loose objects are re-hashed; packs are re-indexed by `git index-pack`
    (which computes every id from content); anything else under objects/
    (multi-pack-index, bitmaps, reverse indexes, commit-graph, keep files)
    maps ids to content too and is held back whole."""
    entries = {c.path: c for c in changes if c.path.startswith(".git/objects/") and c.after == FILE
               and not c.path.startswith(".git/objects/info/")}
    found: list[Finding] = []
    for path, change in sorted(entries.items()):
        if LOOSE.fullmatch(path):
            name = path[len(".git/objects/"):].replace("/", "")
            if not _loose_matches(blob(change.sha256), name):
                found.append((path, "a loose object whose content does not hash to its name"))
        elif PACK.fullmatch(path):
            if path.endswith(".pack"):
                idx = path[:-len(".pack")] + ".idx"
                why = _pack_problem(blob(change.sha256), blob(entries[idx].sha256) if idx in entries else None)
                if why:
                    found += [(path, why), (idx, why)]
            elif path[:-len(".idx")] + ".pack" not in entries:
                found.append((path, "a pack index without its pack (it would index the pack already there)"))
        else:
            found.append((path, "maps object ids to content (not a loose object or a pack git can re-check)"))
    return found


def _loose_matches(path: Path, name: str) -> bool:
    import zlib

    digest = hashlib.sha1() if len(name) == 40 else hashlib.sha256()
    inflater, total = zlib.decompressobj(), 0
    try:
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                data = inflater.decompress(chunk, 1 << 22)
                while True:
                    total += len(data)
                    if total > INFLATE_LIMIT:
                        return False
                    digest.update(data)
                    if not inflater.unconsumed_tail:
                        break
                    data = inflater.decompress(inflater.unconsumed_tail, 1 << 22)
        return inflater.eof and digest.hexdigest() == name
    except (OSError, zlib.error):
        return False


def _pack_problem(pack: Path, idx: Path | None) -> str:
    """Why this pack cannot be trusted ("" when git recomputed every id and the index agrees)."""
    if idx is None:
        return "a pack without its index"
    if shutil.which("git") is None:
        return "git is not installed: the pack's objects cannot be checked"
    with tempfile.TemporaryDirectory(prefix="vg-pack-") as scratch:
        copy = Path(scratch) / "check.pack"
        shutil.copyfile(pack, copy)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": os.devnull}
        # index-pack recomputes each object's id from its content; a thin pack (bases
        # outside it) cannot be checked alone and is refused.
        done = _git(["index-pack", "-o", str(Path(scratch) / "check.idx"), str(copy)], scratch, env)
        if done is None or done.returncode != 0:
            return "a pack git cannot verify on its own"
        if (Path(scratch) / "check.idx").read_bytes() != idx.read_bytes():
            return "a pack whose index does not match the objects it holds"
    return ""


def _paths_of_new_commits(changes: Sequence[Change], blob: Callable[[str], Path], workspace: str,
                          tips: set[str]) -> set[str]:
    if shutil.which("git") is None:
        raise OSError("git is not installed")
    real_objects = os.path.join(workspace, ".git", "objects")
    with tempfile.TemporaryDirectory(prefix="vg-commits-") as scratch:
        gitdir = Path(scratch) / "repo.git"
        (gitdir / "objects" / "info").mkdir(parents=True)
        (gitdir / "refs").mkdir()
        (gitdir / "HEAD").write_text("ref: refs/heads/none\n")
        (gitdir / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
        (gitdir / "objects" / "info" / "alternates").write_text(real_objects + "\n")
        for change in changes:
            if change.after == FILE and change.path.startswith(".git/objects/") and \
                    not change.path.startswith(".git/objects/info/"):
                target = gitdir / change.path[len(".git/"):]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(blob(change.sha256), target)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": os.devnull, "GIT_DIR": str(gitdir), "GIT_TERMINAL_PROMPT": "0"}
        old = _git(["for-each-ref", "--format=%(objectname)"], workspace)
        known = set(os.fsdecode(old.stdout).split()) if old is not None and old.returncode == 0 else set()
        new = [tip for tip in tips if tip not in known]
        if not new:
            return set()
        listed = _git(["rev-list", *new, "--not", *known], scratch, env)
        if listed is None or listed.returncode != 0:
            raise ValueError((listed.stderr.decode(errors="replace").strip() if listed else "git failed")[-200:])
        touched: set[str] = set()
        for commit in os.fsdecode(listed.stdout).split():
            shown = _git(["diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "-z", "-m", commit],
                         scratch, env)
            if shown is None or shown.returncode != 0:
                raise ValueError(f"cannot read commit {commit}")
            touched |= {os.fsdecode(p) for p in shown.stdout.split(b"\0") if p}
        return touched
