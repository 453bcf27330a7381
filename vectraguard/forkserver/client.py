"""The fork server's client: the first thing `vectraguard run` and `check` do.

It hands the command line, the environment, the working directory, the
standard streams and the controlling terminal to this user's fork server
(forkserver/server.py), forwards the signals it receives to the process
that runs the command, and exits with that process's status. Whenever the
server cannot take the request it returns None and the caller runs the
command itself, as before, starting a server for the next run if none
answered. Nothing here may import more than `os`, `sys` and the C cores of
the signal and socket modules (`signal` itself imports enum, ~3 ms): this
module's whole point is the ~40 ms of imports it lets a run skip.

Refused (None, run in-process) when VECTRAGUARD_FORKSERVER is 0/off/no/false,
for commands other than `run` and `check`, with any LD_* variable set, with
a standard stream closed, when the runtime directory is not private and
ours, when whoever listens is not us (SO_PEERCRED), for a background job
on its terminal (job control: the server's process could read the terminal
without being stopped), when the server refuses (`N`: peer.py says why) and
when it does not answer within ANSWER_TIMEOUT_S (then its socket and lock
are unlinked, so that the next run starts a new one).
"""

from __future__ import annotations

import _signal
import _socket
import os
import sys

from vectraguard import rundir
from vectraguard.forkserver import wire
from vectraguard.runtime import signal_sets

COMMANDS = frozenset({"run", "check"})
OFF = frozenset({"0", "off", "no", "false"})
# What ends a run, resizes its terminal or stops it (runtime/signal_sets.py); each is passed on.
ENDING = tuple(getattr(_signal, name) for name in signal_sets.ENDING if hasattr(_signal, name))
RESIZE = _signal.SIGWINCH
STOPPING = tuple(getattr(_signal, name) for name in signal_sets.STOPPING)
# sys.path (the identity a request is checked against: child.py) and where the socket is (rundir.py).
SERVER_ENVIRONMENT = ("PYTHONPATH", "XDG_RUNTIME_DIR")
SO_PEERCRED_SIZE = 12  # struct ucred: pid, uid, gid (socket(7))
ANSWER_TIMEOUT_S = 5.0  # a server that has not taken the request by then is not waited for
EXIT_LOST = 125


def wanted(argv: list[str]) -> bool:
    """Whether this command line goes to the fork server."""
    if os.environ.get("VECTRAGUARD_FORKSERVER", "").lower() in OFF:
        return False
    if any(name.startswith("LD_") for name in os.environ):
        return False  # the dynamic loader's settings (LD_PRELOAD ...) apply to this process, not to a served one
    for word in argv[1:]:
        if word == "--":
            return False
        if not word.startswith("-"):
            return word in COMMANDS
    return False


def package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def socket_path() -> str:
    """This installation's server socket: one per user, interpreter and
    copy of the package (its __init__.py's device, inode and mtime: a
    reinstall is a new server). OSError if the package cannot be stat'ed."""
    package = package_dir()
    info = os.stat(os.path.join(package, "__init__.py"))
    key = 0xCBF29CE484222325  # FNV-1a, 64-bit: a name, not a secret (the directory is private)
    for byte in os.fsencode(sys.executable) + b"\0" + os.fsencode(package):
        key = ((key ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    name = f"forkserver-{key:016x}-{info.st_dev:x}-{info.st_ino:x}-{info.st_mtime_ns:x}.sock"
    return os.path.join(rundir.runtime_dir(), name)


def _private_dir(path: str) -> bool | None:
    """True when `path` is a directory of ours no one else can enter; None when absent."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    return (info.st_mode & 0o170000) == 0o040000 and info.st_uid == os.geteuid() and not info.st_mode & 0o077


class _Abandon(Exception):
    """A signal came before the server took the request: give it up, then act on the signal here."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Forwarder:
    """The client's signal handlers. Before the run's process is known, a
    signal that ends or stops abandons the request (the client then acts on
    it as usual, and runs nothing); after, each is passed on to that process.
    A stop from the terminal (Ctrl-Z) stops that process and then this one,
    and continues it when this one is continued in the foreground: in the
    background a run that reads its terminal is kept stopped, as the
    terminal would stop an in-process run that reads it (SIGTTIN)."""

    def __init__(self, tty: int | None) -> None:
        self.tty = tty
        self.pidfd: int | None = None
        self.started = False  # the server said P: its process runs the command
        self.pending: list[int] = []  # signals between P and attach()
        self.previous = {sig: _signal.signal(sig, self.handler) for sig in (*ENDING, RESIZE, *STOPPING)}

    def handler(self, signum: int, _frame: object) -> None:
        if self.pidfd is None:
            if self.started:
                self.pending.append(signum)
            elif signum != RESIZE:  # the run reads the size when it starts
                raise _Abandon(signum)
            return
        if signum in STOPPING:
            self._stop(signum)
            return
        self._send(signum)

    def _send(self, signum: int) -> None:
        assert self.pidfd is not None
        try:
            _signal.pidfd_send_signal(self.pidfd, signum)
        except OSError:
            pass  # the process has ended; its status is on its way

    def _stop(self, signum: int) -> None:
        self._send(_signal.SIGSTOP)
        while True:
            continued: list[int] = []
            previous = _signal.signal(_signal.SIGCONT, lambda number, _frame, seen=continued: seen.append(number))
            _signal.signal(signum, _signal.SIG_DFL)
            _signal.raise_signal(signum)  # stopped here until continued; its handlers run before it returns
            _signal.signal(signum, self.handler)
            _signal.signal(_signal.SIGCONT, previous)
            # Not stopped (an orphaned process group ignores the terminal's stops,
            # signal(7)): neither is an in-process run, so the run goes on.
            if not continued or not self._reads_terminal_in_background():
                break
            signum = _signal.SIGTTIN
        self._send(_signal.SIGCONT)

    def _reads_terminal_in_background(self) -> bool:
        """In the background of the terminal it was given: the run may read it
        (its stdin, or a question to approve), so it stays stopped."""
        if self.tty is None:
            return False
        try:
            return os.tcgetpgrp(self.tty) != os.getpgrp()
        except OSError:
            return False

    def attach(self, pid: int) -> None:
        self.pidfd = os.pidfd_open(pid)
        for signum in self.pending:
            self.handler(signum, None)
        self.pending.clear()

    def restore(self) -> None:
        for sig, previous in self.previous.items():
            _signal.signal(sig, previous)


def _standard_streams_open() -> bool:
    """Whether descriptors 0, 1 and 2 are all open. A caller with one closed
    runs the command itself: the first descriptor opened here (the socket)
    would take its number and be passed on as that stream."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return False
    return True


def _descriptors() -> tuple[list[int], list[str], list[int], int | None] | None:
    """The descriptors to pass, their names, those opened here (to close), and
    the terminal's. None for a background job on its terminal."""
    fds, names = [0, 1, 2], ["0", "1", "2"]  # all open: run() checked before opening anything
    opened = [os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
    fds.append(opened[0])
    names.append("cwd")
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        tty = -1  # no controlling terminal
    if tty >= 0:
        opened.append(tty)
        try:
            foreground = os.tcgetpgrp(tty) == os.getpgrp()
        except OSError:
            foreground = False
        if not foreground:
            for fd in opened:
                os.close(fd)
            return None
        fds.append(tty)
        names.append("tty")
    return fds, names, opened, tty if tty >= 0 else None


def module_path() -> list[str] | None:
    """sys.path without the entry the interpreter put first (the script's
    directory, or the working directory for -m and -c), which the server
    (started with -P) does not have; None when this copy of the package is
    not found through the rest, so a server could not load it."""
    path = sys.path if sys.flags.safe_path or sys.flags.isolated else sys.path[1:]
    return path if os.path.dirname(package_dir()) in path else None


def _request(names: list[str], path: list[str]) -> bytes:
    streams = [(fd, stream.encoding, stream.errors or "strict")
               for fd, stream in enumerate((sys.stdin, sys.stdout, sys.stderr)) if stream is not None]
    return wire.encode(os.fsencode(sys.executable), [os.fsencode(entry) for entry in path],
                       [os.fsencode(word) for word in sys.argv], list(os.environb.items()), streams, names,
                       f"{sys.getfilesystemencoding()}:{sys.getfilesystemencodeerrors()}")


class _Lines:
    """The server's answer lines, one at a time: two may come in one read
    (a run that ends at once sends P and X together)."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def next(self) -> bytes:
        """One line, without its newline; b"" at end of stream."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(64)
            if not chunk:
                return b""
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


def run(argv: list[str]) -> int | None:
    """Run `argv` through the fork server: its exit status, or None when
    the caller must run it itself."""
    path_entries = module_path()
    if path_entries is None or not _standard_streams_open():
        return None
    try:
        path = socket_path()
    except OSError:
        return None
    private = _private_dir(os.path.dirname(path))
    if private is None:
        start_server()
        return None
    if not private or len(os.fsencode(path)) >= 108:  # sun_path holds 108 bytes, NUL included (unix(7))
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        return _run_on(sock, path, path_entries)
    finally:
        sock.close()


def _run_on(sock: _socket.socket, path: str, path_entries: list[str]) -> int | None:
    sock.settimeout(ANSWER_TIMEOUT_S)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        start_server()
        return None
    except OSError:
        return None
    peer = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, SO_PEERCRED_SIZE)
    if int.from_bytes(peer[4:8], sys.byteorder) != os.geteuid():
        return None
    try:
        passed = _descriptors()
    except OSError:
        return None
    if passed is None:
        return None
    fds, names, opened, tty = passed
    forwarder = _Forwarder(tty)
    lines = _Lines(sock)
    try:
        try:
            if lines.next() != b"R":  # a process of the server's has taken the connection
                _abandon(forwarder, sock)
                return None
            data = _request(names, path_entries)
            rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
            sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
            if sent < len(data):
                sock.sendall(data[sent:])
            hello = lines.next()
            if not hello.startswith(b"H"):
                _abandon(forwarder, sock)
                return None
            # The proof that this process may attach to the one that will run
            # its command (ptrace access, which a Landlock domain and other
            # confinement deny towards a less confined process: peer.py).
            proof = os.open(f"/proc/{int(hello[1:])}/mem", os.O_RDONLY | os.O_CLOEXEC)
            opened.append(proof)
            sock.sendmsg([b"p"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, proof.to_bytes(4, sys.byteorder))])
        finally:
            for fd in opened:
                if fd != tty:
                    os.close(fd)
        answer = lines.next()
        if not answer.startswith(b"P"):
            _abandon(forwarder, sock)
            return None
        forwarder.started = True  # from here on, whatever happens, the command is never run again here
    except _Abandon as abandon:
        sock.close()  # the server's process ends at the hang-up, having run nothing or been killed
        forwarder.restore()
        _signal.raise_signal(abandon.signum)
        return None
    except TimeoutError:
        # A server that has not answered: unbound, its lock file too, so that later
        # runs start a new one rather than wait for it (it exits when it finds its
        # socket gone; the new one locks a new file: server.py).
        for stale in (path, path.removesuffix(".sock") + ".lock"):
            try:
                os.unlink(stale)
            except OSError:
                pass
        _abandon(forwarder, sock)
        return None
    except (OSError, ValueError):
        _abandon(forwarder, sock)
        return None
    finally:
        if tty is not None and not forwarder.started:
            os.close(tty)
    try:
        forwarder.attach(int(answer[1:]))
        sock.settimeout(None)
        final = lines.next()
    except (OSError, ValueError):
        final = b""
    finally:
        if tty is not None:
            os.close(tty)
    forwarder.restore()
    if final.startswith(b"X"):
        return int(final[1:])
    os.write(2, b"vectraguard: the process running this command ended without an exit status (fork server); "
                b"its record says how far it got: vectraguard logs list\n")
    return EXIT_LOST


def _abandon(forwarder: _Forwarder, sock: _socket.socket) -> None:
    """The request was not taken: the caller runs the command itself."""
    sock.close()
    forwarder.restore()


def start_server() -> None:
    """Start this user's fork server in the background (a new session, no
    terminal, standard streams on /dev/null), for the next run. It makes
    the runtime directory, takes its lock, or exits if another holds it."""
    null = os.devnull
    actions = [(os.POSIX_SPAWN_OPEN, 0, null, os.O_RDWR, 0), (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
    # Nothing of this caller's environment but where the code is: the server
    # outlives it and serves others (its environment block stays readable).
    environment = {name: os.environ[name] for name in SERVER_ENVIRONMENT if name in os.environ}
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-P", "-m", "vectraguard.forkserver.server"], environment,
                       file_actions=actions, setsid=True)
    except OSError:
        pass  # runs stay in-process
