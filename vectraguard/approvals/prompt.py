"""Asking a human before something risky runs.

The question goes to the controlling terminal (/dev/tty) — never to the
sandbox's stdin, which may be a script or a pipe the command controls. With
no terminal, the answer is no unless the caller passed --yes. Either way the
decision is returned for the audit record. (Command risk classification
and remembered approvals build on this.)
"""

from __future__ import annotations

import os

from vectraguard.errors import PolicyError


def _ask(question: str) -> bool | None:
    """True/False from the terminal; None when there is no terminal to ask."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    with open(fd, "r+b", buffering=0) as tty:
        tty.write(f"vectraguard: {question} [y/N] ".encode())
        answer = tty.readline().decode(errors="replace").strip().lower()
    return answer in ("y", "yes")


def require(what: str, *, yes: bool, at: str) -> dict[str, str]:
    """Approval for `what`, or PolicyError (exit 125). Returns the audit entry."""
    if yes:
        return {"what": what, "decision": "approved", "by": "--yes", "at": at}
    answer = _ask(f"{what}. Allow?")
    if answer is None:
        raise PolicyError(f"vectraguard: {what} needs approval, and there is no terminal to ask on",
                          hint="run it from a terminal to be asked, or pass --yes")
    if not answer:
        raise PolicyError(f"vectraguard: {what}: not approved")
    return {"what": what, "decision": "approved", "by": "terminal", "at": at}
