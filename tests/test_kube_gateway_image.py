"""The gateway image (`vectraguard image build --gateway`) run by Podman, as a cluster would run it.

On an `--internal` network the test creates (no way off the machine): a
web server in one container, the gateway image in another (read-only root
filesystem, no capabilities, its own non-root user), and a client that
goes through it with http_proxy. The server's address is private, so it is
opened as any private destination is, by a CIDR entry naming it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import polling
from tests.support.vg import DEFAULT_IMAGE_REF, TEST_IMAGE, Caller
from vectraguard.images.gateway_image import gateway_ref

pytestmark = [pytest.mark.skipif(shutil.which("podman") is None, reason="podman is missing"),
              pytest.mark.skipif(os.geteuid() != 0, reason="creates a Podman network as root")]

SESSION = "019a2b3c4d5e6f70819a"
DEADLINE_S = 60.0
# Podman's default rlimits are above this host's hard ones for root's containers: name ours.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
    return done.stdout


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    return polling.wait_for(condition, what, DEADLINE_S)


@pytest.fixture(scope="module")
def gateway_image(root: Caller, default_image: str) -> str:
    """The gateway image of the code under test (--rebuild: the tag is the version, which a change keeps)."""
    work = Path(tempfile.mkdtemp(prefix="vg-gateway-image-"))
    try:
        result = root.run(["image", "build", "--gateway", "--rebuild"], cwd=work, timeout=600)
    finally:
        shutil.rmtree(work)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return gateway_ref()


@pytest.fixture
def network() -> Iterator[tuple[str, list[str]]]:
    """An --internal network and the names of the containers the test starts on it (removed at the end)."""
    name = f"vgtest-gw-{secrets.token_hex(4)}"
    podman("network", "create", "--internal", name)
    containers: list[str] = []
    try:
        yield name, containers
    finally:
        for container in containers:
            podman("rm", "-f", "-t", "0", container, check=False)
        podman("network", "rm", "-f", name, check=False)


def address(container: str, network: str) -> str:
    return podman("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
                  container).strip()


def log_lines(container: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in podman("logs", container).splitlines() if line.startswith("{")]


def test_the_gateway_image_serves_a_pod_network_and_logs_each_decision(
        gateway_image: str, network: tuple[str, list[str]]) -> None:
    net, containers = network
    token = net.rpartition("-")[2]
    web, gateway = f"vgtest-gw-web-{token}", f"vgtest-gw-proxy-{token}"
    containers += [web, gateway]
    podman("run", "-d", "--name", web, "--network", net, *ULIMITS, DEFAULT_IMAGE_REF, "sh", "-c",
           "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/hello.txt && "
           "exec python3 -u -m http.server 8080 --directory /tmp/www")
    wait_for(lambda: "Serving HTTP" in podman("logs", web), "the web server")
    web_ip = address(web, net)
    podman("run", "-d", "--name", gateway, "--network", net, "--read-only", "--cap-drop", "all",
           "--security-opt", "no-new-privileges", *ULIMITS, gateway_image,
           "--session", SESSION, "--allow", f"{web_ip}/32:8080")
    wait_for(lambda: any(line["event"] == "listening" for line in log_lines(gateway)), "the gateway")
    proxy = f"http://{address(gateway, net)}:3128"

    def through_gateway(url: str) -> str:
        return podman("run", "--rm", "--network", net, *ULIMITS, "-e", f"http_proxy={proxy}", TEST_IMAGE,
                      "sh", "-c", f"wget -O - {url} 2>&1; echo rc=$?")

    allowed = through_gateway(f"http://{web_ip}:8080/hello.txt")
    denied = through_gateway(f"http://{web_ip}:8081/hello.txt")
    assert "hello-from-web" in allowed and "rc=0" in allowed, allowed
    assert "403 Forbidden" in denied and "rc=1" in denied, denied
    wait_for(lambda: any(line["event"] == "closed" for line in log_lines(gateway)), "the closed line")
    podman("stop", "-t", "30", gateway)
    assert podman("inspect", "-f", "{{.State.ExitCode}}", gateway).strip() == "0"
    assert podman("inspect", "-f", "{{.Config.User}}", gateway).strip() == "1000:1000"
    lines = log_lines(gateway)
    assert {line["session"] for line in lines} == {SESSION}
    decisions = [(line["decision"], line["host"], line["port"], line.get("refusal"))
                 for line in lines if line["event"] == "connection"]
    assert decisions == [("allowed", web_ip, 8080, None), ("denied", web_ip, 8081, "port")]
    [closed] = [line for line in lines if line["event"] == "closed"]
    assert closed["bytes_in"] > len("hello-from-web") and closed["address"] == web_ip
    assert lines[-1]["event"] == "stopped" and lines[-1]["network_attempts"] == 2


def test_options_of_other_images_are_refused_with_the_gateway(root: Caller, tmp_path: Path) -> None:
    result = root.run(["image", "build", "--gateway", "--mirror", "http://deb.example/debian"], cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr.decode()) == (
        125, b"", ("vectraguard: image build --gateway: --mirror does not apply; the gateway image is the default "
        "image plus Vectra Guard's own package\n"))
