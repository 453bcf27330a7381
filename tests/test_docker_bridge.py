"""Network `full` on Docker Engine: Docker's default bridge, on a daemon of the test's own that has one.

The shared test daemon is started without a bridge (contrib/docker/dockerd.sh --bridge=none), and a run
of network `full` there is refused (tests/test_engine.py). This daemon gets docker0 with an address of
its own and, like the shared one, no firewall rules, forwarding or masquerading: the sandbox gets an
interface on the bridge and can reach nothing beyond the host's side of it. No traffic is sent: the
test reads the sandbox's interfaces and addresses from inside. Podman's networks stay as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import docker
from tests.support.vg import TEST_IMAGE, Caller

BRIDGE = "172.31.250.1/24"  # private (RFC 1918); not Docker's default 172.17.0.0/16, not Podman's 10.88.0.0/16

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a rootful Docker daemon")


@pytest.fixture
def bridged(root: Caller, monkeypatch: pytest.MonkeyPatch, docker_test_image: str) -> Iterator[dict[str, str]]:
    try:
        with docker.private_daemon({"VECTRAGUARD_DOCKERD_BIP": BRIDGE}) as host:
            monkeypatch.setenv("DOCKER_HOST", host)
            docker.docker_image(TEST_IMAGE, root.podman())
            yield {"DOCKER_HOST": host}
    finally:
        # dockerd leaves its bridge behind when it stops: the host gets back what it had.
        subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, timeout=60, check=False)


def _podman_networks() -> list[str]:
    done = subprocess.run(["podman", "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Subnets}}"],
                          capture_output=True, text=True, timeout=60, check=True)
    return sorted(done.stdout.splitlines())


def test_full_is_dockers_bridge_and_leaves_podmans_networks_alone(root: Caller, workspace: Path,
                                                                  bridged: dict[str, str]) -> None:
    podman_before = _podman_networks()
    result = root.run(["run", "-p", "test-default", "--workspace", "none", "--engine", "docker", "--network", "full",
                       "--yes", "--",
                       "sh", "-c", "cat /proc/net/dev; echo ---; cat /proc/net/fib_trie"], cwd=workspace,
                      extra_env=bridged)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    devices, _, routes = result.stdout.decode().partition("---")
    assert "eth0:" in devices and "lo:" in devices
    assert "172.31.250." in routes, routes  # its address on the bridge (/32 host LOCAL entry)
    session = json.loads(root.run(["logs", "list", "--json", "--limit", "1"], cwd=workspace,
                                  extra_env=bridged).stdout)[0]
    shown = json.loads(root.run(["logs", "show", session["id"], "--json"], cwd=workspace, extra_env=bridged).stdout)
    [started] = [e for e in shown["events"] if e["kind"] == "started"]
    assert started["engine"] == "docker" and started["sandbox"]["spec"]["create"]["HostConfig"]["NetworkMode"] == "bridge"
    assert _podman_networks() == podman_before
    # And Podman still runs its own sandboxes beside it.
    podman_run = root.run(["run", "-p", "test-untrusted", "--", "true"], cwd=workspace)
    assert podman_run.returncode == 0, podman_run.stderr
