"""vectraguard-lite-init (contrib/lite/), the first process of a `lite` sandbox.

Everything is real: the program is compiled once per session as
contrib/install.sh would, run by a real bubblewrap (tests/support/lite_bwrap.py)
as root and as an unprivileged caller (nobody: bwrap then makes an
unprivileged user namespace), and each property is shown from inside by the
command it execs, against a control run where the property is absent.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import lite_bwrap
from tests.support.lite_bwrap import ALLOW_ALL, Finished, LiteRun

# Enough to run sh, coreutils and python3 from the host's /usr, and to write to /dev/null.
BASE = ["--read", "/", "--exec", "/usr", "--device", "/dev/null"]
MARK = ["sh", "-c", "echo ran > /mnt/marker"]
SYS_UNAME, SYS_LANDLOCK_CREATE_RULESET = 63, 444
x86_64_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="hand-assembled BPF is for x86-64")


def _landlock_abi() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, 1))  # LANDLOCK_CREATE_RULESET_VERSION


def _bwrap_works_unprivileged() -> bool:
    argv = [*(lite_bwrap.NOBODY if os.geteuid() == 0 else []), "bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]
    return subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode == 0


def _through(run: LiteRun) -> Finished:
    """Handshake (`R`), go, and the run's end; the sandbox is killed whatever happens."""
    try:
        assert run.handshake().kind == "R"
        run.go()
        return run.finish()
    finally:
        run.kill()


@pytest.fixture(scope="session")
def init() -> Iterator[Path]:
    for tool in ("bwrap", "gcc", "strip", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if _landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock")
    directory = lite_bwrap.shared_dir("vg-lite-init-")
    directory.chmod(0o755)
    yield lite_bwrap.compile_init(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["root", "unprivileged"])
def unprivileged(request: pytest.FixtureRequest) -> bool:
    """Whether bwrap runs as nobody; the root case needs root."""
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("needs root")
        return False
    if not _bwrap_works_unprivileged():
        pytest.skip("bwrap cannot make an unprivileged user namespace here")
    return True


@pytest.fixture
def out() -> Iterator[Path]:
    """A host directory the sandbox gets at /mnt (bound writable)."""
    path = lite_bwrap.shared_dir("vg-lite-out-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(init: Path, unprivileged: bool, init_args: Sequence[str], command: Sequence[str], *,
         seccomp: bytes = ALLOW_ALL, bwrap_args: Sequence[str] = (), pass_fds: Sequence[int] = ()) -> Finished:
    """A run the parent lets go: handshake "R", then "G", then the end."""
    run = LiteRun.start(init, init_args, command, unprivileged=unprivileged, seccomp=seccomp,
                        bwrap_args=bwrap_args, pass_fds=pass_fds)
    try:
        handshake = run.handshake()
        assert handshake.kind == "R", handshake.message
        run.go()
        return run.finish()
    finally:
        run.kill()


def _sh(init: Path, unprivileged: bool, init_args: Sequence[str], script: str, *,
        seccomp: bytes = ALLOW_ALL, bwrap_args: Sequence[str] = (), pass_fds: Sequence[int] = ()) -> Finished:
    """`sh -c script` run after "G"; its exec must have succeeded."""
    done = _run(init, unprivileged, init_args, ["sh", "-c", script], seccomp=seccomp, bwrap_args=bwrap_args,
                pass_fds=pass_fds)
    assert done.control == b"", done.control  # the exec succeeded
    return done


# The handshake

def test_listeners_reach_the_parent_in_order_and_serve_connections_from_inside(init: Path,
                                                                               unprivileged: bool) -> None:
    client = ("import socket; s = socket.create_connection(('127.0.0.1', 8080)); "
              "s.sendall(b'hello from inside'); s.close()")
    run = LiteRun.start(init, [*BASE, "--listen", "127.0.0.1:3128", "--listen", "127.0.0.1:8080"],
                        ["python3", "-I", "-c", client], unprivileged=unprivileged)
    handshake = run.handshake()
    try:
        assert handshake.kind == "R"
        assert [s.getsockname() for s in handshake.listeners] == [("127.0.0.1", 3128), ("127.0.0.1", 8080)]
        run.go()
        handshake.listeners[1].settimeout(lite_bwrap.TIMEOUT)
        connection, _peer = handshake.listeners[1].accept()
        with connection:
            connection.settimeout(lite_bwrap.TIMEOUT)
            assert connection.recv(100) == b"hello from inside"
        done = run.finish()
        assert (done.status, done.control) == (0, b""), done.stderr
    finally:
        for listener in handshake.listeners:
            listener.close()
        run.kill()


@pytest.mark.parametrize("answer", [b"G", b"N", b""], ids=["go", "refused", "eof"])
def test_the_command_runs_only_after_go(init: Path, unprivileged: bool, out: Path, answer: bytes) -> None:
    run = LiteRun.start(init, [*BASE, "--write", "/mnt"], MARK, unprivileged=unprivileged,
                        bwrap_args=["--bind", str(out), "/mnt"])
    try:
        assert run.handshake().kind == "R"
        if answer == b"G":
            run.go()
        else:
            run.refuse(answer)
        done = run.finish()
    finally:
        run.kill()
    assert (done.status, (out / "marker").exists()) == ((0, True) if answer == b"G" else (125, False)), done


# Privileges

def test_after_go_no_capability_is_left_and_filters_are_on(init: Path, unprivileged: bool) -> None:
    done = _sh(init, unprivileged, BASE, "cat /proc/self/status")
    status = dict(line.split(":\t", 1) for line in done.stdout.splitlines() if ":\t" in line)
    assert {name: int(status[name], 16) for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == \
        dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
    assert (status["NoNewPrivs"], status["Seccomp"], status["Uid"].split()[0]) == ("1", "2", "1000")


def test_without_cap_setpcap_the_init_refuses_to_go_on(init: Path, out: Path) -> None:
    """Unprivileged, bwrap grants only what it is asked for: the bounding set cannot be dropped."""
    if not _bwrap_works_unprivileged():
        pytest.skip("bwrap cannot make an unprivileged user namespace here")
    run = LiteRun.start(init, [*BASE, "--write", "/mnt"], MARK, unprivileged=True, caps=["CAP_SYS_ADMIN"],
                        bwrap_args=["--bind", str(out), "/mnt"])
    done = _through(run)
    assert done.control == (b"Fvectraguard-lite-init: locking the securebits (bwrap needs --cap-add CAP_SETPCAP): "
                            b"Operation not permitted\n")
    assert (done.status, (out / "marker").exists()) == (125, False)


@x86_64_only
@pytest.mark.parametrize(("program", "expected"), [(ALLOW_ALL, "Linux\n"), (None, "")], ids=["allow", "deny-uname"])
def test_the_seccomp_filter_is_the_one_given(init: Path, unprivileged: bool, program: bytes | None,
                                             expected: str) -> None:
    seccomp = program or lite_bwrap.deny_syscall(SYS_UNAME, errno.EPERM)
    done = _sh(init, unprivileged, BASE, "uname -s", seccomp=seccomp)
    assert done.stdout == expected
    if program is None:
        assert "Operation not permitted" in done.stderr and done.status != 0


def _libseccomp_program(denied: str, error: int) -> bytes:
    """What libseccomp's seccomp_export_bpf writes for "allow all but `denied` (errno)"."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        pytest.skip("libseccomp.so.2 is not installed")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    context = lib.seccomp_init(lite_bwrap.SECCOMP_RET_ALLOW)
    fd = os.memfd_create("bpf", 0)
    try:
        number = lib.seccomp_syscall_resolve_name(denied.encode())
        assert lib.seccomp_rule_add(context, lite_bwrap.SECCOMP_RET_ERRNO | error, number, 0) == 0
        assert lib.seccomp_export_bpf(context, fd) == 0
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)
        lib.seccomp_release(context)


def test_a_filter_exported_by_libseccomp_is_read_as_it_is(init: Path, unprivileged: bool) -> None:
    """The format the Python compiler must match: libseccomp's own export (all architectures it adds)."""
    done = _sh(init, unprivileged, BASE, "uname -s; echo status=$?",
               seccomp=_libseccomp_program("uname", errno.EPERM))
    assert done.stdout == "status=1\n"
    assert "Operation not permitted" in done.stderr


def test_nothing_inherited_reaches_the_command(init: Path, unprivileged: bool, out: Path) -> None:
    leaked = out / "inherited-file"
    leaked.write_text("")
    fd = os.open(leaked, os.O_RDONLY)
    try:
        done = _sh(init, unprivileged, BASE, "ls -l /proc/self/fd", pass_fds=[fd])
    finally:
        os.close(fd)
    assert done.status == 0, done.stderr
    assert "inherited-file" not in done.stdout and "socket:" not in done.stdout and "memfd:" not in done.stdout


# noexec

@pytest.mark.parametrize("noexec", [True, False], ids=["noexec", "control"])
def test_a_noexec_tmp_stops_programs_and_the_loader(init: Path, unprivileged: bool, noexec: bool) -> None:
    """Landlock allows executing /tmp here: only the mount decides."""
    rules = [*BASE, "--write", "/tmp", "--exec", "/tmp", *(["--noexec", "/tmp"] if noexec else [])]
    script = ("cp /bin/true /tmp/true; /tmp/true; echo direct=$?; "
              "/lib64/ld-linux-x86-64.so.2 /tmp/true; echo loader=$?; grep ' /tmp ' /proc/self/mounts")
    done = _sh(init, unprivileged, rules, script)
    lines = done.stdout.splitlines()
    if noexec:
        assert lines[:2] == ["direct=126", "loader=127"]
        assert "Permission denied" in done.stderr and "failed to map segment" in done.stderr
        assert "noexec" in lines[2].split()[3].split(",")
    else:
        assert lines[:2] == ["direct=0", "loader=0"]
        assert "noexec" not in lines[2].split()[3].split(",")


def test_noexec_keeps_a_read_only_mount_read_only(init: Path, unprivileged: bool, out: Path) -> None:
    done = _sh(init, unprivileged, [*BASE, "--write", "/srv", "--noexec", "/srv"],
               "grep ' /srv ' /proc/self/mountinfo; echo x > /srv/file",
               bwrap_args=["--ro-bind", str(out), "/srv"])
    options = done.stdout.split()[5].split(",")
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(options), options
    assert "Read-only file system" in done.stderr


# Landlock

ATTEMPT = """
import errno, os, sys
def attempt(action):
    try:
        action()
        return "ok"
    except OSError as error:
        return errno.errorcode[error.errno]
print(" ".join(attempt(action) for action in [
    lambda: open("/tmp/file", "w").write("x"),
    lambda: open("/mnt/file", "w").write("x"),
    lambda: os.mkdir("/mnt/dir"),
    lambda: open("/etc/hostname").read(),
    lambda: os.listdir("/srv"),
]))
"""


@pytest.mark.parametrize(("rules", "expected"), [
    ([*BASE, "--write", "/tmp"], "ok EACCES EACCES ok ok"),
    ([*BASE, "--write", "/tmp", "--write", "/mnt"], "ok ok ok ok ok"),
    (["--exec", "/usr", "--read", "/etc", "--write", "/tmp"], "ok EACCES EACCES ok EACCES"),
], ids=["write-outside", "write-listed", "read-outside"])
def test_landlock_allows_only_the_paths_given(init: Path, unprivileged: bool, rules: list[str],
                                              expected: str) -> None:
    """/mnt is a writable tmpfs: only Landlock stands between the command and it."""
    done = _run(init, unprivileged, rules, ["python3", "-I", "-c", ATTEMPT], bwrap_args=["--tmpfs", "/mnt"])
    assert (done.status, done.stdout) == (0, expected + "\n"), done.stderr


def test_landlock_executes_only_under_exec_paths(init: Path, unprivileged: bool) -> None:
    done = _sh(init, unprivileged, [*BASE, "--write", "/tmp"],
               "cp /usr/bin/true /tmp/true; /tmp/true; echo tmp=$?; /usr/bin/true; echo usr=$?")
    assert done.stdout == "tmp=126\nusr=0\n"
    assert "Permission denied" in done.stderr


DEVICE = """
import errno, fcntl, termios
def attempt(action):
    try:
        action()
        return "ok"
    except OSError as error:
        return errno.errorcode[error.errno]
print(attempt(lambda: open("/dev/null", "w").write("x")),
      attempt(lambda: fcntl.ioctl(open("/dev/null"), termios.TCGETS, bytes(64))))
"""


@pytest.mark.parametrize(("device", "expected"), [(True, "ok ENOTTY"), (False, "EACCES EACCES")],
                         ids=["device", "control"])
def test_device_rule_allows_writes_and_ioctls(init: Path, unprivileged: bool, device: bool, expected: str) -> None:
    """/dev/null is readable in both runs; ENOTTY is /dev/null's own answer to a terminal ioctl."""
    rules = ["--read", "/", "--exec", "/usr", *(["--device", "/dev/null"] if device else [])]
    done = _run(init, unprivileged, rules, ["python3", "-I", "-c", DEVICE])
    assert (done.status, done.stdout) == (0, expected + "\n"), done.stderr


def test_signals_stop_at_the_landlock_domain(init: Path, unprivileged: bool) -> None:
    """pid 1 is bwrap, outside the domain (a bare bwrap can signal it: see the control below)."""
    if _landlock_abi() < 6:
        pytest.skip("Landlock scopes need ABI 6")
    script = "sleep 60 & kill -0 $! && echo child=ok; kill -0 1; echo init=$?; kill $!"
    done = _sh(init, unprivileged, BASE, script)
    assert done.stdout == "child=ok\ninit=1\n"
    assert "Operation not permitted" in done.stderr
    control = subprocess.run([*(lite_bwrap.NOBODY if unprivileged and os.geteuid() == 0 else []), "bwrap",
                              "--unshare-all", "--uid", "1000", "--ro-bind", "/", "/", "--proc", "/proc",
                              "sh", "-c", "kill -0 1 && echo init=0"], capture_output=True, timeout=60, check=False)
    assert control.stdout == b"init=0\n"


# Limits

def test_rlimits_are_applied(init: Path, unprivileged: bool) -> None:
    rules = [*BASE, "--rlimit", "nofile=64:128", "--rlimit", "core=0:0", "--rlimit", "fsize=unlimited:unlimited"]
    done = _sh(init, unprivileged, rules, "ulimit -n; ulimit -Hn; ulimit -c; ulimit -f")
    assert done.stdout == "64\n128\n0\nunlimited\n"


# Exec failures

@pytest.mark.parametrize(("command", "status", "error"), [
    (["/no/such/program"], 127, errno.ENOENT),
    (["no-such-program"], 127, errno.ENOENT),  # searched in PATH
    (["/etc/passwd"], 126, errno.EACCES),  # not executable
])
def test_an_exec_failure_is_reported_on_the_control_socket(init: Path, unprivileged: bool, command: list[str],
                                                           status: int, error: int) -> None:
    done = _run(init, unprivileged, BASE, command)
    assert (done.status, done.control) == (status, b"E" + struct.pack("=i", error))


# Bad lines: nothing runs

@pytest.mark.parametrize(("args", "seccomp", "message"), [
    (["--bogus", "x"], ALLOW_ALL, "unknown option --bogus"),
    (["--listen", "localhost:80"], ALLOW_ALL, "--listen localhost:80: not an IPv4 ADDRESS:PORT"),
    (["--listen", "127.0.0.1:0"], ALLOW_ALL, "--listen 127.0.0.1:0: not an IPv4 ADDRESS:PORT"),
    (["--listen", "127.0.0.1:65536"], ALLOW_ALL, "--listen 127.0.0.1:65536: not an IPv4 ADDRESS:PORT"),
    (["--listen", "127.0.0.1: 80"], ALLOW_ALL, "--listen 127.0.0.1: 80: not an IPv4 ADDRESS:PORT"),
    (["--rlimit", "files=1:2"], ALLOW_ALL,
     "--rlimit files=1:2: not NAME=SOFT:HARD with a known name and SOFT <= HARD"),
    (["--rlimit", "nofile=3:2"], ALLOW_ALL,
     "--rlimit nofile=3:2: not NAME=SOFT:HARD with a known name and SOFT <= HARD"),
    (["--rlimit", "nofile=-1:2"], ALLOW_ALL,
     "--rlimit nofile=-1:2: not NAME=SOFT:HARD with a known name and SOFT <= HARD"),
    (["--read", "etc"], ALLOW_ALL, "--read etc: not an absolute path"),
    (["--seccomp", "0"], ALLOW_ALL, "--seccomp given twice"),
    ([], b"", "seccomp program: 0 bytes, not a positive multiple of 8"),
    ([], ALLOW_ALL[:7], "seccomp program: 7 bytes, not a positive multiple of 8"),
    ([], ALLOW_ALL * 4097, "seccomp program: more than 4096 instructions"),
])
def test_a_malformed_line_runs_nothing(init: Path, unprivileged: bool, out: Path, args: list[str],
                                       seccomp: bytes, message: str) -> None:
    run = LiteRun.start(init, [*BASE, "--write", "/mnt", *args], MARK, unprivileged=unprivileged,
                        seccomp=seccomp, bwrap_args=["--bind", str(out), "/mnt"])
    try:
        handshake = run.handshake()
        done = run.finish()
    finally:
        run.kill()
    assert (handshake.kind, handshake.message) == ("F", "vectraguard-lite-init: " + message)
    assert (done.status, (out / "marker").exists()) == (125, False)


def test_no_command_runs_nothing(init: Path, unprivileged: bool) -> None:
    run = LiteRun.start(init, BASE, [], unprivileged=unprivileged)
    try:
        handshake = run.handshake()
        assert run.finish().status == 125
    finally:
        run.kill()
    assert handshake.message == "vectraguard-lite-init: no command after --"


def test_without_a_control_socket_it_says_so_on_stderr(init: Path, unprivileged: bool) -> None:
    argv = lite_bwrap.bwrap_command(init, ["--control", "99", "--seccomp", "98"], MARK)
    if unprivileged and os.geteuid() == 0:
        argv = lite_bwrap.NOBODY + argv
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (
        125, b"vectraguard-lite-init: --control FD: missing, or not an open descriptor\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--read", "/no/such/path"], "--read /no/such/path: No such file or directory"),
    (["--noexec", "/usr"], "--noexec /usr: remount: Invalid argument"),  # not a mount point
    (["--rlimit", "nofile=1:99999999999"], "--rlimit nofile=1:99999999999: Operation not permitted"),
])
def test_a_failure_after_go_runs_nothing(init: Path, unprivileged: bool, out: Path, args: list[str],
                                         message: str) -> None:
    run = LiteRun.start(init, [*BASE, "--write", "/mnt", *args], MARK, unprivileged=unprivileged,
                        bwrap_args=["--bind", str(out), "/mnt"])
    done = _through(run)
    assert done.control == f"Fvectraguard-lite-init: {message}\n".encode()
    assert (done.status, (out / "marker").exists()) == (125, False)


@x86_64_only
def test_without_landlock_it_fails_closed(init: Path, unprivileged: bool, out: Path) -> None:
    """A kernel without Landlock, as bwrap's own seccomp filter makes it look (ENOSYS)."""
    outer = os.memfd_create("outer-seccomp", 0)
    try:
        os.write(outer, lite_bwrap.deny_syscall(SYS_LANDLOCK_CREATE_RULESET, errno.ENOSYS))
        os.lseek(outer, 0, os.SEEK_SET)
        run = LiteRun.start(init, [*BASE, "--write", "/mnt"], MARK, unprivileged=unprivileged, pass_fds=[outer],
                            bwrap_args=["--bind", str(out), "/mnt", "--seccomp", str(outer)])
    finally:
        os.close(outer)
    done = _through(run)
    assert done.control == (b"Fvectraguard-lite-init: Landlock is needed for isolation lite, and this kernel "
                            b"does not provide it: Function not implemented\n")
    assert (done.status, (out / "marker").exists()) == (125, False)


def test_the_listener_socket_is_what_the_kernel_says(init: Path, unprivileged: bool) -> None:
    """The listeners are TCP, listening, with SO_REUSEADDR, in the sandbox's namespace."""
    run = LiteRun.start(init, [*BASE, "--listen", "127.0.0.1:3128"], ["true"], unprivileged=unprivileged)
    try:
        (listener,) = run.handshake().listeners
        with listener:
            assert listener.type == socket.SOCK_STREAM
            assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        run.refuse()
        assert run.finish().status == 125
    finally:
        run.kill()
