"""Findings of the second outside attack on Docker Engine (issue 20), each on a real Docker sandbox, or on a
fake daemon of the test's own socket where the daemon's answer itself is the finding:

- `sandbox reap` reaps Docker's sandboxes of killed runs, with every file each session left (and the files
  of a run killed before its sandbox existed);
- `--workspace rw` runs on Docker (it needs no step between create and start);
- a working directory the sandbox lacks is refused as on Podman, and Docker creates none;
- a daemon's malformed answer is one clear refusal (exit 125), never a traceback;
- an image VOLUME below a mount of the plan is refused before anything is created, ro and rw;
- DOCKER_HOST: a trailing slash is the same socket, a relative path is refused; an unreadable API version
  is said as such.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import docker
from tests.support.vg import TEST_IMAGE, Caller, outcome

P = ["run", "-p", "test-untrusted", "--yes", "--engine", "docker"]
HOSTS_DIR = Path("/run/vectraguard-hosts")
ENTRIES_DIR = Path("/run/vectraguard/entries")
VOLUME_IMAGE = "localhost/vectraguard-test-volume:latest"


@pytest.fixture(autouse=True)
def _root_only(root: Caller) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("rootful Docker Engine: needs root")


def session_files(session: str) -> list[Path]:
    """What exists of the files Vectra Guard keeps for `session` (runtime/session_files.py)."""
    found = [path for path in (HOSTS_DIR / f"{session}.hosts", HOSTS_DIR / f"{session}.resolv.conf",
                               ENTRIES_DIR / session) if path.exists()]
    return found + [path for path in ENTRIES_DIR.glob(f"{session}/*")]


def labelled() -> dict[str, str]:
    """Docker containers Vectra Guard made: ID -> session ID."""
    filters = urllib.parse.quote(json.dumps({"label": ["io.vectraguard.owner"]}))
    return {c["Id"]: c["Labels"].get("io.vectraguard.session", "")
            for c in docker.call("GET", f"/containers/json?all=1&filters={filters}")}


# -- 1 and 4: `sandbox reap` reaps Docker, and every file a session left goes with it -----------------------

def test_sandbox_reap_removes_a_killed_docker_run_with_every_file_it_left(root: Caller, workspace: Path,
                                                                         docker_test_image: str) -> None:
    before = labelled()
    root.killed_run(P, cwd=workspace)
    orphans = {cid: session for cid, session in labelled().items() if cid not in before}
    assert len(orphans) == 1
    [(cid, session)] = orphans.items()
    left = session_files(session)
    # The hosts file, the empty resolv.conf, the command directory with its command file and start FIFO.
    assert {path.name for path in left} >= {f"{session}.hosts", f"{session}.resolv.conf", session, "command",
                                            "start"}, left
    reaped = root.run(["sandbox", "reap"], cwd=workspace)
    assert reaped.returncode == 0, reaped.stderr
    # (Another Docker run on this host may reap it first, with this code: then reap's output does not name it.)
    assert cid not in labelled()
    assert session_files(session) == []


def test_sandbox_reap_removes_the_files_of_a_run_killed_before_its_sandbox_existed(root: Caller, workspace: Path,
                                                                                   docker_test_image: str) -> None:
    """Files no container names: an hour old, they go; fresh ones (a run about to create its sandbox) stay."""
    import os
    import secrets
    import time

    def planted() -> str:
        session = "0" + secrets.token_hex(10)
        ENTRIES_DIR.mkdir(parents=True, exist_ok=True)
        (ENTRIES_DIR / session).mkdir(mode=0o755)
        (ENTRIES_DIR / session / "command").write_bytes(b"VGE1\0/\0" + b"0\0" + b"1\0true\0")
        os.mkfifo(ENTRIES_DIR / session / "start")
        (HOSTS_DIR / f"{session}.hosts").write_text("127.0.0.1 localhost\n")
        (HOSTS_DIR / f"{session}.resolv.conf").write_text("")
        return session

    old, fresh = planted(), planted()
    hour_ago = time.time() - 3700
    for path in session_files(old):
        os.utime(path, (hour_ago, hour_ago), follow_symlinks=False)
    try:
        reaped = root.run(["sandbox", "reap"], cwd=workspace)
        assert reaped.returncode == 0, reaped.stderr
        assert session_files(old) == []
        assert f"removed the files of session {old}".encode() in reaped.stderr, reaped.stderr
        assert len(session_files(fresh)) == 5
    finally:
        from vectraguard.runtime import session_files as files

        files.forget(fresh)


# -- 2: --workspace rw on Docker -------------------------------------------------------------------------------

@pytest.fixture
def writable_workspace() -> Iterator[Path]:
    """A workspace a rootful sandbox's own uid may write (others' write bit: mount_plan.py)."""
    import shutil

    path = Path(tempfile.mkdtemp(prefix="vg-ws-rw-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_read_write_workspace_runs_on_docker(root: Caller, writable_workspace: Path, data_dir: Path,
                                               docker_test_image: str) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    result = root.run([*P, "--workspace", "rw", "--", "sh", "-c", "echo made > out.txt; cat out.txt"],
                      cwd=writable_workspace, extra_env=private)
    assert (result.returncode, result.stdout) == (0, b"made\n"), result.stderr
    assert (writable_workspace / "out.txt").read_text() == "made\n"
    ended = outcome(root.last_session(writable_workspace, private)["events"])
    assert ended["status"] == "ok", ended


# -- 3: a working directory the sandbox lacks ---------------------------------------------------------------

def test_a_missing_working_directory_is_refused_and_docker_creates_none(root: Caller, writable_workspace: Path,
                                                                        data_dir: Path,
                                                                        docker_test_image: str) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    for workdir in ("/nonexistent", "/workspace/made-by-docker", "/etc/hosts"):
        result = root.run([*P, "--workspace", "rw", "--workdir", workdir, "--", "sh", "-c", "echo ran; pwd"],
                          cwd=writable_workspace, extra_env=private)
        stderr = result.stderr.decode()
        assert result.returncode == 125 and result.stdout == b"", (workdir, stderr)
        assert f"the working directory {workdir} does not exist in the sandbox" in stderr, stderr
        assert outcome(root.last_session(writable_workspace, private)["events"])["status"] == "failed"
    assert list(writable_workspace.iterdir()) == []  # nothing made in the host's workspace
    # An existing one is still the command's own; the default one too.
    for args, where in ((["--workdir", "/tmp"], b"/tmp\n"), ([], b"/workspace\n")):
        result = root.run([*P, "--workspace", "rw", *args, "--", "pwd"], cwd=writable_workspace, extra_env=private)
        assert (result.returncode, result.stdout) == (0, where), result.stderr


# -- 5 and 7: what a daemon says of itself, and where it is -------------------------------------------------

Answer = tuple[bytes, bytes, bytes]  # status line, extra header lines, body


class FakeDaemon:
    """A Unix socket answering each request's path (without the /v1.41 prefix) from `answers`."""

    def __init__(self, path: Path, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                target = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "/"
                path = urllib.parse.urlsplit(target).path.removeprefix("/v1.41")
                status, headers, body = next((answer for prefix, answer in self.answers.items()
                                              if path.startswith(prefix)), (b"HTTP/1.1 404 Not Found", b"",
                                                                            b'{"message": "no such thing"}'))
                if b"content-length" not in headers.lower():
                    headers += b"Content-Length: %d\r\n" % len(body)
                try:
                    conn.sendall(status + b"\r\n" + headers + b"Connection: close\r\n\r\n" + body)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


OK = b"HTTP/1.1 200 OK"
PING: Answer = (OK, b"Api-Version: 1.41\r\n", b"OK")
INFO: Answer = (OK, b"Content-Type: application/json\r\n",
                json.dumps({"ServerVersion": "20.10.24", "SecurityOptions": ["name=userns"],
                            "DockerRootDir": "/var/lib/docker/165536.165536"}).encode())
IMAGE: Answer = (OK, b"", json.dumps({"Id": "sha256:" + "0" * 64, "Config": {}}).encode())


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[Callable[[dict[str, Answer]], dict[str, str]]]:
    daemons: list[FakeDaemon] = []

    def start(answers: dict[str, Answer]) -> dict[str, str]:
        path = tmp_path / f"d{len(daemons)}.sock"
        daemons.append(FakeDaemon(path, answers))
        return {"DOCKER_HOST": f"unix://{path}", "VECTRAGUARD_DATA_DIR": str(tmp_path / "data")}

    yield start
    for daemon in daemons:
        daemon.close()


@pytest.mark.parametrize(("answers", "said"), [
    ({"/_ping": PING, "/info": (OK, b"", b"[1,2,")}, "GET /info that is not valid JSON"),
    ({"/_ping": PING, "/info": (OK, b"", b"[1,2]")}, "GET /info that is not a JSON object"),
    ({"/_ping": PING, "/info": (b"HTTP/1.1 twohundred OK", b"", b"{}")}, "GET /info that is not valid HTTP"),
    ({"/_ping": PING, "/info": (OK, b"Content-Length: x\r\n", b"{}")}, "GET /info that is not valid HTTP"),
    ({"/_ping": PING, "/info": INFO, "/images/": (OK, b"", b"{\"Id\": ")}, "/json that is not valid JSON"),
    ({"/_ping": PING, "/info": INFO, "/images/": IMAGE, "/containers/create": (OK, b"", b"\xff\xfe")},
     "POST /containers/create that is not valid JSON"),
    ({"/_ping": PING, "/info": INFO, "/images/": IMAGE, "/containers/create": (OK, b"", b"{}")},
     "POST /containers/create that names no Id"),
    ({"/_ping": (OK, b"Api-Version: 1.41.x\r\n", b"OK")}, "an API version Vectra Guard cannot read, '1.41.x'"),
    ({"/_ping": (OK, b"", b"OK")}, "says no API version"),
])
def test_a_daemons_malformed_answer_is_one_clear_refusal(root: Caller, workspace: Path, fake_daemon: Callable[
        [dict[str, Answer]], dict[str, str]], answers: dict[str, Answer], said: str) -> None:
    result = root.run([*P, "--", "true"], cwd=workspace, extra_env=fake_daemon(answers))
    stderr = result.stderr.decode()
    assert result.returncode == 125, stderr
    assert said in stderr and "internal error" not in stderr and "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_docker_host_with_a_trailing_slash_is_the_same_socket_and_a_relative_one_is_refused(
        root: Caller, workspace: Path, docker_test_image: str) -> None:
    socket_path = docker.docker_socket()
    result = root.run([*P, "--", "true"], cwd=workspace, extra_env={"DOCKER_HOST": f"unix://{socket_path}/"})
    assert result.returncode == 0, result.stderr
    relative = f"unix://{str(socket_path).lstrip('/')}"
    # From / the relative path would name the daemon's socket: it is refused all the same.
    result = root.run([*P, "--workspace", "none", "--", "true"], cwd=Path("/"), extra_env={"DOCKER_HOST": relative})
    stderr = result.stderr.decode()
    assert result.returncode == 125 and "is not an absolute path" in stderr, stderr
    assert f"DOCKER_HOST=unix://{socket_path}" in stderr, stderr


# -- 6: an image VOLUME below a mount of the plan ----------------------------------------------------------

@pytest.fixture(scope="module")
def volume_image(docker_test_image: str) -> Iterator[str]:
    """The test image with `VOLUME /workspace/sub` (below the workspace's mount), built by Docker here."""
    context = io.BytesIO()
    dockerfile = f"FROM {TEST_IMAGE}\nVOLUME /workspace/sub\n".encode()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    query = urllib.parse.urlencode({"t": VOLUME_IMAGE, "q": "1", "rm": "1", "forcerm": "1",
                                    "labels": json.dumps({docker.LABEL: "test_docker_attack_fixes"})})
    status, answer = docker.request("POST", f"/build?{query}", context.getvalue(),
                                    {"Content-Type": "application/x-tar"})
    assert status == 200 and b'"error' not in answer, answer[-500:]
    yield VOLUME_IMAGE
    docker.request("DELETE", f"/images/{urllib.parse.quote(VOLUME_IMAGE, safe='')}")


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_an_image_volume_below_a_mount_is_refused_before_anything_is_created(
        root: Caller, writable_workspace: Path, data_dir: Path, volume_image: str, mode: str) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    before = set(labelled())
    result = root.run([*P, "--workspace", mode, "--image", volume_image, "--", "true"], cwd=writable_workspace,
                      extra_env=private)
    stderr = result.stderr.decode()
    assert result.returncode == 125, stderr
    assert "VOLUME /workspace/sub, below the sandbox's mount at /workspace" in stderr, stderr
    assert "runc" not in stderr and "Traceback" not in stderr, stderr
    assert outcome(root.last_session(writable_workspace, private)["events"])["status"] == "refused"
    assert set(labelled()) - before == set()
    assert list(writable_workspace.iterdir()) == []  # no `sub` made on the host
