"""Running Docker Engine sandboxes, seen and handled from outside: `ps`, `inspect`, `exec`, `stop`
(vectraguard/sessions/, runtime/docker/control.py), and the backstop that ends the sandbox of a
killed `vectraguard` (contrib/entry/vectraguard-entry.c `--await SECONDS`), on the real daemon.

The same promises as tests/test_sessions.py on Podman; each test starts its own long-running
sandbox with a private audit store, so `ps` sees exactly the sessions the test made.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import docker
from tests.support.sessions import Running
from tests.support.vg import LABEL_SESSION, TEST_IMAGE, Caller, outcome

P = ["run", "-p", "test-untrusted", "--engine", "docker"]
SECRET = "docker-exec-secret-4712"
# What the sandbox's own command finds (PATH HOME TERM LANG; container= and HOSTNAME from Docker) and --env's.
ALLOWED_NAMES = {"PATH", "HOME", "TERM", "LANG", "container", "HOSTNAME", "EXEC_SECRET"}


@pytest.fixture(autouse=True)
def _images(docker_test_image: str) -> None:
    """The test image copied into Docker (skips when no daemon answers)."""


def _containers(session_id: str) -> list[dict[str, Any]]:
    """Docker's listing entries of the session's containers, running or not."""
    filters = urllib.parse.quote(json.dumps({"label": [f"{LABEL_SESSION}={session_id}"]}))
    return docker.call("GET", f"/containers/json?all=1&filters={filters}")  # type: ignore[no-any-return]


def _until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _start(caller: Caller, env: dict[str, str], cwd: Path, options: list[str], command: str) -> subprocess.Popen[bytes]:
    argv, full_env = caller.argv(caller.vg([*P, *options, "--", "sh", "-c", command]), env)
    return subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


@pytest.fixture
def data_env() -> Iterator[dict[str, str]]:
    data = Path(tempfile.mkdtemp(prefix="vg-sessions-docker-data-"))
    try:
        yield {"VECTRAGUARD_DATA_DIR": str(data)}
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def running(root: Caller, workspace: Path, data_env: dict[str, str]) -> Iterator[Running]:
    proc = _start(root, data_env, workspace, ["--env", f"EXEC_SECRET={SECRET}"], "id -u; echo ready; sleep 120")
    try:
        assert proc.stdout is not None
        uid = proc.stdout.readline().decode().strip()
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
        yield Running(root, proc, data_env, workspace, uid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # as Ctrl-C would: it stops and removes its sandbox
        proc.communicate(timeout=60)


def test_ps_lists_the_docker_sandbox_with_what_it_uses(running: Running) -> None:
    [row] = running.json(["ps", "--json"])
    assert (row["profile"], row["isolation"], row["engine"]) == ("test-untrusted", "container", "docker")
    assert row["command"] == ["sh", "-c", "id -u; echo ready; sleep 120"]
    assert isinstance(row["cpu_percent"], float) and row["cpu_percent"] >= 0
    assert isinstance(row["memory_bytes"], int) and row["memory_bytes"] > 0  # sh and sleep are charged to it
    [container] = _containers(row["id"])
    assert container["Id"] == row["container_id"] and container["State"] == "running"
    table = running.vg(["ps"])
    assert table.returncode == 0 and row["id"].encode() in table.stdout


def test_inspect_shows_the_docker_sessions_record(running: Running) -> None:
    session_id = running.session_id()
    shown = running.json(["inspect", session_id, "--json"])
    assert shown["id"] == session_id and shown["status"] == "started" and shown["engine"] == "docker"
    assert shown["profile_resolved"]["engine"]["name"] == "docker"
    assert shown["profile_resolved"]["env"]["set"] == {"EXEC_SECRET": "[redacted]"}
    # What Docker was sent (its create body), not Podman's SpecGenerator.
    assert shown["spec"]["create"]["HostConfig"]["CapDrop"] == ["ALL"] and "cap_drop" not in shown["spec"]
    assert "EXEC_SECRET" in shown["spec"]["env_names"]
    text = running.vg(["inspect", session_id])
    assert text.returncode == 0 and b"engine:         docker" in text.stdout
    for out in (json.dumps(shown).encode(), text.stdout):
        assert SECRET.encode() not in out


def test_exec_runs_in_the_docker_sandbox_as_its_command_does(running: Running) -> None:
    session_id = running.session_id()
    status = running.vg(["exec", session_id, "--", "cat", "/proc/self/status"])
    assert status.returncode == 0, status.stderr
    fields = dict(line.split(":\t", 1) for line in status.stdout.decode().splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == running.uid and running.uid != "0"
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2"
    # In the sandbox's own PID namespace, beside its command.
    processes = running.vg(["exec", session_id, "--", "ps", "-e", "-o", "args"])
    assert b"sleep 120" in processes.stdout, processes.stdout
    environ = running.vg(["exec", session_id, "--", "cat", "/proc/self/environ"])
    names = {item.split(b"=", 1)[0].decode() for item in environ.stdout.split(b"\0") if item}
    assert names <= ALLOWED_NAMES and "EXEC_SECRET" in names, names
    assert running.vg(["exec", session_id, "--", "pwd"]).stdout == b"/workspace\n"
    assert running.vg(["exec", session_id, "--", "wc", "-c"], input=b"12345").stdout.strip() == b"5"
    assert running.vg(["exec", session_id, "--", "sh", "-c", f"exit 7 # {SECRET}"]).returncode == 7
    events = running.events(session_id)
    asked = [e for e in events if e["kind"] == "exec"][-1]
    [ended] = [e for e in events if e["kind"] == "exec-finished" and e["exec"] == asked["exec"]]
    assert asked["argv"] == ["sh", "-c", "exit 7 # [redacted]"] and asked["decision"] == "allowed"
    assert (ended["exit_status"], ended["exit_status_from"]) == (7, "docker")
    assert outcome(events)["kind"] == "started"  # the session itself goes on


def test_exec_of_a_command_the_gate_refuses_is_refused_and_recorded(running: Running) -> None:
    session_id = running.session_id()
    refused = running.vg(["exec", session_id, "--", "sh", "-c", "touch /tmp/ran; rm -rf /home"])
    assert refused.returncode == 125 and b"needs approval" in refused.stderr
    assert running.vg(["exec", session_id, "--", "test", "-e", "/tmp/ran"]).returncode == 1  # nothing of it ran
    [event] = [e for e in running.events(session_id) if e["kind"] == "exec" and e["decision"] == "refused"]
    assert event["exit_status"] == 125 and "needs approval" in event["reason"]


def test_an_interrupted_exec_ends_its_command_and_is_recorded(running: Running) -> None:
    session_id = running.session_id()
    argv, env = running.caller.argv(running.caller.vg(["exec", session_id, "--", "sleep", "4711"]), running.env)
    client = subprocess.Popen(argv, cwd=running.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)

    def sleeping() -> bool:
        return b"sleep 4711" in running.vg(["exec", session_id, "--", "ps", "-e", "-o", "args"]).stdout

    try:
        _until(sleeping, "the exec's command to run")
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    assert client.returncode == 130, err
    _until(lambda: not sleeping(), "the exec's command to end")
    interrupted = [e for e in running.events(session_id)
                   if e["kind"] == "exec-finished" and e["exit_status_from"] == "interrupted"]
    assert [e["exit_status"] for e in interrupted] == [130]


def test_stop_ends_the_docker_session_and_removes_its_sandbox(running: Running) -> None:
    session_id = running.session_id()
    stopped = running.vg(["stop", session_id])
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"stopped session {session_id} (interrupted)\n".encode()
    running.proc.communicate(timeout=60)
    assert running.proc.returncode == 128 + signal.SIGTERM
    ended = outcome(running.events(session_id))
    assert ended["kind"] == "finished" and ended["status"] == "interrupted"
    assert ended["reason"].startswith("stopped by `vectraguard stop`")
    assert _containers(session_id) == []
    assert running.json(["ps", "--json"]) == []


@pytest.fixture
def private_daemon(root: Caller, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A Docker daemon of this test's own (contrib/docker/dockerd.sh, remapped, on private paths) with the
    test image, and DOCKER_HOST naming it (for tests/support/docker.py here, for the run through the
    returned environment): every run on the shared daemon reaps the sandboxes whose owner is gone
    (runtime/reaper.py), and one of another test would remove the killed run's sandbox before its
    backstop could be seen."""
    with docker.private_daemon() as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        docker.docker_image(TEST_IMAGE, root.podman())
        yield {"DOCKER_HOST": host}


def test_the_sandbox_of_a_killed_vectraguard_ends_at_its_backstop(root: Caller, workspace: Path,
                                                                  data_env: dict[str, str],
                                                                  private_daemon: dict[str, str]) -> None:
    """SIGKILL leaves nobody to stop the sandbox: the entry program kills the command at the spec's
    backstop_timeout (ceil(timeout + kill_grace) + 30 s, Podman's bound) with no further run."""
    env = {**data_env, **private_daemon}
    proc = _start(root, env, workspace, ["--timeout", "5s", "--set", "limits.kill_grace=1s"],
                  "echo ready; sleep 600")
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else b""
    [row] = json.loads(root.run(["ps", "--json"], cwd=workspace, extra_env=env).stdout)
    proc.kill()
    proc.communicate(timeout=30)
    [container] = _containers(row["id"])
    try:
        assert container["State"] == "running"  # nobody stopped it
        inspected = docker.call("GET", f"/containers/{container['Id']}/json")
        assert inspected["Config"]["Cmd"] == ["--await", "36"]  # ceil(5 + 1) + 30

        def ended() -> bool:
            return not docker.call("GET", f"/containers/{container['Id']}/json")["State"]["Running"]

        _until(ended, "the backstop to end the sandbox", within=120)
        state = docker.call("GET", f"/containers/{container['Id']}/json")["State"]
        assert state["ExitCode"] == 128 + signal.SIGKILL
        assert "is over and Vectra Guard did not stop it: killed" in docker.container_output(container["Id"])
    finally:
        docker.remove_container(container["Id"])
