"""One check's outcome. Warnings inform; only a failure makes doctor exit 1."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # OK | WARN | FAIL
    detail: str
    hint: str = ""  # how to fix it; empty when there is nothing to do


def ok(check: str, detail: str) -> Finding:
    return Finding(check, OK, detail)


def warn(check: str, detail: str, hint: str) -> Finding:
    return Finding(check, WARN, detail, hint)


def fail(check: str, detail: str, hint: str) -> Finding:
    return Finding(check, FAIL, detail, hint)
