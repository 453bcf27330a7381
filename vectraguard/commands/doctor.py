"""`vectraguard doctor`: one row per check; exit 1 if any check failed."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict

from vectraguard import output
from vectraguard.config import explain
from vectraguard.doctor.checks import run_all
from vectraguard.doctor.finding import FAIL, WARN, Finding

COLUMNS = ["check", "status", "detail", "hint"]


def main(args: argparse.Namespace) -> int:
    findings = run_all()
    failed = sum(f.status == FAIL for f in findings)
    if args.json:
        output.print_json({"ok": failed == 0, "checks": [asdict(f) for f in findings]})
    else:
        # On a terminal (or with $COLUMNS), detail and hint wrap to its width (the hint is the fix: it must be readable).
        width = explain.width() if os.isatty(1) or os.environ.get("COLUMNS", "").isdigit() else None
        output.print_table([asdict(f) for f in findings], COLUMNS, wrap={"detail": 0.55, "hint": 0.45}, width=width)
        print(_summary(findings))
    return 1 if failed else 0


def _summary(findings: list[Finding]) -> str:
    failed = sum(f.status == FAIL for f in findings)
    warned = sum(f.status == WARN for f in findings)
    warnings = f"{warned} warning{'s' if warned != 1 else ''}"
    if failed:
        return f"{failed} check{'s' if failed != 1 else ''} failed, {warnings}: see the hints above"
    return f"ready: no check failed ({warnings})"
