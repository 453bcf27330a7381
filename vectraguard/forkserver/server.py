"""The fork server: a resident process per user that has imported the code
a run needs, and forks once per `vectraguard run` or `check` to run it.

Started by a client that found none (client.start_server), as
`python -P -m vectraguard.forkserver.server`: it leaves the client (fork, the
parent exits), closes what it inherited, imports every module of the
package and the standard modules a run imports lazily, takes
`forkserver-….lock` beside its socket (one server per socket; a second
exits), binds the socket (0600, in the private runtime directory), and
serves: each connection is handed to a forked child (child.py) and closed
here. It never parses a request itself.

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
    from vectraguard.forkserver import child, client, inotify

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
    while True:
        ready, _, _ = select.select([listener, watch.fd], [], [], 5.0)
        if watch.changed() or not _still_ours(path, bound):
            break
        if listener in ready:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            last = time.monotonic()
            if watch.changed():  # an upgrade just before this request: the client runs it itself
                conn.close()
                break
            try:
                pid = os.fork()
            except OSError:
                conn.close()
                continue
            if pid == 0:
                try:
                    listener.close()
                    watch.close()
                    os.close(lock)
                    child.serve(conn, identity)
                finally:
                    os._exit(1)  # never back into this loop: a child is not a server
            conn.close()
        elif time.monotonic() - last > IDLE_S:
            break
    listener.close()
    if _still_ours(path, bound):
        os.unlink(path)
    return 0


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
