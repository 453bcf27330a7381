"""`vectraguard run --engine docker` end to end on the real Docker daemon: I/O, exit statuses, timeouts,
signals, cleanup (the lifecycle guarantees of tests/test_run_lifecycle.py, on Docker Engine)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.support import docker
from tests.support.vg import Caller

P = ["run", "-p", "test-untrusted", "--engine", "docker"]


@pytest.fixture(autouse=True)
def _images(docker_test_image: str) -> None:
    """The test image copied into Docker (skips when no daemon answers)."""


def sandboxes() -> set[str]:
    """The IDs of Docker containers Vectra Guard made (its owner label), running or not."""
    filters = urllib.parse.quote(json.dumps({"label": ["io.vectraguard.owner"]}))
    return {c["Id"] for c in docker.call("GET", f"/containers/json?all=1&filters={filters}")}


@pytest.mark.parametrize(("command", "status"), [
    (["true"], 0), (["sh", "-c", "exit 3"], 3), (["sh", "-c", "exit 255"], 255), (["no-such-command"], 127),
    (["/etc/hosts"], 126), (["sh", "-c", "kill -TERM $$"], 143), (["sh", "-c", "kill -KILL $$"], 137),
])
def test_exit_status_is_the_commands_own(root: Caller, workspace: Path, command: list[str], status: int) -> None:
    assert root.run([*P, "--", *command], cwd=workspace).returncode == status


def test_streams_stay_apart_and_stdin_reaches_the_command(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--", "sh", "-c", "cat; echo err >&2"], cwd=workspace, input=b"in\x00put\xff")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"in\x00put\xff", b"err\n")


def test_timeout_stops_the_command_with_124(root: Caller, workspace: Path) -> None:
    result = root.run([*P, "--timeout", "2s", "--", "sh", "-c", "trap '' TERM; echo started; sleep 60"],
                      cwd=workspace, timeout=60)
    assert result.returncode == 124 and result.stdout == b"started\n"
    result = root.run([*P, "--timeout", "2s", "--", "sh", "-c", "trap 'echo got TERM; exit 9' TERM; sleep 60 & wait"],
                      cwd=workspace, timeout=60)
    assert result.returncode == 124 and result.stdout == b"got TERM\n"


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_to_vectraguard_stops_and_removes_the_sandbox(root: Caller, workspace: Path, sig: signal.Signals,
                                                             status: int) -> None:
    before = sandboxes()
    proc = root.popen([*P, "--", "sh", "-c", "echo ready; sleep 300"], cwd=workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert sandboxes() - before == set()


def test_the_sandbox_of_a_killed_vectraguard_is_reaped_by_the_next_run(root: Caller, workspace: Path) -> None:
    before = sandboxes()
    proc = root.popen([*P, "--", "sh", "-c", "echo ready; sleep 300"], cwd=workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    orphans = sandboxes() - before
    assert len(orphans) == 1
    proc.kill()
    proc.wait(timeout=30)
    assert sandboxes() & orphans == orphans  # still there: nobody cleaned up
    assert root.run([*P, "--", "true"], cwd=workspace).returncode == 0
    deadline = time.monotonic() + 60
    while sandboxes() & orphans and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sandboxes() & orphans == set()


def test_containers_are_removed_after_normal_runs(root: Caller, workspace: Path) -> None:
    before = sandboxes()
    for command in (["true"], ["false"], ["no-such-command"]):
        root.run([*P, "--", *command], cwd=workspace)
    assert sandboxes() == before


def test_a_daemon_without_userns_remap_is_refused_unless_the_profile_accepts_it(root: Caller, workspace: Path,
                                                                                tmp_path: Path) -> None:
    """A second, private dockerd without userns-remap: the sandbox's uid would be the host's own."""
    socket = tmp_path / "d.sock"
    daemon = subprocess.Popen(
        ["dockerd", "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
         f"--host=unix://{socket}", f"--pidfile={tmp_path / 'pid'}", f"--data-root={tmp_path / 'data'}",
         f"--exec-root={tmp_path / 'exec'}", "--log-level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists() and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.1)
        host = {"DOCKER_HOST": f"unix://{socket}"}
        refused = root.run([*P, "--", "true"], cwd=workspace, extra_env=host)
        assert refused.returncode == 125 and b"userns-remap" in refused.stderr, refused.stderr
        # Accepted by the profile: it would run (the image is not in this daemon), and says so first.
        host["VECTRAGUARD_DATA_DIR"] = str(tmp_path / "audit")
        shared = root.run([*P, "--set", "engine.userns=shared", "--", "true"], cwd=workspace, extra_env=host)
        assert b"engine.userns: shared" in shared.stderr, shared.stderr
        assert b"not found" in shared.stderr, shared.stderr
        # The record says the user namespace as it was: the host's own ids.
        started = root.last_session(workspace, host)["events"][0]
        assert started["sandbox"]["spec"]["userns"] == {"mode": "shared"}, started["sandbox"]["spec"]
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
