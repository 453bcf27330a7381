"""The fork server: a resident process per user that has imported the code
a run needs, and forks once per `vectraguard run` or `check` to run it.

Started by a client that found none (client.start_server), as
`python -P -m vectraguard.forkserver.server`: it leaves the client (fork, the
parent exits), closes what it inherited, imports every module of the
package and the standard modules a run imports lazily, takes
`forkserver-….lock` beside its socket (one server per socket; a second
exits), binds the socket (0600, in the private runtime directory), and
serves: each connection is accepted by a child forked ahead of it (a
Spare, child.py then serves it); the server itself never accepts a
connection nor parses a request.

It exits when idle for IDLE_S, when its socket is removed or replaced, and
as soon as anything changes in a directory its code came from — its own
package, the standard library, the dependencies, the interpreter's, the
shipped profiles and schemas (inotify, read before each fork, so an upgrade
is never served by the old code);
SIGTERM ends it at once. Children are never waited for: SIGCHLD is
ignored, so the kernel reaps them (sigaction(2)). Their runs are theirs;
the server's exit does not touch them.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import os
import pkgutil
import select
import signal
import socket
import stat
import sys
import time
from pathlib import Path

IDLE_S = 600.0  # ten minutes without a request; the next run starts a new server
BACKLOG = 64
# Standard and third-party modules a run imports inside functions (grep "^\s+import" vectraguard/).
LAZY_IMPORTS = ("asyncio", "base64", "ctypes", "datetime", "difflib", "fcntl", "hashlib", "hmac", "json",
                "jsonschema", "pty", "pwd", "referencing", "secrets", "shlex", "socket", "sqlite3", "ssl",
                "struct", "subprocess", "tempfile", "termios", "threading", "traceback", "tty", "zlib")
NOT_WARMED = ("vectraguard.__main__", "vectraguard.forkserver.server")


def _leave_the_client() -> None:
    if os.fork():
        os._exit(0)  # the client's child ends here; the server is reparented to init
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, 1 << 16)


def _warm() -> list[str]:
    """Import what a run may import; the directories the code came from."""
    import vectraguard

    for name in LAZY_IMPORTS:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    for module in pkgutil.walk_packages(vectraguard.__path__, "vectraguard."):
        if module.name not in NOT_WARMED:
            with contextlib.suppress(Exception):  # e.g. lite's binding where libseccomp is missing
                importlib.import_module(module.name)
    from vectraguard import cli, resources
    from vectraguard.forkserver import client

    with contextlib.suppress(Exception):
        _compile_shipped_rules()
    for command in client.COMMANDS:  # after the rules: re's cache keeps the latest 512 patterns
        parser = cli.parser_for(command)
        with contextlib.suppress(Exception, SystemExit):  # argparse's patterns go to re's cache, shared by the children
            parser.parse_known_args([command, "-p", "default"])
    # Every module's, the standard library's and the dependencies' too: an
    # upgrade of any of them is code this process would otherwise keep serving.
    directories = {os.path.dirname(os.path.realpath(path)) for module in list(sys.modules.values())
                   if isinstance(path := getattr(module, "__file__", None), str)}
    directories.add(os.path.dirname(os.path.realpath(sys.executable)))
    # The shipped profiles and schemas: what the caches filled above were read from.
    with contextlib.suppress(Exception):
        data = resources.data_root()
        directories |= {str(data / "profiles"), str(data / "profiles" / "fragments"), str(data / "schemas")}
    return sorted(d for d in directories if d and os.path.isdir(d))


def _compile_shipped_rules() -> None:
    """Compile every pattern of every shipped profile's rules into the
    process's table (risk/rules.py `compiled`), resolving the profiles with
    nothing but the shipped layers: configuration, cache and system
    directories all point at an empty directory, removed afterwards."""
    import tempfile

    from vectraguard import resources
    from vectraguard.config import profiles
    from vectraguard.risk.rules import compile_rules

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="vectraguard-forkserver-") as empty:
        os.environ.clear()
        os.environ.update({"HOME": empty, "XDG_CONFIG_HOME": empty, "XDG_CACHE_HOME": empty, "XDG_DATA_HOME": empty,
                           "VECTRAGUARD_SYSTEM_DIR": empty, "VECTRAGUARD_DATA_DIR": empty})
        try:
            with contextlib.suppress(Exception):
                _match_deny_rules(empty)
            for path in sorted(resources.profiles_dir().glob("*.yaml")):
                with contextlib.suppress(Exception):
                    risk = profiles.resolve(path.stem, [], profiles.Sources()).risk or {}
                    for rule in compile_rules(risk.get("rules", []), risk.get("patterns", {})):
                        for regexes in rule.regexes():
                            regexes.compile_all()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            tempfile.tempdir = None  # chosen above from the empty directory's environment: not a run's


def _match_deny_rules(home: str) -> None:
    """Match a path against every mount deny rule once: fnmatch compiles the
    rules' name patterns (`.*`, `podman-run-*`: the same for every user) into
    its cache, which the children inherit."""
    from vectraguard.config.problems import Origin
    from vectraguard.sandbox import mounts

    with contextlib.suppress(Exception):
        mounts.check_source_allowed(os.path.join(home, "absent", "x"), mounts.denied_sources(home), Origin("warm-up"))


def main() -> int:
    _leave_the_client()
    if _under_seccomp():
        return 0  # what a filter allows cannot be compared with a client's: such a server could serve no one
    from vectraguard import paths, rundir
    from vectraguard.forkserver import client, inotify

    path = client.socket_path()
    try:
        paths.ensure_private_dir(Path(rundir.runtime_dir()))
    except Exception:  # noqa: BLE001 - nobody to tell: clients run in-process
        return 1
    lock_path = path.removesuffix(".sock") + ".lock"
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another server has it
    try:
        if not os.path.samestat(os.fstat(lock), os.stat(lock_path)):
            return 0  # unlinked meanwhile (a client gave up on its holder): the next client starts a new server
    except OSError:
        return 0
    directories = _warm()
    from vectraguard.forkserver import peer

    peer.ours()  # read once here; every child has the same (peer.py)
    peer._libc()
    try:
        watch = inotify.Watch(directories)
    except OSError:
        return 1  # without knowing when the code changes, serving could run stale code
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a server that died: we hold the lock
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(BACKLOG)
    bound = os.stat(path).st_ino
    identity = (os.fsencode(sys.executable), [os.fsencode(entry) for entry in sys.path],
                f"{sys.getfilesystemencoding()}:{sys.getfilesystemencodeerrors()}")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.environ.clear()  # the starting client's, secrets included: each run brings its own (child.py)
    gc.collect()
    gc.freeze()  # the children share these pages; no collection will write to them (gc.freeze docs)
    last = time.monotonic()
    spare: Spare | None = None
    while True:
        if spare is None:
            try:
                spare = Spare(listener, (watch.fd, lock), identity)
            except OSError:
                spare = None  # no process now (EAGAIN, ENOMEM): tried again at the next turn
        ready, _, _ = select.select([watch.fd] + ([spare.taken] if spare else []), [], [], 5.0)
        if watch.changed() or not _still_ours(path, bound):
            break
        if spare is not None and spare.taken in ready:
            last = time.monotonic()
            # Read just now, with the request already accepted: an upgrade before it is never served by the
            # old code; the spare then closes the connection and the client runs the command itself.
            stale = watch.changed()
            if not spare.answer(not stale):
                time.sleep(0.1)  # it died waiting (accept failed): not a fork loop
            spare = None
            if stale:
                break
        elif time.monotonic() - last > IDLE_S:
            break
    if spare is not None:
        spare.end()
    listener.close()
    if _still_ours(path, bound):
        os.unlink(path)
    return 0


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PREFAULT_MAX_BYTES = 256 << 20


class Spare:
    """The process for the next request, forked ahead of it (the fork and its first page copies are then
    not part of any run's start-up). It waits in accept(2) on the server's socket; once it has a
    connection it says so on a pipe (`A`) and waits for the server's answer: `G`, serve it (child.py);
    anything else (the code changed: server.py checks its watch right then), close it, so that the
    client runs the command itself. It dies with the server until it is taken (PR_SET_PDEATHSIG), and
    is then on its own: a run outlives the server, as before."""

    def __init__(self, listener: socket.socket, close_in_child: tuple[int, ...],
                 identity: tuple[bytes, list[bytes], str]) -> None:
        taken_r, taken_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        server = os.getpid()
        try:
            self.pid = os.fork()
        except OSError:
            for fd in (taken_r, taken_w, go_r, go_w):
                os.close(fd)
            raise
        if self.pid == 0:
            try:
                for fd in (taken_r, go_w, *close_in_child):
                    os.close(fd)
                _wait_and_serve(listener, server, taken_w, go_r, identity)
            finally:
                os._exit(1)  # never back into the server's loop: a child is not a server
        os.close(taken_w)
        os.close(go_r)
        self.taken, self.go = taken_r, go_w

    def answer(self, serve: bool) -> bool:
        """The spare said `A` (or died: end of file): let it serve or not; it is no longer ours. Whether
        it had taken a connection."""
        taken = False
        with contextlib.suppress(OSError):
            if os.read(self.taken, 1) == b"A":
                taken = True
                os.write(self.go, b"G" if serve else b"S")
        os.close(self.taken)
        os.close(self.go)
        return taken

    def end(self) -> None:
        """The server leaves: a spare that has not been taken goes (one that has runs its request)."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        os.close(self.taken)
        os.close(self.go)


def _wait_and_serve(listener: socket.socket, server: int, taken: int, go: int,
                    identity: tuple[bytes, list[bytes], str]) -> None:
    from vectraguard.forkserver import child, peer

    libc = peer._libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != server:
        return  # the server died before the death signal was armed
    _prefault()
    conn, _ = listener.accept()
    listener.close()
    os.write(taken, b"A")
    answer = os.read(go, 1)
    os.close(taken)
    os.close(go)
    if answer != b"G":
        conn.close()
        return
    libc.prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)  # taken: the run is the caller's now, whatever the server does
    child.serve(conn, identity)


def _prefault() -> None:
    """Copy, before a request comes, the pages a run would copy first. A forked child shares the server's
    memory until it writes to it; each first write of a page is a copy-on-write fault, and a run's start-up
    took about half its time in them (CPU of the same steps warm against fresh after a fork). Writing
    every page of the anonymous private memory (the heap and Python's arenas; not file mappings, which
    could end before their last page, nor the stack) with the byte it holds takes those faults here, while
    no one waits. The cost: the spare's memory is its own (tens of MiB resident while it waits)."""
    import ctypes

    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/maps", encoding="ascii") as maps:
        regions = [line.split() for line in maps]
    budget = PREFAULT_MAX_BYTES
    for fields in regions:
        # address perms offset dev inode [path]: private, writable, not backed by a file (inode 0)
        if fields[1] != "rw-p" or fields[4] != "0" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if end - start > budget:
            break  # a reservation far beyond what the server uses (~32 MiB here) is not made resident
        budget -= end - start
        for address in range(start, end, page):
            byte = ctypes.c_char.from_address(address)
            byte.value = byte.value


def _under_seccomp() -> bool:
    with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
        return any(line.split() == ["Seccomp:", "1"] or line.split() == ["Seccomp:", "2"] for line in handle)


def _still_ours(path: str, inode: int) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(info.st_mode) and info.st_ino == inode


if __name__ == "__main__":
    sys.exit(main())
