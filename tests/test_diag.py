"""-q and -v/-vv (vectraguard/diag.py): what reaches stderr at each verbosity, from real runs."""

from __future__ import annotations

from pathlib import Path

from tests.support.vg import Caller

RUN = ["run", "-p", "test-untrusted", "--", "echo", "out"]


def _stderr(caller: Caller, cwd: Path, *args: str) -> str:
    result = caller.run(list(args), cwd=cwd)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"out\n"
    return result.stderr.decode()


def test_quiet_silences_notices_but_not_the_output(root: Caller, workspace: Path) -> None:
    unset = ["--env", "VG_TEST_SURELY_UNSET"]
    assert "--env VG_TEST_SURELY_UNSET: not set here" in _stderr(root, workspace, *RUN[:3], *unset, *RUN[3:])
    assert _stderr(root, workspace, "-q", *RUN[:3], *unset, *RUN[3:]) == ""


def test_quiet_silences_the_best_effort_notice(rootless: Caller, rootless_workspace: Path) -> None:
    run = ["run", "-p", "test-best-effort", "--", "echo", "out"]
    assert "limits are best-effort" in _stderr(rootless, rootless_workspace, *run)
    assert _stderr(rootless, rootless_workspace, "-q", *run) == ""


def test_debug_lines_appear_at_vv_only(root: Caller, workspace: Path) -> None:
    assert _stderr(root, workspace, *RUN) == ""
    verbose = _stderr(root, workspace, "-v", *RUN)
    assert " vectraguard INFO: session " in verbose and " DEBUG: " not in verbose
    debug = _stderr(root, workspace, "-vv", *RUN)
    assert " vectraguard INFO: session " in debug
    assert " vectraguard DEBUG: exit status 0, from " in debug


def test_quiet_silences_an_overlay_that_changed_nothing_but_not_changes_to_review(
        root: Caller, workspace: Path) -> None:
    overlay = ["run", "-p", "test-untrusted", "--workspace", "overlay", "--", "echo", "out"]
    assert "the sandbox changed nothing in the workspace" in _stderr(root, workspace, *overlay)
    assert _stderr(root, workspace, "-q", *overlay) == ""
    changed = root.run(["-q", *overlay[:-2], "sh", "-c", "echo new > made.txt; echo out"], cwd=workspace)
    assert changed.returncode == 0 and changed.stdout == b"out\n"
    assert "1 path(s) changed in the workspace" in changed.stderr.decode()  # what waits for review stays
