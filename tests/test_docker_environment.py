"""The Docker Engine the tests run on (contrib/docker/dockerd.sh): there, remapped, beside Podman.

What the Docker tests take for granted is checked here, against the real daemon: it
answers; it runs every container in a user namespace of its own range (userns-remap),
which overlaps no other range; it leaves Podman, Podman's networks and the firewall
alone; and the script that starts it is idempotent and stops only its own daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker import (
    LABEL,
    call,
    container_output,
    docker_available,
    docker_image,
    remove_container,
    request,
)
from tests.support.polling import wait_for
from tests.support.testimage import SANDBOX_UID
from tests.support.vg import TEST_IMAGE, Caller

REPO = Path(__file__).resolve().parent.parent
DOCKERD_SH = REPO / "contrib" / "docker" / "dockerd.sh"
PIDFILE = Path("/run/vectraguard-dockerd.pid")
# Within this machine's hard limits (Podman's default nofile is above them).
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

_unavailable = docker_available()
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the Docker daemon is rootful: these tests need root"),
    pytest.mark.skipif(_unavailable is not None, reason=_unavailable or ""),
]


def subordinate_ranges(path: Path) -> list[tuple[str, int, int]]:
    """(user, first id, count) of every line of /etc/subuid or /etc/subgid."""
    ranges = []
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            ranges.append((fields[0], int(fields[1]), int(fields[2])))
    return ranges


def remap_base() -> int:
    """The first host uid of dockremap's range: container uid 0 on the host."""
    [first] = [first for user, first, _ in subordinate_ranges(Path("/etc/subuid")) if user == "dockremap"]
    return first


def run_container(image: str, command: list[str], name: str) -> str:
    """Create and start a labelled container as uid:gid 1000 with no network; its ID."""
    created = call("POST", "/containers/create", {
        "Image": image,
        "Cmd": command,
        "User": f"{SANDBOX_UID}:{SANDBOX_UID}",
        "Labels": {LABEL: name},
        "HostConfig": {"NetworkMode": "none"},
    })
    container_id: str = created["Id"]
    try:
        call("POST", f"/containers/{container_id}/start")
    except Exception:
        remove_container(container_id)
        raise
    return container_id


def output_lines(container_id: str, count: int) -> list[str]:
    """Its first `count` lines of output, once it has printed them all; else []."""
    lines = container_output(container_id).splitlines(keepends=True)[:count]
    if len(lines) < count or not lines[-1].endswith("\n"):
        return []
    return [line.rstrip("\n") for line in lines]


@pytest.fixture
def container() -> Iterator[list[str]]:
    """IDs of the containers a test creates, appended by the test; removed afterwards."""
    ids: list[str] = []
    yield ids
    for container_id in ids:
        remove_container(container_id)


def test_the_daemon_answers() -> None:
    status, answer = request("GET", "/_ping")
    assert (status, answer) == (200, b"OK")
    version = call("GET", "/version")
    assert tuple(int(part) for part in version["ApiVersion"].split(".")) >= (1, 41), version


def test_userns_remap_is_on_with_dockremaps_range() -> None:
    info = call("GET", "/info")
    assert "name=userns" in info["SecurityOptions"], info["SecurityOptions"]
    # A remapped daemon keeps its state in a directory named after the range's root.
    base = remap_base()
    assert info["DockerRootDir"].endswith(f"/{base}.{base}"), info["DockerRootDir"]


@pytest.mark.parametrize("path", [Path("/etc/subuid"), Path("/etc/subgid")])
def test_dockremaps_range_overlaps_no_other(path: Path) -> None:
    ranges = subordinate_ranges(path)
    [(first, count)] = [(first, count) for user, first, count in ranges if user == "dockremap"]
    assert count >= 65536
    clashes = [user for user, other, size in ranges
               if user != "dockremap" and other < first + count and first < other + size]
    assert clashes == [], f"{path}: dockremap's range overlaps those of {clashes}"
    # Podman's --userns=auto takes its namespaces from this user's range (its default
    # root-auto-userns-user; contrib/install.sh adds it), so it must be there too.
    assert any(user == "containers" for user, _, _ in ranges)


def test_uid_1000_inside_is_not_uid_1000_on_the_host(docker_test_image: str, container: list[str]) -> None:
    container_id = run_container(
        docker_test_image, ["sh", "-c", "id -u; cat /proc/self/uid_map; exec sleep 600"], "uid-remapped")
    container.append(container_id)
    inside_uid, uid_map = wait_for(lambda: output_lines(container_id, 2), "the container's id -u and uid_map", 30)
    base = remap_base()
    # From inside: it is uid 1000, in a namespace whose uid 0 is dockremap's first id.
    assert inside_uid == str(SANDBOX_UID)
    assert uid_map.split() == ["0", str(base), "65536"]
    # From the host: the same process, as the kernel sees it.
    pid = call("GET", f"/containers/{container_id}/json")["State"]["Pid"]
    assert pid > 0
    status = Path(f"/proc/{pid}/status").read_text()
    [uids] = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
    assert uids == [str(base + SANDBOX_UID)] * 4
    assert str(SANDBOX_UID) not in uids


def _podman_networks() -> list[dict[str, object]]:
    listing = subprocess.run(["podman", "network", "ls", "--format", "json"],
                             capture_output=True, check=True, text=True).stdout
    names = sorted(network["name"] for network in json.loads(listing))
    inspected = subprocess.run(["podman", "network", "inspect", *names],
                               capture_output=True, check=True, text=True).stdout
    return sorted(json.loads(inspected), key=lambda network: str(network["name"]))


def test_podman_runs_and_its_networks_are_untouched(root: Caller, docker_test_image: str,
                                                    container: list[str]) -> None:
    before = _podman_networks()
    # Docker runs a container while Podman runs one.
    container.append(run_container(docker_test_image, ["sleep", "600"], "beside-podman"))
    podman = subprocess.run([*root.podman(), "run", "--rm", "--network", "none", *ULIMITS, TEST_IMAGE, "true"],
                            capture_output=True, check=False, timeout=120)
    assert podman.returncode == 0, podman.stderr.decode(errors="replace")
    assert _podman_networks() == before
    # --bridge=none: no docker0 bridge beside Podman's.
    assert not Path("/sys/class/net/docker0").exists()


@pytest.mark.parametrize("program", [["iptables", "-S"], ["iptables", "-t", "nat", "-S"], ["nft", "list", "ruleset"]])
def test_the_firewall_has_no_docker_chain(program: list[str]) -> None:
    if shutil.which(program[0]) is None:
        pytest.skip(f"{program[0]} not found")
    rules = subprocess.run(program, capture_output=True, check=True, text=True).stdout
    assert "DOCKER" not in rules, rules


def test_the_test_image_copy_keeps_its_id(root: Caller, docker_test_image: str) -> None:
    podman_id = subprocess.run([*root.podman(), "image", "inspect", "--format", "{{.Id}}", TEST_IMAGE],
                               capture_output=True, check=True, text=True).stdout.strip()
    assert docker_test_image == podman_id
    assert call("GET", f"/images/{TEST_IMAGE}/json")["Id"] == f"sha256:{podman_id}"
    # Copying again finds it there.
    assert docker_image(TEST_IMAGE, root.podman()) == podman_id


def test_the_default_image_runs_on_docker(docker_default_image: str, container: list[str]) -> None:
    container_id = run_container(docker_default_image, ["sh", "-c", "python3 -c 'print(6 * 7)'; exec sleep 600"],
                                 "default-image")
    container.append(container_id)
    assert wait_for(lambda: container_output(container_id), "python3's output", 60) == "42\n"


def _dockerd_sh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKERD_SH), *args], capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, **(env or {})})


def test_dockerd_sh_again_starts_nothing() -> None:
    pid_before = PIDFILE.read_text() if PIDFILE.exists() else None
    result = _dockerd_sh()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "contrib/docker/dockerd.sh: dockerd answers on /run/docker.sock\n"
    assert (PIDFILE.read_text() if PIDFILE.exists() else None) == pid_before


@pytest.fixture
def private_daemon() -> Iterator[dict[str, str]]:
    """The environment that moves dockerd.sh's daemon to private places (not the shared daemon's)."""
    run = Path(tempfile.mkdtemp(prefix="vgd-", dir="/run"))
    data = Path(tempfile.mkdtemp(prefix="vectraguard-test-dockerd-", dir="/var/lib"))
    env = {
        "VECTRAGUARD_DOCKERD_SOCKET": str(run / "docker.sock"),
        "VECTRAGUARD_DOCKERD_PIDFILE": str(run / "dockerd.pid"),
        "VECTRAGUARD_DOCKERD_DATA_ROOT": str(data),
        "VECTRAGUARD_DOCKERD_EXEC_ROOT": str(run / "exec"),
        "VECTRAGUARD_DOCKERD_LOG": str(run / "dockerd.log"),
    }
    yield env
    _dockerd_sh("--stop", env=env)
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)


def running(pid: str) -> bool:
    """Whether the process is there and not a zombie (its new parent, once dockerd.sh
    has exited, may not have reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_dockerd_sh_stop_stops_its_own_daemon_only(private_daemon: dict[str, str]) -> None:
    shared_pid = PIDFILE.read_text().strip() if PIDFILE.exists() else None
    started = _dockerd_sh(env=private_daemon)
    assert started.returncode == 0, started.stderr
    pid = Path(private_daemon["VECTRAGUARD_DOCKERD_PIDFILE"]).read_text().strip()
    assert Path(f"/proc/{pid}/comm").read_text() == "dockerd\n"
    assert f"--host unix://{private_daemon['VECTRAGUARD_DOCKERD_SOCKET']}" in " ".join(
        Path(f"/proc/{pid}/cmdline").read_text().split("\0"))

    stopped = _dockerd_sh("--stop", env=private_daemon)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"contrib/docker/dockerd.sh: stopped dockerd (pid {pid})\n"
    assert not running(pid)
    # The shared daemon still runs and answers.
    if shared_pid:
        assert running(shared_pid)
    assert docker_available() is None
    again = _dockerd_sh("--stop", env=private_daemon)
    assert again.returncode == 0 and "no dockerd of ours is running" in again.stdout


def test_dockerd_sh_refuses_unknown_arguments() -> None:
    result = _dockerd_sh("--restart")
    assert result.returncode == 1
    assert result.stderr == ("contrib/docker/dockerd.sh: unknown argument: --restart "
                             "(usage: contrib/docker/dockerd.sh [--stop | --enable-remap])\n")
