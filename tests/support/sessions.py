"""A running session of a test's own, and what tests ask `vectraguard` about it (ps, inspect, exec, logs)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.vg import Caller


@dataclass
class Running:
    """A `vectraguard run` the test started and keeps running, with its own audit store."""

    caller: Caller
    proc: subprocess.Popen[bytes]
    env: dict[str, str]  # VECTRAGUARD_DATA_DIR: the test's own audit store (and DOCKER_HOST where needed)
    cwd: Path
    uid: str  # what `id -u` printed in the session's own command

    def vg(self, args: list[str], input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return self.caller.run(args, cwd=self.cwd, extra_env=self.env, input=input)

    def json(self, args: list[str]) -> Any:
        done = self.vg(args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def session_id(self) -> str:
        [row] = self.json(["ps", "--json"])
        return str(row["id"])

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return self.json(["logs", "show", session_id, "--json"])["events"]  # type: ignore[no-any-return]
