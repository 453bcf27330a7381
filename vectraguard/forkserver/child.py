"""One request, in the process the fork server forked for it.

It says it is there (`R`), reads the request, checks the client and takes
on its limits, scheduling and cgroups (peer.py), asks for the proof that
the client may attach to it (`H<pid>`, peer.may_look_into_us), becomes the
client's process in everything a run can see — descriptors, working directory,
environment (and the time zone read from it), argv, umask, resource
limits, cgroups, the standard streams' encodings, default signal
dispositions — then answers `P<pid>` and runs the command line through
cli.main as `vectraguard` would in-process. Anything that fails before the
answer is a refusal (`N`): the client runs the command itself, and nothing
has happened yet.

From the answer on, a hang-up of the client (it was killed) kills this
process at once with SIGKILL (F_SETSIG on the connection, fcntl(2)): the
same as killing an in-process run, whose sandbox the next run's reaper
removes. The exit status goes back as `X<status>` once the run's records
are closed and its output flushed.
"""

from __future__ import annotations

import array
import fcntl
import io
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from typing import NoReturn

from vectraguard.forkserver import peer as peers
from vectraguard.forkserver import wire
from vectraguard.runtime import owner
from vectraguard.terminal import controlling

F_SETSIG = 10  # <fcntl.h>: the signal sent instead of SIGIO (Linux)
FD_SIZE = array.array("i").itemsize


class Refused(Exception):
    """The request cannot be served here; the client runs it itself."""


Identity = tuple[bytes, list[bytes], str]  # sys.executable, sys.path, file-system encoding:error handler


def serve(conn: socket.socket, identity: Identity) -> NoReturn:
    """Handle the request on `conn` and exit; `identity` is the server's,
    which the client's must equal (it decides which code and how names are read)."""
    _answer(conn, b"R")  # alive: only now does the client pass its descriptors (wire.py)
    try:
        request, fds = _receive(conn)
        try:
            _check_and_take_on(conn, request, identity)
            _prove(conn)
            _become(request, fds)
        finally:
            for fd in fds.values():
                if fd not in (0, 1, 2):
                    os.close(fd)
    except Exception as exc:  # noqa: BLE001 - anything before the answer: nothing ran, the client runs it itself
        _answer(conn, b"N" + str(exc).encode(errors="replace"))
        os._exit(0)
    _arm_hangup(conn)
    _answer(conn, b"P%d" % os.getpid())
    status = _run()
    _disarm_hangup(conn)
    _answer(conn, b"X%d" % status)
    os._exit(status)


def _answer(conn: socket.socket, line: bytes) -> None:
    try:
        conn.sendall(line.replace(b"\n", b" ") + b"\n")
    except OSError:
        pass


def _receive(conn: socket.socket) -> tuple[wire.Request, dict[str, int]]:
    data, ancillary, _flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(wire.MAX_FDS * FD_SIZE),
                                              socket.MSG_CMSG_CLOEXEC)
    received: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[:len(payload) - len(payload) % FD_SIZE])
            received.extend(fds)
    try:
        if len(data) < 4:
            raise wire.BadRequest("a short request")
        length = int.from_bytes(data[:4], "big")
        if length > wire.MAX_REQUEST:
            raise wire.BadRequest("a request over the size limit")
        body = bytearray(data[4:])
        while len(body) < length:
            chunk = conn.recv(min(1 << 20, length - len(body)))
            if not chunk:
                raise wire.BadRequest("a truncated request")
            body += chunk
        request = wire.Request(bytes(body[:length]))
        if len(request.fd_names) != len(received):
            raise wire.BadRequest("the descriptors passed do not match their names")
    except BaseException:
        for fd in received:
            os.close(fd)
        raise
    return request, dict(zip(request.fd_names, received, strict=True))


def _check_and_take_on(conn: socket.socket, request: wire.Request, identity: Identity) -> None:
    if (request.executable, request.path, request.fs_encoding) != identity:
        raise Refused("the client's interpreter, module path or file-system encoding differs from the server's")
    client = peers.examine(conn)
    if isinstance(client, str):
        raise Refused(client)
    owner.act_for(client.identity)
    reason = peers.take_on(client)
    if reason is not None:
        raise Refused(reason)


def _prove(conn: socket.socket) -> None:
    """The last check, once every other has passed and this process has the
    client's limits and cgroups: the client opens this process's
    /proc/PID/mem (peer.may_look_into_us), let through Yama only meanwhile."""
    peers.let_attach(_peer_pid(conn))
    try:
        _answer(conn, b"H%d" % os.getpid())
        _, ancillary, _flags, _ = conn.recvmsg(1, socket.CMSG_SPACE(FD_SIZE), socket.MSG_CMSG_CLOEXEC)
    finally:
        peers.let_attach(0)
    proof = [fd for level, kind, payload in ancillary if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
             for fd in array.array("i", payload[:len(payload) - len(payload) % FD_SIZE])]
    try:
        if len(proof) != 1 or not peers.may_look_into_us(proof[0]):
            raise Refused("the client may not attach to this process: it is confined in a way the server is not")
    finally:
        for fd in proof:
            os.close(fd)


def _peer_pid(conn: socket.socket) -> int:
    return int.from_bytes(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)[:4], sys.byteorder)


def _become(request: wire.Request, fds: dict[str, int]) -> None:
    os.setpgid(0, 0)  # the server's process group gets none of the run's signals, nor the run the server's
    os.fchdir(fds["cwd"])
    os.environb.clear()
    os.environb.update(request.environ)
    time.tzset()  # time and datetime read TZ when imported, in the server
    tempfile.tempdir = None  # gettempdir() chooses again, from this environment's TMPDIR
    sys.argv = [os.fsdecode(word) for word in request.argv]
    for fd in (0, 1, 2):
        if str(fd) in fds:
            os.dup2(fds[str(fd)], fd)
        # Closed in the client: left on the server's /dev/null, never closed, so
        # that nothing this process opens later becomes the run's stdin or stdout.
    if "tty" in fds:
        controlling.passed = os.dup(fds["tty"])
    _streams(request.streams)
    _default_signals()


def _streams(settings: dict[int, tuple[str, str]]) -> None:
    """sys.stdin, stdout and stderr as the client's interpreter made them
    (buffering as CPython's create_stdio chooses it)."""
    made: list[io.TextIOWrapper | None] = []
    for fd in (0, 1, 2):
        if fd not in settings:
            made.append(None)
            continue
        encoding, errors = settings[fd]
        raw = io.FileIO(fd, "rb" if fd == 0 else "wb", closefd=False)
        buffered: io.BufferedReader | io.BufferedWriter = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        interactive = raw.isatty()
        made.append(io.TextIOWrapper(buffered, encoding, errors, line_buffering=fd == 2 or (fd == 1 and interactive)))
    sys.stdin, sys.stdout, sys.stderr = made
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = made  # type: ignore[misc]


def _default_signals() -> None:
    """Every disposition as a new interpreter has it, nothing blocked."""
    signal.set_wakeup_fd(-1)
    for number in signal.valid_signals():
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            continue  # the C library's own (32, 33)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # CPython ignores these two (Python/pylifecycle.c)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _arm_hangup(conn: socket.socket) -> None:
    """SIGKILL this process when the client hangs up or sends anything more."""
    fcntl.fcntl(conn.fileno(), fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(conn.fileno(), F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(conn.fileno(), fcntl.F_SETFL, fcntl.fcntl(conn.fileno(), fcntl.F_GETFL) | os.O_ASYNC)
    try:
        if conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
            os._exit(0)  # it hung up before the arming: nothing has run
    except BlockingIOError:
        pass


def _disarm_hangup(conn: socket.socket) -> None:
    fcntl.fcntl(conn.fileno(), fcntl.F_SETFL, fcntl.fcntl(conn.fileno(), fcntl.F_GETFL) & ~os.O_ASYNC)


def _run() -> int:
    """cli.main on the client's argv, then what the interpreter's exit does
    (wait for other threads, the atexit callbacks, flushing)."""
    from vectraguard import startup
    from vectraguard.cli import main

    startup.begin()
    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - as the interpreter would: a traceback, status 1
        traceback.print_exc()
        status = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # what Py_FinalizeEx does first
        atexit = sys.modules.get("atexit")
        if atexit is not None:
            atexit._run_exitfuncs()  # prints what a callback raises, as the interpreter's exit does
    except BaseException:  # noqa: BLE001 - the status is still the run's
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                status = status or 120  # CPython's status when flushing at exit fails
    return status
