"""What a sandbox's output can do to the user's terminal: the real CLI on a real pty, real sandboxes.

The filter itself is tested as a function in test_terminal_sequences.py; here
the point is where it sits: between the sandbox and a terminal only (never
a pipe, never the audit record), and around what we print ourselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.terminal import Terminal
from tests.support.vg import Caller

pytestmark = pytest.mark.usefixtures("hang_up_leftovers")

# What the sandbox prints: a clipboard write, a window title, a hyperlink, colours, a
# progress line, then a climb into the line above to rewrite it as one of ours.
HOSTILE = (r"printf '\033]52;c;cm0gLXJmIH4K\007\033]0;pwned\007\033]8;;http://evil.example/\033\\link\033]8;;\033\\'; "
           r"printf '\033[31mred\033[0m 10%%\r100%%\033[K\n'; "
           r"printf '\033[1A\033[2Kvectraguard: forged\n'")
HOSTILE_BYTES = (b"\x1b]52;c;cm0gLXJmIH4K\x07\x1b]0;pwned\x07\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\"
                 b"\x1b[31mred\x1b[0m 10%\r100%\x1b[K\n\x1b[1A\x1b[2Kvectraguard: forged\n")


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    """An audit store of the test's own: `logs list --limit 1` is this test's session."""
    return {"VECTRAGUARD_DATA_DIR": str(tmp_path / "data")}


def _last_id(caller: Caller, cwd: Path, data: dict[str, str]) -> str:
    listed = caller.run(["logs", "list", "--json", "--limit", "1"], cwd=cwd, extra_env=data)
    return str(json.loads(listed.stdout)[0]["id"])


def _on_terminal(caller: Caller, cwd: Path, args: list[str], data: dict[str, str]) -> tuple[int, bytes]:
    term = Terminal(caller, cwd, args, extra_env=data)
    status = term.wait()
    return status, term.seen.replace(b"\r\n", b"\n")  # the pty's own newline translation


def test_logs_show_escapes_recorded_control_characters_and_raw_gives_the_bytes(
        root: Caller, workspace: Path, data: dict[str, str]) -> None:
    script = r"printf 'rm: 3 files deleted, then FAILED\r\033[K all good\n\342\200\256txt.exe\n'; exit 3"
    assert root.run(["run", "-p", "test-untrusted", "--", "sh", "-c", script], cwd=workspace,
                    extra_env=data).returncode == 3
    session = _last_id(root, workspace, data)

    status, seen = _on_terminal(root, workspace, ["logs", "show", session], data)
    assert status == 0
    assert b"rm: 3 files deleted, then FAILED\\r\\x1b[K all good\n\\u202etxt.exe\n" in seen
    assert b"\x1b" not in seen and b"\r" not in seen and "\u202e".encode() not in seen
    # Not on a terminal either (a pager or a terminal may render it later).
    piped = root.run(["logs", "show", session], cwd=workspace, extra_env=data)
    assert b"FAILED\\r\\x1b[K all good\n" in piped.stdout and b"\x1b" not in piped.stdout

    status, seen = _on_terminal(root, workspace, ["logs", "show", session, "--raw"], data)
    assert status == 0
    assert b"rm: 3 files deleted, then FAILED\r\x1b[K all good\n\xe2\x80\xaetxt.exe\n" in seen
    shown = json.loads(root.run(["logs", "show", session, "--json"], cwd=workspace, extra_env=data).stdout)
    assert shown["output"]["stdout"]["head"].startswith("rm: 3 files deleted, then FAILED\r\x1b[K all good\n")


def test_live_view_on_a_terminal_keeps_colours_and_progress_and_drops_the_rest(
        root: Caller, workspace: Path, data: dict[str, str]) -> None:
    status, seen = _on_terminal(root, workspace, ["run", "-p", "test-untrusted", "--", "sh", "-c", HOSTILE], data)
    assert status == 0
    assert b"link\x1b[31mred\x1b[0m 10%\r100%\x1b[K\n\x1b[2Kvectraguard: forged\n" in seen
    for dropped in (b"]52;", b"]0;", b"]8;", b"pwned", b"\x1b[1A"):
        assert dropped not in seen
    # The record keeps every byte: it is the evidence.
    shown = json.loads(root.run(["logs", "show", _last_id(root, workspace, data), "--json"], cwd=workspace,
                                extra_env=data).stdout)
    assert shown["output"]["stdout"]["head"].encode() == HOSTILE_BYTES


def test_output_to_a_pipe_is_data_and_passes_unchanged(root: Caller, workspace: Path, data: dict[str, str]) -> None:
    ran = root.run(["run", "-p", "test-untrusted", "--", "sh", "-c", HOSTILE], cwd=workspace, extra_env=data)
    assert (ran.returncode, ran.stdout) == (0, HOSTILE_BYTES)


def test_passthrough_raw_opts_out(root: Caller, workspace: Path, data: dict[str, str]) -> None:
    args = ["run", "-p", "test-untrusted", "--set", "output.passthrough=raw", "--", "sh", "-c", HOSTILE]
    status, seen = _on_terminal(root, workspace, args, data)
    assert status == 0
    assert HOSTILE_BYTES.replace(b"\r\n", b"\n") in seen


def test_our_message_after_a_run_starts_on_a_fresh_line_with_plain_attributes(
        root: Caller, workspace: Path, data: dict[str, str]) -> None:
    # Left mid-line and invisible (SGR 8), then stopped by the profile's 5 s timeout.
    script = r"printf 'partial line\033[8m'; sleep 60"
    status, seen = _on_terminal(root, workspace, ["run", "-p", "test-tight", "--", "sh", "-c", script], data)
    assert status == 124
    assert b"partial line\x1b[8m\x1b[0m\nvectraguard: timed out after 5s" in seen


def _printed(seen: bytes) -> bytes:
    """What printf wrote, after the terminal's echo of the typed line."""
    return seen.rpartition(b"END-$((1+1))")[2]


def test_interactive_shell_passes_cursor_movement_but_not_clipboard_or_title(
        root: Caller, workspace: Path, data: dict[str, str]) -> None:
    term = Terminal(root, workspace, ["sandbox", "shell", "-p", "test-untrusted"], extra_env=data)
    term.expect(b"$ ")
    term.send(rb"printf '\033]52;c;cm0gLXJmIH4K\007\033]2;pwned\033\\\033[5;7Hmoved\033[?25l'; "
              rb"echo END-$((1+1))" + b"\r")
    out = _printed(term.expect(b"END-2"))
    assert b"\x1b[5;7Hmoved\x1b[?25l" in out
    assert b"]52;" not in out and b"pwned" not in out
    # Left in DEC line drawing (our letters would be box pieces) with the cursor hidden: put back after.
    term.send(rb"printf '\033(0'; exit" + b"\r")
    assert term.wait() == 0
    assert term.seen.endswith(b"\x1b(0\x1b[0m\x0f\x1b(B\x1b[?25h\x1b[4l\r\n")
    # The replay shows what the live session showed; --raw plays the recorded bytes.
    session = _last_id(root, workspace, data)
    replayed = root.run(["logs", "replay", session, "--speed", "1000"], cwd=workspace, extra_env=data)
    assert b"\x1b[5;7Hmoved" in _printed(replayed.stdout) and b"]52;" not in _printed(replayed.stdout)
    raw = root.run(["logs", "replay", session, "--speed", "1000", "--raw"], cwd=workspace, extra_env=data)
    assert b"\x1b]52;c;cm0gLXJmIH4K\x07" in raw.stdout
