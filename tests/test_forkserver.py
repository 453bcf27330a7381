"""The fork server (vectraguard/forkserver/), on real runs: what a served run
sees and records, who may be served, and that no client ever reaches code,
a confinement or a server that is not what it would have run itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.forkserver import answers as _answers
from tests.support.forkserver import serving
from tests.support.vg import Caller, outcome
from vectraguard.forkserver import client, wire

P = ["run", "-p", "test-untrusted"]
SERVER = b"vectraguard.forkserver.server"


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    found: dict[int, tuple[int, bytes]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        found[int(entry)] = (int(stat_line[stat_line.rindex(")") + 2:].split()[1]), cmdline)
    return found


def _server_children() -> set[int]:
    """The processes a fork server forked that serve a request (each runs one; not the spare waiting for
    the next: forkserver/server.py Spare)."""
    table = _processes()
    return {pid for pid, (parent, cmdline) in table.items()
            if SERVER in cmdline and parent in table and SERVER in table[parent][1] and serving(pid)}


def _until(condition: object, what: str, within: float = 30.0) -> None:
    """Wait for `condition()` (a callable) to hold, polling; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:g} s")
        time.sleep(0.05)


def _socket_of(caller: Caller, extra_env: dict[str, str] | None = None) -> Path:
    """The server socket `caller`'s runs look for (their runtime directory, this package's name)."""
    if caller.user is None:
        runtime = Path("/run/vectraguard")
    else:
        import pwd

        runtime = Path(f"/tmp/vectraguard-{pwd.getpwnam(caller.user).pw_uid}")
    return runtime / Path(client.socket_path()).name


START_EVERY_S = 3.0


def _serve(caller: Caller, extra_env: dict[str, str] | None = None) -> None:
    """Start `caller`'s fork server (a second one exits at once) and wait until one answers:
    one that is leaving (its code changed, e.g. reinstalled) may still have its socket."""
    argv, env = caller.argv([sys.executable, "-P", "-m", "vectraguard.forkserver.server"], extra_env)
    path = _socket_of(caller)

    started = [float("-inf")]

    def answering() -> bool:
        if _answers(path):
            return True
        # One start per START_EVERY_S: a server warms up for a second or more (every module, the rules),
        # and a start per poll would load the machine with starters that find the lock taken.
        if time.monotonic() - started[0] > START_EVERY_S:
            subprocess.run(argv, env=env, cwd="/", check=True, timeout=60, start_new_session=True)
            started[0] = time.monotonic()
        return False

    _until(answering, f"a fork server answering at {path}", within=90.0)


def _popen(caller: Caller, args: list[str], extra_env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    argv, env = caller.argv(caller.vg(args), extra_env)
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _started(caller: Caller, cwd: Path, private: dict[str, str]) -> dict[str, object]:
    return caller.last_session(cwd, private)["events"][0]  # type: ignore[no-any-return]


@pytest.fixture
def private(data_dir: Path) -> dict[str, str]:
    return {"VECTRAGUARD_DATA_DIR": str(data_dir)}


def test_a_served_run_is_the_callers_own_and_says_it_was_served(root: Caller, workspace: Path,
                                                                 private: dict[str, str]) -> None:
    _serve(root)
    (workspace / "note.txt").write_text("from the workspace\n")
    env = {**private, "GREETING": "hello from the caller", "TZ": "Pacific/Auckland"}
    proc = _popen(root, [*P, "--env", "GREETING", "--", "sh", "-c",
                         'cat note.txt; echo "$GREETING"; echo err >&2; exit 7'], env, workspace)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, err
    assert out == b"from the workspace\nhello from the caller\n"
    assert err == b"err\n"
    root.wait_for_removals()
    started = _started(root, workspace, private)
    assert started["forkserver"] is True
    assert str(started["owner"]).startswith(f"{proc.pid}:")  # the `vectraguard` the caller started owns it
    assert started["cwd"] == str(workspace)


def test_concurrent_served_runs_keep_their_own_environment_and_directory(root: Caller, tmp_path: Path,
                                                                        private: dict[str, str]) -> None:
    _serve(root)
    procs = []
    for name in ("first", "second", "third"):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "who").write_text(name)
        procs.append((name, _popen(root, [*P, "--env", "WHO", "--", "sh", "-c", 'echo "$WHO $(cat who)"'],
                                   {**private, "WHO": name}, directory)))
    for name, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out) == (0, f"{name} {name}\n".encode()), err
    root.wait_for_removals()


def test_ctrl_c_reaches_a_served_run(root: Caller, workspace: Path, private: dict[str, str]) -> None:
    _serve(root)
    proc = _popen(root, [*P, "--", "sh", "-c", "echo ready; sleep 300"], private, workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted; sandbox stopped and removed" in err
    root.wait_for_removals()
    session = root.last_session(workspace, private)
    assert session["events"][0]["forkserver"] is True
    assert outcome(session["events"])["status"] == "interrupted"


def test_killing_the_client_kills_the_process_running_its_command(root: Caller, workspace: Path,
                                                                  private: dict[str, str]) -> None:
    _serve(root)
    before = _server_children()
    proc = _popen(root, [*P, "--", "sh", "-c", "echo ready; sleep 300"], private, workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    running = _server_children() - before
    assert len(running) == 1, "the served run's process was not found"
    proc.kill()
    proc.communicate(timeout=30)
    _until(lambda: not running & _server_children(), "the run's process ending with its client")
    # As when an in-process run is killed: its sandbox is an orphan, and the next run reaps it.
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=private).returncode == 0
    listed = json.loads(root.run(["logs", "list", "--json"], cwd=workspace, extra_env=private).stdout)
    assert [row["status"] for row in listed][:2] == ["ok", "incomplete"]


def test_the_served_process_takes_on_the_callers_scheduling_umask_and_limits(root: Caller, workspace: Path,
                                                                               private: dict[str, str]) -> None:
    _serve(root)
    before = _server_children()
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "echo ready; sleep 300"]), private)
    wrapped = ["nice", "-n", "7", "taskset", "-c", "0", "prlimit", "--nofile=321:654", "sh", "-c",
               'umask 027; echo 300 > /proc/self/oom_score_adj; exec "$@"', "sh", *argv]
    proc = subprocess.Popen(wrapped, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        [served] = _server_children() - before
        status = Path(f"/proc/{served}/status").read_text()
        assert "\nUmask:\t0027\n" in status
        assert os.getpriority(os.PRIO_PROCESS, served) == 7
        assert os.sched_getaffinity(served) == {0}
        assert Path(f"/proc/{served}/oom_score_adj").read_text().strip() == "300"
        limits = Path(f"/proc/{served}/limits").read_text()
        assert any(line.startswith("Max open files") and line.split()[3:5] == ["321", "654"]
                   for line in limits.splitlines())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    root.wait_for_removals()


CONFINE = str(Path(__file__).parent / "support" / "confine.py")


@pytest.mark.parametrize("confinement", [
    pytest.param([sys.executable, CONFINE, "landlock"], id="landlock-domain-without-no_new_privs"),
    pytest.param([sys.executable, CONFINE, "seccomp"], id="seccomp-filter-that-allows-everything"),
    pytest.param(["prlimit", "--as=4000000000", "--"], id="address-space-limit"),
    pytest.param(["setpriv", "--no-new-privs", "--"], id="no_new_privs"),
    pytest.param(["env", "LD_BIND_NOW=1"], id="dynamic-loader-settings"),
    pytest.param(["setpriv", "--bounding-set", "-net_raw", "--"], id="smaller-bounding-set"),
    pytest.param(["unshare", "--mount", "--propagation", "unchanged", "--"], id="own-mount-namespace"),
    pytest.param(["unshare", "--uts", "--"], id="own-uts-namespace"),
])
def test_a_client_more_confined_than_the_server_runs_its_command_itself(
        root: Caller, workspace: Path, private: dict[str, str], confinement: list[str]) -> None:
    _serve(root)
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "echo inside"]), private)
    done = subprocess.run([*confinement, *argv], cwd=workspace, env=env, capture_output=True, timeout=120,
                          check=False, start_new_session=True)
    root.wait_for_removals()
    if b"cannot check the sandbox's mounts before it starts: Permission denied" in done.stderr:
        # A Landlock domain keeps an in-process run from looking into the sandbox's processes: refused.
        assert done.returncode == 125 and "landlock" in " ".join(confinement)
    else:
        assert (done.returncode, done.stdout) == (0, b"inside\n"), done.stderr
    assert _started(root, workspace, private)["forkserver"] is False


def test_garbage_on_the_socket_is_refused_and_the_server_keeps_serving(root: Caller, workspace: Path,
                                                                       private: dict[str, str]) -> None:
    _serve(root)
    for payload in (b"", b"\0\0\0\x05hello", b"\xff\xff\xff\xffx", wire.encode(b"/nonexistent", [], [b"x"], [], [], [])):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(_socket_of(root)))
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: sock.recv(4096), b""))
            ready, *rest = answer.split(b"\n")
            assert ready == b"R", answer  # the forked process is there; then it refuses: never H, P or X
            assert all(line.startswith(b"N") for line in rest if line), answer
    assert root.run([*P, "--", "true"], cwd=workspace, extra_env=private).returncode == 0
    assert _started(root, workspace, private)["forkserver"] is True


def test_a_request_with_descriptors_that_do_not_match_their_names_is_refused() -> None:
    body = wire.encode(b"/usr/bin/python3", [b"/x"], [b"vectraguard", b"run"], [], [], ["0", "tty", "tty"])
    with pytest.raises(wire.BadRequest):
        wire.Request(body[4:])
    for bad in (b"VGFS2\0x:/p\0a:v", b"VGFS1\0a:v", b"VGFS1\0x:/p\0a:v\0q:what", b"VGFS1\0x:/p\0a:v\0e:=x",
                b"VGFS1\0x:/p\0a:v\0s:7:utf-8:strict", b"VGFS1\0x:/p\0a:v\0f:0,0"):
        with pytest.raises(wire.BadRequest):
            wire.Request(bad)


def test_another_user_cannot_reach_roots_server(root: Caller, rootless: Caller) -> None:
    _serve(root)
    probe = ("import socket, sys\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('refused')\n"
             "else:\n    print('connected')\n")
    argv, env = rootless.argv([sys.executable, "-c", probe, str(_socket_of(root))])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == "refused\n"


def test_a_rootless_caller_is_served_by_its_own_server(rootless: Caller, rootless_workspace: Path) -> None:
    _serve(rootless)
    assert rootless.run(["run", "-p", "test-best-effort", "--", "true"], cwd=rootless_workspace).returncode == 0
    started = rootless.last_session(rootless_workspace)["events"][0]
    assert started["forkserver"] is True


def test_a_runtime_directory_someone_else_made_is_never_connected_to(rootless: Caller) -> None:
    """A user's runtime directory planted by another (root here, as an attacker
    would be another user) with a listening socket of the right name: the
    client must not hand it the command line, environment and terminal."""
    import pwd

    user = pwd.getpwnam(rootless.user or "")
    base = Path(tempfile.mkdtemp(prefix="vg-planted-", dir="/tmp"))
    try:
        base.chmod(0o755)
        xdg = base / "xdg"
        xdg.mkdir(mode=0o700)
        os.chown(xdg, user.pw_uid, user.pw_gid)
        planted = xdg / "vectraguard"
        planted.mkdir(mode=0o755)  # root's, not the user's
        env = {"XDG_RUNTIME_DIR": str(xdg), "SECRET_TOKEN": "do-not-send"}
        argv, full_env = rootless.argv([sys.executable, "-c", "from vectraguard import rundir; print(rundir.runtime_dir())"], env)
        where = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=60, check=True).stdout
        assert where == f"{planted}\n"  # the client would look there
        trap = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        trap.bind(str(planted / Path(client.socket_path()).name))
        os.chmod(planted / Path(client.socket_path()).name, 0o777)
        trap.listen(8)
        trap.setblocking(False)
        with trap:
            argv, full_env = rootless.argv(rootless.vg([*P, "--", "true"]), env)
            subprocess.run(argv, env=full_env, cwd="/", capture_output=True, timeout=120, check=False,
                           start_new_session=True)
            with pytest.raises(BlockingIOError):
                trap.accept()
    finally:
        shutil.rmtree(base)


@pytest.fixture
def package_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the package under test, imported through PYTHONPATH: its own server."""
    import vectraguard

    copy = tmp_path / "tree"
    shutil.copytree(Path(vectraguard.__file__).parent, copy / "vectraguard",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [tmp_path, copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    yield copy
    shutil.rmtree(copy)  # its server sees its directories go, and exits


def _copy_socket(root: Caller, env: dict[str, str]) -> Path:
    """The socket path a run with `env` (a package copy's PYTHONPATH) looks for."""
    ask = "from vectraguard.forkserver import client; print(client.socket_path())"
    argv, full_env = root.argv([sys.executable, "-c", ask], env)
    return Path(subprocess.run(argv, env=full_env, cwd="/", capture_output=True, text=True, timeout=60,
                               check=True).stdout.strip())


def _serve_copy(root: Caller, env: dict[str, str]) -> Path:
    """Start the fork server of a package copy (`env` names it); its socket, once there."""
    path = _copy_socket(root, env)
    argv, full_env = root.argv([sys.executable, "-P", "-m", "vectraguard.forkserver.server"], env)
    subprocess.run(argv, env=full_env, cwd="/", check=True, timeout=60, start_new_session=True)
    _until(lambda: path.exists(), "the copy's fork server")
    return path


def test_a_change_to_the_installed_code_is_never_served_by_the_old(root: Caller, package_copy: Path) -> None:
    env = {"PYTHONPATH": str(package_copy)}
    path = _serve_copy(root, env)
    argv, full_env = root.argv([sys.executable, "-m", "vectraguard", "run", "--help"], env)

    def help_text() -> str:
        return subprocess.run(argv, env=full_env, cwd="/", capture_output=True, text=True, timeout=60, check=True,
                              start_new_session=True).stdout

    assert "SRC:DST[:ro|rw]" in help_text() and "CHANGED" not in help_text()
    cli = package_copy / "vectraguard" / "cli.py"
    cli.write_text(cli.read_text().replace('metavar="SRC:DST[:ro|rw]"', 'metavar="SRC:DST[:ro|rw]:CHANGED"', 1))
    assert "SRC:DST[:ro|rw]:CHANGED" in help_text()  # the very next run
    _until(lambda: not path.exists(), "the old server leaving")


def _state(pid: int) -> str:
    stat_line = Path(f"/proc/{pid}/stat").read_text()
    return stat_line[stat_line.rindex(")") + 2:].split()[0]


def test_a_stopped_client_stops_the_process_running_its_command(root: Caller, workspace: Path,
                                                                 private: dict[str, str]) -> None:
    """Ctrl-Z stops the job the terminal knows, the client; the process running its
    command must stop with it (else it keeps reading the terminal), and go on with it."""
    _serve(root)
    before = _server_children()
    argv, env = root.argv(root.vg([*P, "--", "sh", "-c", "echo ready; sleep 300"]), private)
    # A process group of its own in this session, not orphaned: the terminal's stops stop it (signal(7)).
    proc = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, process_group=0)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        [served] = _server_children() - before
        proc.send_signal(signal.SIGTSTP)
        _until(lambda: _state(proc.pid) == "T" and _state(served) == "T", "the client and its run stopped")
        proc.send_signal(signal.SIGCONT)
        _until(lambda: _state(served) != "T", "the run continued with its client")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert b"interrupted; sandbox stopped and removed" in err
    root.wait_for_removals()


@pytest.mark.parametrize("signame", ["SIGVTALRM", "SIGPWR", "SIGXCPU", "SIGUSR2"])
def test_every_signal_that_interrupts_a_run_interrupts_a_served_one(root: Caller, workspace: Path,
                                                                     private: dict[str, str], signame: str) -> None:
    _serve(root)
    proc = _popen(root, [*P, "--", "sh", "-c", "echo ready; sleep 300"], private, workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert b"interrupted; sandbox stopped and removed" in err
    root.wait_for_removals()
    assert outcome(root.last_session(workspace, private)["events"])["status"] == "interrupted"


def test_a_caller_without_stdin_gives_its_run_none(root: Caller, workspace: Path, private: dict[str, str]) -> None:
    _serve(root)
    argv, env = root.argv(root.vg([*P, "--timeout", "60s", "--", "sh", "-c", "cat; echo done"]), private)
    done = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *argv], cwd=workspace, env=env, capture_output=True,
                          timeout=120, check=False, start_new_session=True)
    assert (done.returncode, done.stdout) == (0, b"done\n"), done.stderr


def test_a_server_that_does_not_answer_is_not_waited_for(root: Caller, package_copy: Path, workspace: Path,
                                                         private: dict[str, str]) -> None:
    """A stopped (or frozen) server: the run goes ahead in-process after a bounded
    wait, and the server's socket is taken away so that the next run does not wait."""
    env = {**private, "PYTHONPATH": str(package_copy)}
    path = _serve_copy(root, env)
    [server] = [pid for pid, (_, cmdline) in _processes().items() if SERVER in cmdline and _holds(pid, path)
                and pid not in _server_children()]
    os.kill(server, signal.SIGSTOP)
    try:
        argv, full_env = root.argv([sys.executable, "-m", "vectraguard", *P, "--", "echo", "ran"], env)
        done = subprocess.run(argv, env=full_env, cwd=workspace, capture_output=True, timeout=120, check=False,
                              start_new_session=True)
        assert (done.returncode, done.stdout) == (0, b"ran\n"), done.stderr
        assert not path.exists()
    finally:
        os.kill(server, signal.SIGCONT)
    _until(lambda: not Path(f"/proc/{server}").exists(), "the stopped server leaving once continued")


def _holds(pid: int, path: Path) -> bool:
    """Whether process `pid` has the lock file beside `path` open (the server does, for its life)."""
    lock = str(path).removesuffix(".sock") + ".lock"
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == lock for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_the_server_keeps_nothing_of_the_environment_of_the_run_that_started_it(
        root: Caller, package_copy: Path, workspace: Path, private: dict[str, str]) -> None:
    env = {**private, "PYTHONPATH": str(package_copy), "SECRET_TOKEN": "do-not-keep"}
    path = _copy_socket(root, env)
    argv, full_env = root.argv([sys.executable, "-m", "vectraguard", *P, "--", "true"], env)
    assert subprocess.run(argv, env=full_env, cwd=workspace, timeout=120, check=False,
                          start_new_session=True).returncode == 0  # runs itself, starts the server
    _until(lambda: path.exists(), "the fork server the run started")
    [server] = [pid for pid, (_, cmdline) in _processes().items() if SERVER in cmdline and _holds(pid, path)
                and pid not in _server_children()]
    assert b"do-not-keep" not in Path(f"/proc/{server}/environ").read_bytes()


def test_a_served_run_outlives_its_server(root: Caller, workspace: Path, private: dict[str, str]) -> None:
    """A run is the caller's once taken: the server leaving (killed, idle, its code upgraded) must not end it.
    The process that took it was the server's spare, which dies with the server only until it is taken."""
    _serve(root)
    before = _server_children()
    proc = _popen(root, [*P, "--", "sh", "-c", "echo ready; sleep 2; exit 7"], private, workspace)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    [served] = [pid for pid in _server_children() - before if os.readlink(f"/proc/{pid}/cwd") == str(workspace)]
    table = _processes()
    os.kill(table[served][0], signal.SIGKILL)  # its server
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, err
    root.wait_for_removals()
