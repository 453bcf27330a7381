"""A read-write workspace (the `dev` profile, rootless): what the sandbox can and
cannot do to the host through it (FS-02, FS-08)."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from tests.support.vg import ROOTLESS_USER, TEST_IMAGE, Caller


def test_fs02_a_symlink_in_the_workspace_resolves_inside_the_sandbox(rootless: Caller,
                                                                      rootless_workspace: Path) -> None:
    """FS-02: a link to the caller's dotfile, written through from inside, leaves the host file alone."""
    home = Path(pwd.getpwnam(ROOTLESS_USER).pw_dir)
    canary = home / ".vg-canary"
    canary.write_text("host content\n")
    shutil.chown(canary, ROOTLESS_USER, ROOTLESS_USER)
    try:
        # The script plays the attacker (a link to a host dotfile, written through): the risk judge rightly
        # asks about it; --yes, because what is tested is where the write lands.
        result = rootless.run(["run", "-p", "dev", "--workspace", "rw", "--image", TEST_IMAGE, "--set", "limits.enforcement=best-effort",
                               "--yes", "--", "sh", "-c", f"ln -s {canary} link; echo sandbox > link; echo rc=$?"],
                              cwd=rootless_workspace)
        assert b"rc=" in result.stdout
        assert canary.read_text() == "host content\n"
        assert (rootless_workspace / "link").is_symlink()
    finally:
        canary.unlink()


def test_fs08_no_hard_links_out_and_no_device_nodes_in_the_workspace(rootless: Caller,
                                                                      rootless_workspace: Path) -> None:
    result = rootless.run(["run", "-p", "dev", "--workspace", "rw", "--image", TEST_IMAGE, "--set", "limits.enforcement=best-effort",
                           "--", "sh", "-c", "ln /etc/passwd hard 2>&1; echo ln=$?; mknod dev c 1 3 2>&1; "
                           "echo mknod=$?; vgprobe syscalls"], cwd=rootless_workspace)
    out = result.stdout.decode()
    assert "ln=1" in out and "mknod=1" in out
    assert not (rootless_workspace / "hard").exists() and not (rootless_workspace / "dev").exists()


def test_fs07_git_hooks_config_and_envrc_stay_read_only(rootless: Caller, rootless_workspace: Path) -> None:
    """FS-07: what would run on the host later is not writable, the rest of the workspace is."""
    for directory in (".git/hooks", ".vscode", ".claude"):
        (rootless_workspace / directory).mkdir(parents=True)
    for name in (".git/config", ".envrc", ".vscode/tasks.json", ".git/hooks/pre-commit.sample",
                 ".claude/settings.json", ".mcp.json"):
        (rootless_workspace / name).write_text("original\n")
    for path in [rootless_workspace / ".git", *(rootless_workspace / ".git").rglob("*"),
                 *(rootless_workspace / ".vscode").rglob("*"), rootless_workspace / ".vscode",
                 *(rootless_workspace / ".claude").rglob("*"), rootless_workspace / ".claude",
                 rootless_workspace / ".envrc", rootless_workspace / ".mcp.json"]:
        shutil.chown(path, ROOTLESS_USER, ROOTLESS_USER)
    # .claude/settings.json and .mcp.json: an agent's hooks and MCP servers, run by the host's next session.
    script = ("for f in .git/hooks/pre-commit .git/config .envrc .vscode/tasks.json .claude/settings.json "
              ".claude/settings.local.json .mcp.json; do "
              "echo evil >> $f 2>/dev/null && echo \"$f=written\" || echo \"$f=refused\"; done; "
              "echo fine > src.txt && echo src=written")
    result = rootless.run(["run", "-p", "dev", "--workspace", "rw", "--image", TEST_IMAGE, "--set", "limits.enforcement=best-effort",
                           "--", "sh", "-c", script], cwd=rootless_workspace)
    assert result.stdout.decode().split() == [".git/hooks/pre-commit=refused", ".git/config=refused",
                                              ".envrc=refused", ".vscode/tasks.json=refused",
                                              ".claude/settings.json=refused", ".claude/settings.local.json=refused",
                                              ".mcp.json=refused", "src=written"]
    assert not (rootless_workspace / ".git/hooks/pre-commit").exists()
    assert not (rootless_workspace / ".claude/settings.local.json").exists()
    for name in (".git/config", ".envrc", ".vscode/tasks.json", ".claude/settings.json", ".mcp.json"):
        assert (rootless_workspace / name).read_text() == "original\n"


def _own(tree: Path) -> None:
    entry = pwd.getpwnam(ROOTLESS_USER)
    for path in [tree, *tree.rglob("*")]:
        os.lchown(path, entry.pw_uid, entry.pw_gid)


def test_fs07_what_a_linked_or_gitdir_git_stands_for_stays_read_only(rootless: Caller,
                                                                     rootless_workspace: Path) -> None:
    """Found by a blind attack: with `.git` a symbolic link, or a `gitdir:`
    file, pointing inside the workspace, the real git directory stayed
    writable, and the sandbox set core.fsmonitor there for the host's next
    `git status`. Likewise a linked `.envrc`: its target is what direnv runs."""
    (rootless_workspace / "gitstore" / "hooks").mkdir(parents=True)
    (rootless_workspace / "gitstore" / "config").write_text("[core]\n")
    (rootless_workspace / ".git").symlink_to("gitstore")
    (rootless_workspace / "envrc.real").write_text("original\n")
    (rootless_workspace / ".envrc").symlink_to("envrc.real")
    _own(rootless_workspace)
    script = ("for f in gitstore/config gitstore/hooks/pre-commit envrc.real; do "
              "echo evil >> $f 2>/dev/null && echo \"$f=written\" || echo \"$f=refused\"; done; "
              "echo fine > src.txt && echo src=written")
    result = rootless.run(["run", "-p", "dev", "--workspace", "rw", "--image", TEST_IMAGE, "--set",
                           "limits.enforcement=best-effort", "--", "sh", "-c", script], cwd=rootless_workspace)
    assert result.stdout.decode().split() == ["gitstore/config=refused", "gitstore/hooks/pre-commit=refused",
                                              "envrc.real=refused", "src=written"], result.stderr
    assert (rootless_workspace / "gitstore" / "config").read_text() == "[core]\n"
    assert (rootless_workspace / "envrc.real").read_text() == "original\n"
