"""The native front end (contrib/client/vectraguard-client.c), built for an
installation of this checkout as contrib/install.sh builds it, on real runs
through a real fork server: it serves what the Python front end serves, as
that would have been served, and hands everything else to the Python front
end unchanged.

The installation is a virtual environment whose module path reaches this
checkout (a .pth file) and the dev environment's dependencies: a native front
end refuses PYTHONPATH, so the code under test cannot be named that way.
Whether the native front end handed a command line on is read from the
execve calls of its process (strace, no -f: the process the caller started
runs either this program throughout, or the Python front end after one
execve of it); whether a run was served, from its record (`forkserver`)."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.forkserver import answers as _answers
from tests.support.forkserver import serving
from tests.support.terminal import Pty
from tests.support.vg import ROOTLESS_USER, SYSTEM_PATH, Caller, outcome

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "contrib" / "client" / "build.sh"
P = ["run", "-p", "test-untrusted"]
SERVER = b"vectraguard.forkserver.server"
WAITING = ["--", "sh", "-c", "echo ready; sleep 300"]


@dataclass
class Install:
    """One installation: its interpreter, Python front end and native front end."""

    prefix: Path
    python: Path
    script: Path
    native: Path


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    for tool in ("gcc", "strip", "strace"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    prefix = Path(tempfile.mkdtemp(prefix="vg-native-"))
    prefix.chmod(0o755)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix) / "bin" / f"python{version}"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    site = prefix / "lib" / f"python{version}" / "site-packages"
    # This checkout first, then the dev environment's dependencies (its own vectraguard comes later: unused).
    (site / "vectraguard-under-test.pth").write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    (prefix / "libexec").mkdir(mode=0o755)
    script = prefix / "libexec" / "vectraguard-python"
    body = (REPO / "bin" / "vectraguard").read_text().split("\n", 1)[1]
    script.write_text(f"#!{prefix}/bin/python3\n{body}")
    script.chmod(0o755)
    native = prefix / "bin" / "vectraguard"
    subprocess.run([str(BUILD), str(script), str(native)], check=True, timeout=300, env={"PATH": SYSTEM_PATH})
    made = Install(prefix, prefix / "bin" / "python3", script, native)
    yield made
    # Its servers (root's, the rootless user's) exit once their sockets are gone (server.py).
    import pwd

    name = _socket_path(made, Caller(None, Path("/"))).name
    for runtime in ("/run/vectraguard", f"/tmp/vectraguard-{pwd.getpwnam(ROOTLESS_USER).pw_uid}"):
        Path(runtime, name).unlink(missing_ok=True)
    shutil.rmtree(prefix)


def _argv(caller: Caller, program: list[str], extra_env: dict[str, str] | None = None,
          wrap: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """`program` as `caller`, in the caller's environment without PYTHONPATH; `wrap`
    (e.g. strace) runs as the caller too, around the program."""
    env = caller.environment()
    env.pop("PYTHONPATH", None)  # the tests' own (this checkout): the installation reaches it without
    env.update(extra_env or {})
    inner = [*(wrap or []), *program]
    if caller.user is None:
        return inner, env
    return ["runuser", "-u", caller.user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *inner], \
        {"PATH": SYSTEM_PATH}


def _socket_path(install: Install, caller: Caller, extra_env: dict[str, str] | None = None) -> Path:
    """Where the Python front end of `install` looks for `caller`'s server (client.socket_path)."""
    argv, env = _argv(caller, [str(install.python), "-c",
                               "from vectraguard.forkserver import client; print(client.socket_path())"], extra_env)
    return Path(subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True, timeout=60,
                               check=True).stdout.strip())


def _serve(install: Install, caller: Caller) -> Path:
    """Start the installation's fork server for `caller` (a second exits at once); its socket, once it answers."""
    path = _socket_path(install, caller)
    argv, env = _argv(caller, [str(install.python), "-P", "-m", "vectraguard.forkserver.server"])
    deadline = time.monotonic() + 60
    while not _answers(path):
        assert time.monotonic() < deadline, f"no fork server answering at {path}"
        subprocess.run(argv, env=env, cwd="/", check=True, timeout=60, start_new_session=True)
        time.sleep(0.05)
    return path


def _until(condition: object, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:g} s")
        time.sleep(0.05)


def _handed_on(log: Path, install: Install) -> bool:
    """Whether the traced front end exec'd the Python front end (strace's execve lines)."""
    return f'execve("{install.script}"'.encode() in log.read_bytes()


def _traced(caller: Caller, install: Install, args: list[str], extra_env: dict[str, str], cwd: Path,
            log: Path, wrap: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    strace = ["strace", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", str(log)]
    argv, env = _argv(caller, [str(install.native), *args], extra_env, [*(wrap or []), *strace])
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=timeout, check=False,
                          start_new_session=True)


@pytest.fixture
def private(data_dir: Path) -> dict[str, str]:
    return {"VECTRAGUARD_DATA_DIR": str(data_dir)}


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory of root's the rootless user can enter (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="vg-native-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def trace(shared: Path) -> Path:
    log = shared / "strace.log"
    log.touch()
    log.chmod(0o666)  # written by the rootless user's strace too
    shared.chmod(0o755)
    return log


def _exe(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


# -- the socket -----------------------------------------------------------------------------------------------------


class _Listener:
    """A socket bound at `path` that answers nothing: which processes connected to it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o777)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.peers: list[int] = []
        self.received = b""
        self.done = False
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
                self.peers.append(int.from_bytes(creds[:4], sys.byteorder))
                conn.settimeout(0.5)
                try:
                    self.received += conn.recv(4096)
                except OSError:
                    pass

    def close(self) -> None:
        self.done = True
        self.thread.join()
        self.sock.close()


def _free(path: Path) -> None:
    """No server at `path`: its socket unlinked (a server exits when it finds its socket gone)."""
    path.unlink(missing_ok=True)


@pytest.mark.parametrize("who", ["root", "rootless", "rootless-xdg"])
def test_the_native_front_end_looks_where_the_python_one_does(install: Install, root: Caller, rootless: Caller,
                                                               who: str, shared: Path) -> None:
    """The same socket path (FNV-1a of interpreter and package, the package's
    __init__.py's device, inode and mtime, the runtime directory): a listener
    there that never says R is connected to twice by one process, first by
    the native front end, then by the Python front end it hands on to."""
    import pwd

    caller = root if who == "root" else rootless
    env: dict[str, str] = {}
    if who == "rootless-xdg":
        user = pwd.getpwnam(rootless.user or "")
        shared.chmod(0o755)
        xdg = shared / "xdg"
        (xdg / "vectraguard").mkdir(parents=True, mode=0o700)
        for path in (xdg, xdg / "vectraguard"):
            path.chmod(0o700)
            os.chown(path, user.pw_uid, user.pw_gid)
        env["XDG_RUNTIME_DIR"] = str(xdg)
    path = _socket_path(install, caller, env)
    if who == "rootless-xdg":
        assert str(path).startswith(f"{shared}/xdg/vectraguard/forkserver-")
    elif who == "rootless":
        _serve(install, caller)  # makes its runtime directory
    _free(path)
    listener = _Listener(path)
    try:
        argv, full_env = _argv(caller, [str(install.native), "check", "--", "true"], env)
        proc = subprocess.Popen(argv, env=full_env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        out, err = proc.communicate(timeout=120)
    finally:
        listener.close()
        path.unlink(missing_ok=True)
    assert proc.returncode == 0, err
    assert out == b"allow: true (profile default)\n"
    assert len(listener.peers) == 2, listener.peers  # the native front end, then the Python one
    assert listener.received == b""  # nothing is sent to a server before it says R


class _Recorder(_Listener):
    """A listener that says R, keeps the request each client sends (wire.Request)
    and hangs up: a native front end then hands on to the Python one, which
    sends its own request here, then runs the command itself."""

    def __init__(self, path: Path) -> None:
        self.requests: list[object] = []
        super().__init__(path)

    def _accept(self) -> None:
        import array

        from vectraguard.forkserver import wire

        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                conn.sendall(b"R\n")
                data, ancillary, _flags, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(5 * 4))
                for _level, _kind, payload in ancillary:
                    for fd in array.array("i", payload[:len(payload) - len(payload) % 4]):
                        os.close(fd)
                length = int.from_bytes(data[:4], "big")
                body = data[4:]
                while len(body) < length:
                    body += conn.recv(length - len(body))
                self.requests.append(wire.Request(body))


def _localedef(where: Path) -> dict[str, str] | None:
    """LOCPATH and LANG for en_US.UTF-8 compiled into `where` (a locale this system may lack); None without
    localedef or its sources (Debian's `locales`)."""
    if shutil.which("localedef") is None or not Path("/usr/share/i18n/locales/en_US").exists():
        return None
    done = subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", str(where / "en_US.UTF-8")],
                          capture_output=True, timeout=120, check=False)
    if not (where / "en_US.UTF-8").is_dir():
        pytest.fail(f"localedef failed: {done.stderr!r}")
    return {"LOCPATH": str(where), "LANG": "en_US.UTF-8"}


@pytest.mark.parametrize("locale", ["C.UTF-8", "C.utf8-by-LC_ALL", "en_US.UTF-8", "LC_CTYPE-over-LANG"])
def test_the_native_request_is_the_python_one(install: Install, root: Caller, workspace: Path, shared: Path,
                                              locale: str) -> None:
    """One command line, one environment: the request the native front end
    sends equals the one the Python front end it hands on to sends — the
    interpreter, module path, file-system and stream encodings (strict in a
    UTF-8 locale, surrogateescape in C.UTF-8), argv and environment — but for
    argv[0], the path each was executed by."""
    env = {"C.UTF-8": {"LANG": "C.UTF-8"}, "C.utf8-by-LC_ALL": {"LANG": "", "LC_ALL": "C.utf8"},
           "LC_CTYPE-over-LANG": {"LANG": "xx_YY.UTF-8", "LC_CTYPE": "C.UTF-8"}}.get(locale)
    if env is None:
        env = _localedef(shared)
        if env is None:
            pytest.skip("localedef or the en_US locale source (Debian: locales) is not installed")
    env = {**env, "SOME_SETTING": "a value with spaces = and \N{SNOWMAN}"}
    path = _socket_path(install, root)
    _free(path)
    recorder = _Recorder(path)
    try:
        argv, full_env = _argv(root, [str(install.native), "check", "--", "printf", "%s\\n", "\N{SNOWMAN}"], env)
        done = subprocess.run(argv, env=full_env, cwd=workspace, capture_output=True, timeout=120, check=False,
                              start_new_session=True)
    finally:
        recorder.close()
        path.unlink(missing_ok=True)
    assert done.returncode == 0, done.stderr
    native, python = recorder.requests
    assert (native.argv[0], python.argv[0]) == (str(install.native).encode(), str(install.script).encode())
    for field in ("executable", "path", "fs_encoding", "environ", "streams", "fd_names"):
        assert getattr(native, field) == getattr(python, field), field
    assert native.argv[1:] == python.argv[1:] == [b"check", b"--", b"printf", b"%s\\n", "\N{SNOWMAN}".encode()]
    strict = "surrogateescape" if locale != "en_US.UTF-8" else "strict"
    assert native.streams == {0: ("utf-8", strict), 1: ("utf-8", strict), 2: ("utf-8", "backslashreplace")}


def test_a_listener_of_another_user_is_never_sent_anything(install: Install, root: Caller, rootless: Caller,
                                                            shared: Path, trace: Path, workspace: Path,
                                                            private: dict[str, str]) -> None:
    """A socket the rootless user bound (in a directory made for it) and root
    moved to where root's server would be: the native front end sees by
    SO_PEERCRED that it is not root's and hands on; the Python front end
    refuses it too, and the command runs in-process."""
    path = _socket_path(install, root)
    _free(path)
    shared.chmod(0o755)
    theirs = shared / "theirs"
    theirs.mkdir()
    shutil.chown(theirs, rootless.user, rootless.user)
    bound = theirs / "trap.sock"
    code = ("import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "s.bind(sys.argv[1]); s.listen(8); print('ready', flush=True)\n"
            "got = b''\n"
            "s.settimeout(120)\n"
            "while True:\n"
            "    try:\n        c, _ = s.accept()\n    except OSError:\n        break\n"
            "    c.settimeout(2)\n"
            "    try:\n        data = c.recv(65536)\n    except OSError:\n        data = b''\n"
            "    print('connection', len(data), flush=True)\n")
    argv, env = _argv(rootless, [sys.executable, "-c", code, str(bound)])
    trap = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert trap.stdout is not None and trap.stdout.readline() == b"ready\n"
        os.rename(bound, path)  # the bound socket goes where the client looks
        done = _traced(root, install, ["check", "--", "true"], private, workspace, trace)
        assert done.returncode == 0, done.stderr
        assert _handed_on(trace, install)
    finally:
        path.unlink(missing_ok=True)
        os.killpg(trap.pid, signal.SIGKILL)  # runuser and the listener under it
        seen, _ = trap.communicate(timeout=30)
    assert seen.splitlines() == [b"connection 0", b"connection 0"]  # both front ends connected; neither sent a byte


# -- served like the Python front end -------------------------------------------------------------------------------


def _paused(caller: Caller, install: Install, args: list[str], env: dict[str, str],
            cwd: Path) -> tuple[int, bytes, bytes, str]:
    """`args`, whose command says `ready` and waits for a line: the front end's
    executable once it said it, then the status, stdout and stderr."""
    argv, full_env = _argv(caller, [str(install.native), *args], env)
    proc = subprocess.Popen(argv, env=full_env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdin is not None
    first = proc.stdout.readline()
    exe = _exe(proc.pid)
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    out = proc.stdout.read()
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait(timeout=120)
    return proc.returncode, first + out, err, exe


@pytest.mark.parametrize(("script", "extra", "status"), [
    pytest.param("echo out; echo err >&2; exit 0", [], 0, id="exit-0"),
    pytest.param("echo out; echo err >&2; exit 3", [], 3, id="exit-3"),
    pytest.param("echo out; kill -9 $$", [], 137, id="killed-by-signal"),
    pytest.param("echo out; sleep 60", ["--timeout", "2s"], 124, id="timeout"),
])
def test_a_served_run_is_what_an_in_process_one_is(install: Install, root: Caller, workspace: Path,
                                                  private: dict[str, str], script: str, extra: list[str],
                                                  status: int) -> None:
    _serve(install, root)
    args = [*P, *extra, "--", "sh", "-c", f"echo ready; read go; {script}"]
    served = _paused(root, install, args, private, workspace)
    root.wait_for_removals()
    assert root.last_session(workspace, private)["events"][0]["forkserver"] is True
    in_process = _paused(root, install, args, {**private, "VECTRAGUARD_FORKSERVER": "0"}, workspace)
    root.wait_for_removals()
    assert root.last_session(workspace, private)["events"][0]["forkserver"] is False
    assert served[3] == str(install.native)  # served by the native front end throughout
    assert in_process[3] == os.path.realpath(install.python)  # handed on: the interpreter runs the command
    assert served[:3] == in_process[:3]
    assert served[0] == status, served


def test_a_rootless_caller_is_served_by_its_own_server(install: Install, rootless: Caller,
                                                       rootless_workspace: Path) -> None:
    _serve(install, rootless)
    argv, env = _argv(rootless, [str(install.native), "run", "-p", "test-best-effort", "--", "sh", "-c",
                                 "echo ready; read go; echo done"])
    proc = subprocess.Popen(argv, env=env, cwd=rootless_workspace, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", proc.stderr
    front_end = [pid for pid in _pids() if _parent(pid) == proc.pid]  # runuser's child: env, then the front end
    assert [_exe(pid) for pid in front_end] == [str(install.native)]
    out, err = proc.communicate(b"go\n", timeout=120)
    assert (proc.returncode, out) == (0, b"done\n"), err
    rootless.wait_for_removals()
    assert rootless.last_session(rootless_workspace)["events"][0]["forkserver"] is True


@pytest.mark.parametrize(("words", "status"), [
    pytest.param(["--", "true"], 0, id="allow"),
    pytest.param(["--", "rm", "-rf", "/"], 1, id="ask-without-terminal"),
    pytest.param(["--json", "--", "ls", "-la"], 0, id="json"),
    pytest.param(["--bogus"], 125, id="usage-error"),
])
def test_a_served_check_is_what_an_in_process_one_is(install: Install, root: Caller, workspace: Path,
                                                    private: dict[str, str], shared: Path, words: list[str],
                                                    status: int) -> None:
    _serve(install, root)
    shared.chmod(0o755)
    results = []
    for extra in ({}, {"VECTRAGUARD_FORKSERVER": "0"}):
        log = shared / f"trace-{len(results)}"
        done = _traced(root, install, ["check", *words], {**private, **extra}, workspace, log)
        results.append((done.returncode, done.stdout, done.stderr, _handed_on(log, install)))
    served, in_process = results
    assert (served[3], in_process[3]) == (False, True)
    assert served[0] == status, served
    if "--json" in words:  # each check has its own audit id
        import json

        mine, theirs = json.loads(served[1]), json.loads(in_process[1])
        mine.pop("audit_id"), theirs.pop("audit_id")
        assert mine == theirs
        assert served[::2] == in_process[::2]
    else:
        assert served[:3] == in_process[:3]


# -- handed on --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "wrap", "args"), [
    pytest.param({}, [], ["check", "--", "true"], id="served-control"),
    pytest.param({"VECTRAGUARD_FORKSERVER": "Off"}, [], ["check", "--", "true"], id="turned-off"),
    pytest.param({"LD_BIND_NOW": "1"}, [], ["check", "--", "true"], id="dynamic-loader-variable"),
    pytest.param({"PYTHONDONTWRITEBYTECODE": "1"}, [], ["check", "--", "true"], id="python-variable"),
    pytest.param({"PYTHONPATH": "/nonexistent"}, [], ["check", "--", "true"], id="pythonpath"),
    pytest.param({"LANG": "C"}, [], ["check", "--", "true"], id="c-locale-coerced"),
    pytest.param({"LC_ALL": "xx_YY.UTF-8"}, [], ["check", "--", "true"], id="unknown-locale"),
    pytest.param({}, ["sh", "-c", 'exec "$@" <&-', "sh"], ["check", "--", "true"], id="closed-stdin"),
    pytest.param({}, ["unshare", "--uts", "--"], ["check", "--", "true"], id="server-says-N"),
    pytest.param({}, [], ["--version"], id="not-run-or-check"),
    pytest.param({}, [], ["--", "run"], id="after-double-dash"),
])
def test_what_the_native_front_end_does_not_serve_goes_to_the_python_one(
        install: Install, root: Caller, workspace: Path, private: dict[str, str], trace: Path,
        env: dict[str, str], wrap: list[str], args: list[str]) -> None:
    _serve(install, root)
    done = _traced(root, install, args, {**private, **env}, workspace, trace, wrap)
    served = not env and not wrap and args[0] == "check"
    assert _handed_on(trace, install) is not served, done.stderr
    if args[0] == "check":
        assert (done.returncode, done.stdout) == (0, b"allow: true (profile default)\n"), done.stderr
    # The Python front end got the argv unchanged (the kernel puts the script's path first).
    execs = [line for line in trace.read_bytes().splitlines() if line.startswith(b"execve(")]
    if not served:
        assert b'"' + "\", \"".join(args).encode() + b'"' in execs[-1], execs


def test_a_runtime_directory_that_is_not_private_is_not_used(install: Install, rootless: Caller,
                                                             shared: Path, trace: Path) -> None:
    import pwd

    user = pwd.getpwnam(rootless.user or "")
    xdg = shared / "xdg"
    (xdg / "vectraguard").mkdir(parents=True)
    for path in (xdg, xdg / "vectraguard"):
        os.chown(path, user.pw_uid, user.pw_gid)
    xdg.chmod(0o700)
    (xdg / "vectraguard").chmod(0o755)  # others may enter
    env = {"XDG_RUNTIME_DIR": str(xdg)}
    path = _socket_path(install, rootless, env)
    listener = _Listener(path)
    try:
        done = _traced(rootless, install, ["check", "--", "true"], env, Path("/"), trace)
    finally:
        listener.close()
    assert (done.returncode, done.stdout) == (0, b"allow: true (profile default)\n"), done.stderr
    assert _handed_on(trace, install)
    assert listener.peers == []  # neither front end connected


def test_a_server_that_does_not_answer_is_given_up(install: Install, root: Caller, workspace: Path,
                                                   private: dict[str, str], trace: Path) -> None:
    """A stopped server: after the timeout its socket and lock are unlinked and the
    Python front end runs the command (it starts a new server)."""
    path = _serve(install, root)
    inode = path.stat().st_ino
    lock = Path(str(path).removesuffix(".sock") + ".lock")
    [server] = _server_holding(lock)
    os.kill(server, signal.SIGSTOP)
    try:
        done = _traced(root, install, ["check", "--", "true"], private, workspace, trace)
        assert (done.returncode, done.stdout) == (0, b"allow: true (profile default)\n"), done.stderr
        assert _handed_on(trace, install)
        assert not path.exists() or path.stat().st_ino != inode  # unlinked (a new server may have bound anew)
    finally:
        os.kill(server, signal.SIGCONT)
    _until(lambda: not Path(f"/proc/{server}").exists(), "the stopped server leaving once continued")


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(line[line.rindex(")") + 2:].split()[1])


def _holds(pid: int, lock: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _server_holding(lock: Path) -> list[int]:
    """The fork server that holds `lock` (a spare it has just forked may not have closed its copy yet: the
    server is the one whose parent is no server)."""
    holders = [pid for pid in _pids() if SERVER in _cmdline(pid) and _holds(pid, lock)]
    return [pid for pid in holders if _parent(pid) not in holders]


def _served_process_of(server_socket: Path) -> set[int]:
    """The processes the server at `server_socket` forked that serve a request (one per request; not the
    spare waiting for the next: forkserver/server.py Spare)."""
    lock = Path(str(server_socket).removesuffix(".sock") + ".lock")
    servers = {pid for pid in _pids() if SERVER in _cmdline(pid) and _holds(pid, lock)}
    return {pid for pid in _pids() if _parent(pid) in servers and serving(pid)}


def _state(pid: int) -> str:
    line = Path(f"/proc/{pid}/stat").read_text()
    return line[line.rindex(")") + 2:].split()[0]


# -- signals ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_reach_a_served_run(install: Install, root: Caller, workspace: Path,
                                              private: dict[str, str], signum: int, status: int) -> None:
    path = _serve(install, root)
    before = _served_process_of(path)
    argv, env = _argv(root, [str(install.native), *P, *WAITING], private)
    proc = subprocess.Popen(argv, env=env, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert _exe(proc.pid) == str(install.native)
    assert len(_served_process_of(path) - before) == 1
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert b"interrupted; sandbox stopped and removed" in err
    root.wait_for_removals()
    session = root.last_session(workspace, private)
    assert session["events"][0]["forkserver"] is True
    assert outcome(session["events"])["status"] == "interrupted"


@pytest.mark.parametrize("served", [True, False], ids=["served-by-the-native-front-end", "in-process-by-the-python-one"])
def test_stop_stops_a_run_of_either_front_end(install: Install, root: Caller, workspace: Path,
                                              private: dict[str, str], served: bool) -> None:
    """`vectraguard stop` signals a run's owner only if it is a `vectraguard`
    (sessions/running.py): the native front end, or the Python one under its
    installed name (libexec/vectraguard-python), are."""
    import json

    _serve(install, root)
    env = private if served else {**private, "VECTRAGUARD_FORKSERVER": "0"}
    argv, full_env = _argv(root, [str(install.native), *P, *WAITING], env)
    proc = subprocess.Popen(argv, env=full_env, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert _exe(proc.pid) == (str(install.native) if served else os.path.realpath(install.python))
        argv, full_env = _argv(root, [str(install.native), "logs", "list", "--json", "--limit", "1"], private)
        listed = subprocess.run(argv, env=full_env, cwd=workspace, capture_output=True, timeout=60, check=True)
        [row] = json.loads(listed.stdout)
        argv, full_env = _argv(root, [str(install.native), "stop", row["id"]], private)
        stopped = subprocess.run(argv, env=full_env, cwd=workspace, capture_output=True, timeout=60, check=False)
        assert stopped.returncode == 0, stopped.stderr
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    root.wait_for_removals()
    session = root.last_session(workspace, private)
    assert session["events"][0]["forkserver"] is served
    assert outcome(session["events"])["status"] == "interrupted"


def _has_socket(pid: int) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.parametrize(("signum", "status", "message"), [
    pytest.param(signal.SIGINT, 130, b"vectraguard: interrupted\n", id="SIGINT-as-KeyboardInterrupt"),
    pytest.param(signal.SIGTERM, -signal.SIGTERM, b"", id="SIGTERM-ends-it"),
])
def test_a_signal_before_the_server_takes_the_request_abandons_it(
        install: Install, root: Caller, workspace: Path, private: dict[str, str], signum: int, status: int,
        message: bytes) -> None:
    """The server is stopped, so the native front end waits for its R; a signal
    then gives the request up and acts as the Python front end would: nothing runs."""
    path = _serve(install, root)
    lock = Path(str(path).removesuffix(".sock") + ".lock")
    [server] = _server_holding(lock)
    os.kill(server, signal.SIGSTOP)
    try:
        argv, env = _argv(root, [str(install.native), *P, "--", "echo", "ran"], private)
        proc = subprocess.Popen(argv, env=env, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        _until(lambda: _has_socket(proc.pid), "the native front end connected")
        assert _exe(proc.pid) == str(install.native)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        os.kill(server, signal.SIGCONT)
    assert (proc.returncode, out, err) == (status, b"", message)
    listed = subprocess.run(root.argv(root.vg(["logs", "list", "--json"]), private)[0], cwd=workspace,
                            env=root.argv([], private)[1], capture_output=True, timeout=60, check=True)
    assert listed.stdout.strip() in (b"", b"[]")  # nothing was run, nor recorded


def test_a_run_whose_process_dies_without_a_status_exits_125(install: Install, root: Caller, workspace: Path,
                                                             private: dict[str, str]) -> None:
    path = _serve(install, root)
    before = _served_process_of(path)
    argv, env = _argv(root, [str(install.native), *P, *WAITING], private)
    proc = subprocess.Popen(argv, env=env, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    [served] = _served_process_of(path) - before
    os.kill(served, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 125
    assert err.endswith(b"vectraguard: the process running this command ended without an exit status "
                        b"(fork server); its record says how far it got: vectraguard logs list\n")
    # Its sandbox is an orphan, as after killing an in-process run: the next run's reaper removes it.
    argv, env = _argv(root, [str(install.native), *P, "--", "true"], private)
    assert subprocess.run(argv, env=env, cwd=workspace, capture_output=True, timeout=120,
                          check=False).returncode == 0
    root.wait_for_removals()


class _Shell(Pty):
    """An interactive bash (job control on) on a pty we hold the master of."""

    def __init__(self, caller: Caller, install: Install, cwd: Path, env: dict[str, str]) -> None:
        argv, full_env = _argv(caller, ["bash", "--norc", "--noprofile", "-i"],
                               {**env, "PS1": "$ ", "PATH": f"{install.prefix}/bin:{SYSTEM_PATH}", "TERM": "dumb"})
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd)
            os.execvpe(argv[0], argv, full_env)
        self.seen = b""
        self.expect(b"$ ")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def _child_running(shell: int, program: str) -> int | None:
    for pid in _pids():
        if _parent(pid) == shell:
            try:
                if _exe(pid) == program:
                    return pid
            except OSError:
                continue
    return None


def test_ctrl_z_and_fg_stop_and_continue_a_served_run(install: Install, root: Caller, workspace: Path,
                                                      private: dict[str, str]) -> None:
    path = _serve(install, root)
    before = _served_process_of(path)
    shell = _Shell(root, install, workspace, private)
    try:
        shell.send(b"vectraguard run -p test-untrusted -- sh -c 'echo re''ady; sleep 300'\n")
        shell.expect(b"ready")
        client = _child_running(shell.pid, str(install.native))
        assert client is not None, "the native front end is not the shell's job"
        [served] = _served_process_of(path) - before
        shell.send(b"\x1a")  # Ctrl-Z
        shell.expect(b"Stopped")
        _until(lambda: _state(client) == "T" and _state(served) == "T", "the client and its run stopped")
        shell.send(b"fg\n")
        _until(lambda: _state(served) != "T" and _state(client) != "T", "the run continued in the foreground")
        shell.send(b"\x03")  # Ctrl-C
        shell.expect(b"interrupted; sandbox stopped and removed")
        shell.expect(b"$ ")
    finally:
        shell.close()
    root.wait_for_removals()
    session = root.last_session(workspace, private)
    assert session["events"][0]["forkserver"] is True
    assert outcome(session["events"])["status"] == "interrupted"


def test_a_background_job_reading_its_terminal_is_run_by_the_python_front_end(
        install: Install, root: Caller, workspace: Path, private: dict[str, str]) -> None:
    """The server's process would read the terminal without being stopped: the
    native front end hands on, and the in-process run stops (SIGTTIN) until
    brought to the foreground, as it always has."""
    _serve(install, root)
    shell = _Shell(root, install, workspace, private)
    try:
        shell.send(b"vectraguard run -p test-untrusted --timeout 120s -- sh -c 'read x; echo \"g\"ot $x' &\n")
        shell.expect(b"$ ")
        deadline = time.monotonic() + 60
        while True:
            shell.send(b"jobs\n")
            if b"Stopped" in shell.expect(b"$ "):
                break
            assert time.monotonic() < deadline, "the background run was never stopped"
            time.sleep(0.2)
        run = _child_running(shell.pid, os.path.realpath(install.python))
        assert run is not None, "the run is not the Python front end's"
        shell.send(b"fg\n")
        shell.expect(b"read x")  # bash names the job it brings to the foreground
        _until(lambda: _state(run) != "T", "the run continued in the foreground")
        shell.send(b"hello\n")
        shell.expect(b"got hello")
        shell.expect(b"$ ")
    finally:
        shell.close()
    root.wait_for_removals()
    session = root.last_session(workspace, private)
    assert session["events"][0]["forkserver"] is False


