"""vectraguard-entry (contrib/entry/) and the file it reads (sandbox/entry.py).

The program is run directly here, in a private mount namespace with its
directory on a tmpfs of its own (nothing on the host's /run is touched), and
through real sandboxes: what the command gets is exactly the run's argv,
environment and directory, and a file it cannot trust runs nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.vg import Caller
from vectraguard.sandbox import entry

PROGRAM = entry.installed_entry()
needs_program = pytest.mark.skipif(PROGRAM is None, reason="vectraguard-entry is not installed (contrib/install.sh)")


def _run_program(tmp_path: Path, content: bytes) -> subprocess.CompletedProcess[bytes]:
    """The installed program, reading `content` as its command file."""
    (tmp_path / "command").write_bytes(content)
    script = ('mount -t tmpfs tmpfs /run && mkdir /run/vectraguard-run && '
              f'cp {tmp_path / "command"} /run/vectraguard-run/command && exec env -i KEEP=kept {PROGRAM}')
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=60, check=False)


@needs_program
def test_the_command_gets_its_argv_environment_and_directory(tmp_path: Path) -> None:
    argv = ["/bin/sh", "-c", 'printf "%s|" "$0" "$@"; echo; pwd; echo "$KEEP $NEW $EQ"', "zero", "a=b", "",
            "new\nline", "caf\u00e9"]
    done = _run_program(tmp_path, entry.encode(argv, {"NEW": "x y", "EQ": "a=b=c"}, "/tmp"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "zero|a=b||new\nline|caf\u00e9|\n/tmp\nkept x y a=b=c\n"


@needs_program
def test_the_path_set_for_the_run_finds_the_command(tmp_path: Path) -> None:
    done = _run_program(tmp_path, entry.encode(["true"], {"PATH": "/nonexistent"}, "/"))
    assert done.returncode == 127
    assert b"exec true failed: No such file or directory" in done.stderr


@needs_program
@pytest.mark.parametrize(("argv", "status"), [(["/no/such/program"], 127), (["<plain file>"], 126),
                                              (["sh", "-c", "exit 7"], 7)])
def test_statuses_are_those_of_the_command_or_tini(tmp_path: Path, argv: list[str], status: int) -> None:
    plain = tmp_path / "plain"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    argv = [str(plain) if arg == "<plain file>" else arg for arg in argv]
    assert _run_program(tmp_path, entry.encode(argv, {}, "/")).returncode == status


@needs_program
@pytest.mark.parametrize("content", [
    b"",  # empty
    b"VGE2\0/\x000\x001\0true\0",  # another format
    b"VGE1\0/\x000\x001\0true",  # the last field not ended
    b"VGE1\0/\x000\x000\0",  # no command
    b"VGE1\0/\x001\0NOEQUALS\x001\0true\0",  # an environment entry without '='
    b"VGE1\0/\x001\0=x\x001\0true\0",  # an empty name
    b"VGE1\0/\x00x\x001\0true\0",  # a count that is not a number
    b"VGE1\0/\x000\x0099\0true\0",  # more arguments announced than given
    b"VGE1\0/\x000\x001\0true\0extra\0",  # trailing fields
])
def test_a_file_that_does_not_parse_runs_nothing(tmp_path: Path, content: bytes) -> None:
    done = _run_program(tmp_path, content)
    assert done.returncode == 125
    assert done.stderr.startswith(b"vectraguard-entry: /run/vectraguard-run/command: ")
    assert done.stdout == b""


@needs_program
def test_no_file_runs_nothing() -> None:
    done = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs /run && exec {PROGRAM}"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 125 and b"No such file or directory" in done.stderr


def test_what_cannot_be_handed_over_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="NUL"):
        entry.encode(["a\0b"], {}, "/")
    with pytest.raises(ValueError, match="NUL"):
        entry.encode(["true"], {"A": "x\0y"}, "/")
    with pytest.raises(ValueError, match="NUL"):
        entry.encode([], {}, "/")
    with pytest.raises(ValueError, match="name"):
        entry.encode(["true"], {"A=B": "x"}, "/")


@needs_program
def test_in_a_sandbox_the_command_is_the_runs_own(root: Caller, workspace: Path) -> None:
    args = ["run", "-p", "test-untrusted", "--env", "GIVEN=a b", "--workdir", "/tmp", "--", "sh", "-c",
            'printf "%s|" "$0" "$@"; echo; pwd; echo "$GIVEN"; cat /proc/1/cmdline | tr "\\0" " "', "zero",
            "x=y", "", "two words"]
    done = root.run(args, cwd=workspace)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().split("\n")
    assert lines[:3] == ["zero|x=y||two words|", "/tmp", "a b"]
    assert lines[3].split()[-1] == "/run/vectraguard-entry"  # what PID 1 runs names no command
