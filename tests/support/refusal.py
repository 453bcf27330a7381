"""Bad input as a person meets it: refused with exit 125, one line on stderr, nothing on stdout, no sandbox started."""

from __future__ import annotations

from pathlib import Path

from tests.support.vg import Caller


def refused(caller: Caller, args: list[str], cwd: Path) -> str:
    """The one line `vectraguard ARGS` in `cwd` is refused with (asserting all the rest)."""
    before = set(caller.sandboxes())
    result = caller.run(args, cwd=cwd)
    assert result.returncode == 125, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == b""
    assert set(caller.sandboxes()) == before
    message = result.stderr.decode()
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    return message.strip()
