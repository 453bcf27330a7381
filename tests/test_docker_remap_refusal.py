"""contrib/docker/dockerd.sh (and so `contrib/install.sh --engine docker`) beside a Docker daemon that
already answers without userns-remap, as Debian's docker.service does with its default flags: the
daemon is left as it is (turning remapping on hides its images and containers), the choice is said,
and the exit status is 3. The daemon here is a private one of the test's (this machine has no
systemd, so `--enable-remap`'s docker.service path cannot run here: it refuses other daemons).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker import docker_available

REPO = Path(__file__).resolve().parent.parent
DOCKERD_SH = REPO / "contrib" / "docker" / "dockerd.sh"


@pytest.fixture
def daemon_without_remap() -> Iterator[dict[str, str]]:
    """A private dockerd with Docker's defaults for user namespaces (none), and dockerd.sh's environment
    pointed at it (its socket, pid file, data root; a daemon.json of the test's own)."""
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    reason = docker_available()
    if reason:
        pytest.skip(reason)
    run = Path(tempfile.mkdtemp(prefix="vgr-", dir="/run"))
    data = Path(tempfile.mkdtemp(prefix="vectraguard-test-noremap-", dir="/var/lib"))
    socket = run / "docker.sock"
    daemon = subprocess.Popen(
        ["dockerd", "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
         f"--host=unix://{socket}", f"--pidfile={run / 'pid'}", f"--data-root={data}",
         f"--exec-root={run / 'exec'}", "--log-level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            assert daemon.poll() is None and time.monotonic() < deadline, "the private dockerd did not start"
            time.sleep(0.1)
        yield {"VECTRAGUARD_DOCKERD_SOCKET": str(socket), "VECTRAGUARD_DOCKERD_PIDFILE": str(run / "ours.pid"),
               "VECTRAGUARD_DOCKERD_DATA_ROOT": str(data), "VECTRAGUARD_DOCKERD_EXEC_ROOT": str(run / "ours-exec"),
               "VECTRAGUARD_DOCKERD_LOG": str(run / "ours.log"),
               "VECTRAGUARD_DOCKERD_CONFIG": str(run / "etc" / "daemon.json")}
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        subprocess.run(["rm", "-rf", str(run), str(data)], check=False)


def dockerd_sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKERD_SH), *args], capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, **env})


def _security_options(socket: str) -> list[str]:
    done = subprocess.run(["docker", "--host", f"unix://{socket}", "info", "--format", "{{json .SecurityOptions}}"],
                          capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_daemon_without_remap_is_left_alone_and_the_choice_said(daemon_without_remap: dict[str, str]) -> None:
    env = daemon_without_remap
    before = _security_options(env["VECTRAGUARD_DOCKERD_SOCKET"])
    assert not any("name=userns" in option for option in before)
    refused = dockerd_sh(env)
    assert refused.returncode == 3, refused.stderr
    assert f"dockerd answers on {env['VECTRAGUARD_DOCKERD_SOCKET']}, but without userns-remap" in refused.stderr
    assert "hides this daemon's existing images and containers" in refused.stderr
    assert "--docker-userns-remap" in refused.stderr
    # Nothing was changed or started: the same daemon, no configuration written, no daemon of the script's.
    assert _security_options(env["VECTRAGUARD_DOCKERD_SOCKET"]) == before
    assert not Path(env["VECTRAGUARD_DOCKERD_CONFIG"]).exists()
    assert not Path(env["VECTRAGUARD_DOCKERD_PIDFILE"]).exists() or \
        not Path(env["VECTRAGUARD_DOCKERD_PIDFILE"]).read_text().strip()


def test_enable_remap_changes_only_systemds_docker_service(daemon_without_remap: dict[str, str]) -> None:
    env = daemon_without_remap
    asked = dockerd_sh(env, "--enable-remap")
    assert asked.returncode == 1
    assert "is not systemd's docker.service: restart it with --userns-remap=default yourself" in asked.stderr
    assert not Path(env["VECTRAGUARD_DOCKERD_CONFIG"]).exists()
