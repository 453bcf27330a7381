"""Waiting for a condition in tests: polled with a deadline, never a sleep standing in for the wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float, interval_s: float = 0.05) -> Any:
    """condition()'s first true value, polled every `interval_s` for at most `deadline_s` seconds;
    AssertionError naming `what` when it never comes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}")
