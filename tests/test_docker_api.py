"""The Docker Engine API client (runtime/docker/api.py) and daemon finder (daemon.py), on the real dockerd.

Containers of the tests' busybox image, imported into Docker through the
client's own import call; their stdio pumped by attach.StreamPump, as a run
pumps Podman's. Everything made here carries a label naming this test
process and is removed at the end. Skipped, with the reason, when no Docker
daemon answers on /run/docker.sock.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import wait_for
from tests.support.testimage import HOST_BUSYBOX, PATH, rootfs_layer
from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime.attach import StreamPump
from vectraguard.runtime.docker import daemon
from vectraguard.runtime.docker.api import Docker, DockerError
from vectraguard.runtime.unix_http import ApiError

SOCKET = "/run/docker.sock"
LABEL = "vectraguard.test.docker-api"
RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
REPO = "vectraguard-test-docker-api"

pytestmark = pytest.mark.skipif(not Docker(SOCKET).ping(), reason=f"no Docker daemon answers on {SOCKET}")


@pytest.fixture(scope="module")
def client() -> Iterator[Docker]:
    docker = Docker(SOCKET)
    yield docker
    for container in docker.list_labelled(f"{LABEL}={RUN_ID}"):
        docker.remove(container["Id"])


@pytest.fixture(scope="module")
def image(client: Docker) -> Iterator[str]:
    """The test image, imported from its root filesystem tar in 64 KiB chunks (chunked upload)."""
    layer = rootfs_layer(Path(tempfile.gettempdir()) / "vg-docker-api-image")
    tag = RUN_ID
    image_id = client.image_import((layer[i : i + 65536] for i in range(0, len(layer), 65536)), REPO, tag,
                                   changes=[f"ENV PATH={PATH}", 'CMD ["/bin/sh"]'])
    assert client.image_id(f"{REPO}:{tag}") == image_id
    yield f"{REPO}:{tag}"
    for container in client.list_labelled(f"{LABEL}={RUN_ID}"):
        client.remove(container["Id"])
    client.image_remove(image_id)


def _body(image: str, cmd: list[str], tty: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    # StdinOnce: our half-close of the attach stream closes the command's
    # stdin (without it Docker would close its output instead: api.py).
    return {"Image": image, "Cmd": cmd, "Tty": tty, "OpenStdin": True, "StdinOnce": not tty,
            "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
            "Labels": {LABEL: RUN_ID, **(labels or {})}, "HostConfig": {"NetworkMode": "none"}}


class Output:
    """StreamPump's sink: the bytes of stream 1 and stream 2, kept apart."""

    def __init__(self) -> None:
        self.streams: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

    def __call__(self, stream: int, payload: bytes) -> None:
        self.streams[stream] += payload

    @property
    def stdout(self) -> bytes:
        return bytes(self.streams[1])

    @property
    def stderr(self) -> bytes:
        return bytes(self.streams[2])


def _stdin(data: bytes, tmp_path: Path, end: bool) -> tuple[int, int | None]:
    """A descriptor reading `data`, then end-of-file (`end`: a file) or nothing
    more (a pipe whose other end, returned too, stays open)."""
    if not end:
        read_end, write_end = os.pipe()
        os.write(write_end, data)  # small: fits the pipe's buffer
        return read_end, write_end
    path = tmp_path / f"stdin-{secrets.token_hex(4)}"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY), None


def _run(client: Docker, image: str, cmd: list[str], tmp_path: Path, stdin: bytes = b"",
         during: Callable[[str, Output], None] | None = None, tty: bool = False,
         stdin_once: bool = True) -> tuple[Output, int]:
    """Create, attach (before start), start, pump to the stream's end, wait; the output and exit status.
    `during(cid, output)` runs once the output holds b"ready" (the pump then goes on). A terminal's
    stdin never ends here: Docker closes the output when it does (api.py)."""
    body = _body(image, cmd, tty)
    body["StdinOnce"] = stdin_once and not tty
    cid = client.create(body, name=f"vg-test-dapi-{secrets.token_hex(6)}")
    sock, initial = client.attach(cid)
    wake_read, wake_write = os.pipe()
    stdin_fd, stdin_writer = _stdin(stdin, tmp_path, end=not tty)
    output = Output()
    try:
        client.start(cid)
        pump = StreamPump(sock, initial, stdin_fd, output, wake_read, raw=tty)
        if during is not None:
            assert pump.run(None, lambda: b"ready" in output.stdout) == "stop"
            during(cid, output)
        assert pump.run(None, lambda: False) == "eof"
        return output, client.wait(cid, 60)
    finally:
        sock.close()
        for fd in (wake_read, wake_write, stdin_fd, stdin_writer):
            if fd is not None:
                os.close(fd)
        client.remove(cid)


# -- the daemon ---------------------------------------------------------------------------------

def test_facts_agree_with_the_docker_cli() -> None:
    """What facts() reads is what `docker info` (another client, Go's) says."""
    facts = daemon.facts(daemon.connect())
    shown = json.loads(subprocess.run(["docker", "-H", f"unix://{SOCKET}", "info", "--format", "{{json .}}"],
                                      capture_output=True, check=True, timeout=60).stdout)
    assert facts.version == shown["ServerVersion"]
    assert facts.api_version == "1.41"
    assert facts.security_options == tuple(shown["SecurityOptions"])
    assert facts.userns_remap == any(o.startswith("name=userns") for o in shown["SecurityOptions"])
    assert facts.rootless == any(o.startswith("name=rootless") for o in shown["SecurityOptions"])
    assert (facts.cgroup_driver, facts.cgroup_version) == (shown["CgroupDriver"], shown["CgroupVersion"])
    assert facts.default_runtime == shown["DefaultRuntime"]
    assert facts.socket == SOCKET


def test_the_test_daemon_remaps_user_namespaces() -> None:
    """The design's test dockerd runs with --userns-remap=default."""
    assert daemon.facts(daemon.connect()).userns_remap


def test_a_missing_socket_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{missing}")
    assert daemon.socket_path() == str(missing)
    assert not daemon.answers()
    with pytest.raises(RuntimeUnavailable) as caught:
        daemon.connect()
    assert caught.value.lines() == [(
        f"vectraguard: no Docker daemon: {missing} does not exist; "
        "start dockerd (as root: contrib/docker/dockerd.sh), or set DOCKER_HOST=unix:///path/to/docker.sock")]
    assert caught.value.exit_status == 125
    with pytest.raises(RuntimeUnavailable) as direct:
        Docker(str(missing)).inspect("anything")
    assert direct.value.message == (
        f"vectraguard: cannot reach the Docker daemon at {missing}: No such file or directory")


def test_a_socket_nobody_serves_does_not_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    dead = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(dead))  # bound, never listening: connections are refused
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")
        assert not daemon.answers()
        with pytest.raises(RuntimeUnavailable, match=f"the Docker daemon at {dead} does not answer"):
            daemon.connect()
    finally:
        listener.close()


def test_a_daemon_that_never_answers_is_not_waited_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`engine: auto` asks answers(): a socket that accepts and says nothing is "no" after the timeout."""
    import socket

    silent = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(silent))
    listener.listen(8)  # connections queue; nothing ever reads them
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{silent}")
        assert not daemon.answers(timeout=0.2)
        with pytest.raises(RuntimeUnavailable, match=r"Docker did not answer GET /containers/x/json in time"):
            Docker(str(silent), timeout=0.2).inspect("x")
    finally:
        listener.close()


def test_tcp_docker_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert not daemon.answers()
    with pytest.raises(RuntimeUnavailable) as caught:
        daemon.connect()
    assert caught.value.lines() == [(
        "vectraguard: DOCKER_HOST=tcp://127.0.0.1:2375 is not supported: Vectra Guard talks to Docker only "
        "through a Unix socket on this host (no tcp://, ssh:// or TLS); "
        "unset DOCKER_HOST, or set it to unix:///run/docker.sock")]


def test_the_rootful_socket_without_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert daemon.socket_path() == SOCKET  # root: $XDG_RUNTIME_DIR/docker.sock is not looked for
    assert daemon.answers()
    assert daemon.connect().socket_path == SOCKET


# -- containers ---------------------------------------------------------------------------------

def test_stdout_and_stderr_kept_apart_binary_and_large(client: Docker, image: str, tmp_path: Path) -> None:
    """3 MiB of random bytes through stdin to stdout, the busybox binary to stderr, NUL and 0xff bytes."""
    data = os.urandom(3 * 1024 * 1024)
    output, status = _run(client, image, ["sh", "-c", "cat; cat /bin/busybox >&2; printf '\\0\\377end' >&2"],
                          tmp_path, stdin=data)
    assert status == 0
    assert output.stdout == data
    assert output.stderr == HOST_BUSYBOX.read_bytes() + b"\0\xffend"


def test_interleaved_streams_keep_their_order_within_each(client: Docker, image: str, tmp_path: Path) -> None:
    script = "i=0; while [ $i -lt 500 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
    output, status = _run(client, image, ["sh", "-c", script], tmp_path)
    assert status == 0
    assert output.stdout == b"".join(b"out%d\n" % i for i in range(500))
    assert output.stderr == b"".join(b"err%d\n" % i for i in range(500))


def test_stdin_reaches_the_command_and_ends(client: Docker, image: str, tmp_path: Path) -> None:
    """The command reads to end-of-file (our half-close), then goes on and writes more."""
    output, status = _run(client, image, ["sh", "-c", "wc -c; echo after-eof"], tmp_path, stdin=b"x" * 100_001)
    assert (output.stdout, output.stderr, status) == (b"100001\nafter-eof\n", b"", 0)


def test_empty_stdin_is_end_of_file_at_once(client: Docker, image: str, tmp_path: Path) -> None:
    output, status = _run(client, image, ["cat"], tmp_path)
    assert (output.stdout, status) == (b"", 0)


def test_exit_status(client: Docker, image: str, tmp_path: Path) -> None:
    output, status = _run(client, image, ["sh", "-c", "echo bye; exit 7"], tmp_path)
    assert (output.stdout, status) == (b"bye\n", 7)


def test_kill_with_a_named_signal(client: Docker, image: str, tmp_path: Path) -> None:
    """SIGUSR1 reaches the command's trap: the signal is the one asked for."""
    script = "trap 'echo got-usr1; exit 42' USR1; echo ready; sleep 600 & wait"
    output, status = _run(client, image, ["sh", "-c", script], tmp_path,
                          during=lambda cid, _: client.kill(cid, "SIGUSR1"))
    assert (output.stdout, status) == (b"ready\ngot-usr1\n", 42)


def test_kill_9_is_128_plus_9(client: Docker, image: str, tmp_path: Path) -> None:
    _, status = _run(client, image, ["sh", "-c", "echo ready; sleep 600"], tmp_path,
                     during=lambda cid, _: client.kill(cid, "SIGKILL"))
    assert status == 137


def test_a_terminal_stream_is_raw(client: Docker, image: str, tmp_path: Path) -> None:
    """With Tty the stream has no frames; the pty turns \\n into \\r\\n; resize reaches it."""
    def resize(cid: str, _: Output) -> None:
        client.resize(cid, 33, 77)
        wait_for(lambda: client.inspect(cid)["State"]["Running"], "the container to run", 30)

    # The pump sends stdin only after `during`: the window is resized before `read` returns.
    output, status = _run(client, image, ["sh", "-c", "echo ready; read line; stty size; echo got-$line"], tmp_path,
                          stdin=b"typed\n", during=resize, tty=True)
    assert status == 0
    assert output.stdout == b"ready\r\ntyped\r\n33 77\r\ngot-typed\r\n"  # the pty echoes what is typed
    assert output.stderr == b""


def _output_until_the_stream_ends(client: Docker, body: dict[str, Any], stdin: bytes, tmp_path: Path) -> Output:
    """Attach, start, send `stdin` and its end, pump to the stream's end; the
    output, once asserted that the command still runs (then it is removed)."""
    cid = client.create(body)
    sock, initial = client.attach(cid)
    wake_read, wake_write = os.pipe()
    stdin_fd, _ = _stdin(stdin, tmp_path, end=True)
    output = Output()
    try:
        client.start(cid)
        assert StreamPump(sock, initial, stdin_fd, output, wake_read, raw=body["Tty"]).run(None, lambda: False) == "eof"
        assert client.inspect(cid)["State"]["Running"]
        return output
    finally:
        sock.close()
        for fd in (wake_read, wake_write, stdin_fd):
            os.close(fd)
        client.remove(cid)


def test_without_stdin_once_the_end_of_stdin_ends_the_output(client: Docker, image: str, tmp_path: Path) -> None:
    """Why a run's create body says StdinOnce (api.py): without it, Docker ends
    the attach stream at our stdin's end, and the command's stdin stays open."""
    output = _output_until_the_stream_ends(client, {**_body(image, ["sh", "-c", "cat; echo never"]), "StdinOnce": False},
                                           b"abc", tmp_path)
    assert output.stdout in (b"", b"abc")  # cut short: what cat echoed may or may not have come first


def test_with_a_terminal_the_end_of_stdin_ends_the_output(client: Docker, image: str, tmp_path: Path) -> None:
    """Why a terminal's stdin is never half-closed (api.py): the stream would end, the command run on."""
    _output_until_the_stream_ends(client, _body(image, ["sleep", "600"], tty=True), b"", tmp_path)


def test_wait_next_exit_and_stop(client: Docker, image: str) -> None:
    cid = client.create(_body(image, ["sleep", "600"]))
    try:
        client.start(cid)
        client.stop(cid, grace=0)  # sleep as PID 1 ignores SIGTERM: SIGKILL at once
        assert client.wait(cid, 30) == 137
        assert client.inspect(cid)["State"]["Status"] == "exited"
        client.stop(cid, grace=0)  # stopping a stopped container is not an error (304)
    finally:
        client.remove(cid)


def test_wait_with_a_timeout_is_runtime_unavailable(client: Docker, image: str) -> None:
    cid = client.create(_body(image, ["sleep", "600"]))
    try:
        client.start(cid)
        with pytest.raises(RuntimeUnavailable, match=r"Docker did not answer POST /containers/\w+/wait in time"):
            client.wait(cid, 0.5)
    finally:
        client.remove(cid)
    with pytest.raises(DockerError) as caught:
        client.inspect(cid)
    assert caught.value.status == 404


def test_list_by_label(client: Docker, image: str) -> None:
    def ids(label: str) -> set[str]:
        return {c["Id"] for c in client.list_labelled(label)}

    first = client.create(_body(image, ["true"], labels={f"{LABEL}.which": "first"}))
    second = client.create(_body(image, ["true"], labels={f"{LABEL}.which": "second"}))
    try:
        client.start(first)
        assert client.wait(first, 30) == 0  # stopped: listed all the same
        assert ids(f"{LABEL}.which=first") == {first}
        assert ids(f"{LABEL}.which") == {first, second}
        assert {first, second} <= ids(f"{LABEL}={RUN_ID}")
        running = {c["Id"] for c in client.list_containers(all=False, labels=[f"{LABEL}.which"])}
        assert running == set()
        assert client.list_labelled(f"{LABEL}.which=third") == []
    finally:
        client.remove(first)
        client.remove(second)
    assert ids(f"{LABEL}.which") == set()
    client.remove(first)  # gone already: nothing to do


def test_inspect_image_and_create_by_name(client: Docker, image: str) -> None:
    image_id = client.image_id(image)
    assert len(image_id) == 64 and int(image_id, 16) >= 0  # bare hex, as Libpod.image_id
    assert client.image_inspect(image)["Config"]["Env"] == [f"PATH={PATH}"]
    cid = client.create(_body(image, ["true"]), name=f"vg-test-dapi-named-{RUN_ID}")
    try:
        document = client.inspect(f"vg-test-dapi-named-{RUN_ID}")
        assert (document["Id"], document["Image"], document["Name"]) == (
            cid, f"sha256:{image_id}", f"/vg-test-dapi-named-{RUN_ID}")
    finally:
        client.remove(cid)


# -- errors: Docker's own message, one exception class ------------------------------------------

def test_no_such_container(client: Docker) -> None:
    with pytest.raises(DockerError) as caught:
        client.inspect("vg-test-no-such-container")
    assert (caught.value.status, caught.value.message) == (404, "No such container: vg-test-no-such-container")
    with pytest.raises(DockerError) as killed:
        client.kill("vg-test-no-such-container", "SIGKILL")
    assert killed.value.message == "Cannot kill container: vg-test-no-such-container: No such container: vg-test-no-such-container"
    assert isinstance(killed.value, ApiError)  # what runtime/reaper.py catches, on either engine


def test_no_such_image(client: Docker) -> None:
    with pytest.raises(DockerError) as caught:
        client.create({"Image": "vg-test-no-such-image:1", "Cmd": ["true"], "Labels": {LABEL: RUN_ID}})
    assert (caught.value.status, caught.value.message) == (404, "No such image: vg-test-no-such-image:1")
    with pytest.raises(DockerError) as inspected:
        client.image_id("vg-test-no-such-image:1")
    assert inspected.value.message == "no such image: vg-test-no-such-image:1: No such image: vg-test-no-such-image:1"


def test_a_bad_tar_is_refused_with_dockers_message(client: Docker) -> None:
    with pytest.raises(DockerError) as caught:
        client.image_import(b"this is not a tar archive", REPO, f"bad-{RUN_ID}")
    assert caught.value.status == 500
    assert caught.value.message == "Error processing tar file(exit status 1): unexpected EOF"
    with pytest.raises(DockerError):
        client.image_id(f"{REPO}:bad-{RUN_ID}")


def test_kill_of_a_stopped_container_is_a_conflict(client: Docker, image: str) -> None:
    cid = client.create(_body(image, ["true"]))
    try:
        with pytest.raises(DockerError) as caught:
            client.kill(cid, "SIGTERM")
        assert caught.value.status == 409
        assert caught.value.message == f"Cannot kill container: {cid}: Container {cid} is not running"
    finally:
        client.remove(cid)
