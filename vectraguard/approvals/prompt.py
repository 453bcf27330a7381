"""Asking a human, on the controlling terminal.

The question goes to /dev/tty — never to the sandbox's stdin, which may be
a script or a pipe the command itself controls. The caller escapes what the
command contains (output.printable), so a command cannot paint its own
prompt (or hide part of itself) with terminal escape sequences.
"""

from __future__ import annotations

from enum import Enum

from vectraguard.terminal import controlling


class Answer(Enum):
    ONCE = "yes"
    NO = "no"
    REMEMBER = "remember"


def ask(screen: str, remember_for: str | None, *, once: bool = True) -> Answer | None:
    """The person's answer; None when there is no terminal to ask on.

    `screen` is shown first; `remember_for` (e.g. "24h") offers the
    remember answer, None leaves it out; without `once` (approving ahead of
    time) every yes is remembered. Anything but a yes is a no."""
    try:
        fd = controlling.open_terminal()
    except OSError:
        return None
    if once:
        question = "allow this run? [y]es once, [N]o" + (f", [r]emember for {remember_for}" if remember_for else "")
    else:
        question = f"approve this command, and remember it for {remember_for}? [y]es, [N]o"
    with open(fd, "r+b", buffering=0) as tty:
        tty.write(f"{screen}\nvectraguard: {question}: ".encode())
        try:
            reply = tty.readline().decode(errors="replace").strip().lower()
        except KeyboardInterrupt:
            tty.write(b"\n")
            return Answer.NO
    if reply in ("y", "yes"):
        return Answer.ONCE if once else Answer.REMEMBER
    if remember_for and reply in ("r", "remember"):
        return Answer.REMEMBER
    return Answer.NO
