"""The control plane — approvals, trust, policy, the audit store — is out of a sandbox's reach.

A sandboxed command tries to read, change and find them, by their host
paths and by searching its whole filesystem; it finds nothing, and they
are unchanged afterwards. A workspace that would expose them is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import Caller

NAMES = ("approvals.json", "trust.json", "audit.db", "policy.yaml")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[Path]]]:
    data, system = tmp_path / "data", tmp_path / "etc"
    system.mkdir()
    (system / "policy.yaml").write_text("version: 1\n")
    env = {"VECTRAGUARD_DATA_DIR": str(data), "VECTRAGUARD_SYSTEM_DIR": str(system)}
    yield env, [data / "approvals.json", data / "trust.json", data / "audit.db", system / "policy.yaml"]


def digests(files: list[Path]) -> dict[Path, str]:
    return {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_a_sandbox_cannot_read_write_or_find_the_control_plane(
        root: Caller, workspace: Path, state: tuple[dict[str, str], list[Path]]) -> None:
    env, files = state
    project = workspace / ".vectraguard.yaml"
    project.write_text("version: 1\nprofiles: {}\n")
    assert root.run(["trust", str(workspace)], cwd=workspace, extra_env=env).returncode == 0
    assert root.run(["run", "-p", "test-default", "--", "true"], cwd=workspace, extra_env=env).returncode == 0
    files[0].write_text("[]")  # an (empty) approvals store, as `remember` leaves it
    before = digests(files)
    attempts = "; ".join(
        f"cat {f} >/dev/null 2>&1 && echo READ {f}; echo x >> {f} 2>/dev/null && echo WROTE {f}" for f in files)
    names = " -o ".join(f"-name {name}" for name in NAMES)
    search = rf"find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( {names} \) -print 2>/dev/null"
    script = f"{attempts}; {search}; echo done"
    result = root.run(["run", "-p", "test-default", "--", "sh", "-c", script],
                      cwd=workspace, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "done\n"  # nothing read, written or found
    audit_db = files[2]
    after = digests(files)
    # The run itself was recorded (audit.db changed, through vectraguard); the rest is untouched.
    assert {f: d for f, d in after.items() if f != audit_db} == {f: d for f, d in before.items() if f != audit_db}
    assert not audit_db.read_bytes().endswith(b"x\n")
    assert root.run(["logs", "verify"], cwd=workspace, extra_env=env).returncode == 0
    shown = root.last_session(workspace, env)
    [started] = [e for e in shown["events"] if e["kind"] == "started"]
    sources = [m["source"] for m in started["mounts"]]
    assert sources == [str(workspace)]  # the workspace, and nothing of Vectra Guard's


def test_a_workspace_that_holds_the_control_plane_is_refused(root: Caller, workspace: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(workspace / ".state")}
    result = root.run(["run", "-p", "test-default", "--", "true"], cwd=workspace, extra_env=env)
    assert result.returncode == 125
    assert f"it exposes {workspace}/.state (Vectra Guard's own state)" in result.stderr.decode()
    # ... and that refusal is on the record, in the store it protected.
    listed = json.loads(root.run(["logs", "list", "--json"], cwd=workspace, extra_env=env).stdout)
    assert [row["status"] for row in listed] == ["refused"]
