"""Removing a sandbox after `vectraguard run` has returned its status.

A run's container is removed by a detached process, so that the caller
gets the exit status as soon as the command has exited (removal costs
10-20 ms, more when Podman's cleanup still holds the container). The
process is a child in a session of its own, with its standard streams on
/dev/null (a caller reading our output until EOF must not wait for it);
`vectraguard run` exits right after forking it (one fork, no wait), so
it is reparented to init, which reaps it. It refills the pool if the run
used one (vectraguard/pool/: first, so the next run finds a container
ready sooner), removes the container, records the removal, then reaps the
sandboxes of runs that were killed (reaper.py).

Each pending removal is a file in `removals/` of the runtime directory,
named by the container ID and locked (flock) by that process for as long
as it works: `wait_for_pending` — `vectraguard sandbox reap --wait`, and
the tests — takes each lock in turn, so it returns exactly when every
removal started before it has ended, without sleeping. A remover that
died leaves its file unlocked, and the container to the reaper.

Forking is done only while this process has one thread (a fork copies no
other thread, and a lock one of them held would stay held forever in the
child); otherwise, and if fork fails, the removal is done before returning,
as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Callable
from pathlib import Path

from vectraguard import diag, startup
from vectraguard.paths import ensure_private_dir, runtime_dir
from vectraguard.runtime.libpod import Libpod, LibpodError

# (container ID, error message or "") -> None; records the removal. Called in
# the detached process; it must not raise.
OnRemoved = Callable[[str, str], None]


def pending_dir() -> Path:
    return runtime_dir() / "removals"


def remove_now(client: Libpod, cid: str, on_removed: OnRemoved | None = None) -> str:
    """Remove `cid`; "" when done (or it was already gone), else why not."""
    try:
        client.remove(cid)
        error = ""
    except LibpodError as exc:
        error = exc.message
    except Exception as exc:  # noqa: BLE001 - Podman unreachable: the reaper retries
        error = str(exc)
    if on_removed is not None:
        on_removed(cid, error)
    return error


# Signals a terminal sends to its foreground process group (termios(3), tty_ioctl(4)).
TERMINAL_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN,
                              signal.SIGTTOU, signal.SIGWINCH})


def remove_later(client: Libpod, cid: str, on_removed: OnRemoved | None = None,
                 then: Callable[[], None] | None = None, first: Callable[[], None] | None = None) -> bool:
    """Remove `cid` in a detached process: there call `first` (the pool's
    refill), remove it, then call `then` (the reaper). False when it could
    not be detached and was removed here instead, with neither called (its
    error, if any, went to `on_removed`)."""
    lock = _lock_pending(cid)
    if lock is None or not startup.only_thread():
        diag.debug(f"sandbox {cid[:12]} removed before returning: "
                   f"{'no place to note it' if lock is None else 'other threads run'}")
        if lock is not None:
            _release(lock, cid)
        remove_now(client, cid, on_removed)
        return False
    # Until the child has a session of its own, a hang-up or Ctrl-C on the
    # caller's terminal reaches it too: a shell session's terminal closes as
    # `vectraguard` exits, and the child died with it, its sandbox left to the
    # reaper. Blocked from before the fork; the child ignores them once detached.
    masked = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL_SIGNALS)
    try:
        child = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)
        _release(lock, cid)
        remove_now(client, cid, on_removed)
        return False
    if child == 0:  # pragma: no cover - runs in the detached process (tested through its effects)
        _detached(client, cid, lock, on_removed, then, first, masked)
    signal.pthread_sigmask(signal.SIG_SETMASK, masked)
    os.close(lock)  # the child holds the lock through its own copy
    return True



def _detached(client: Libpod, cid: str, lock: int, on_removed: OnRemoved | None,
              then: Callable[[], None] | None, first: Callable[[], None] | None,
              masked: set[int | signal.Signals]) -> None:
    """The detached process: works, then exits. Never returns."""
    status = 0
    try:
        os.setsid()  # no controlling terminal from here on
        for number in TERMINAL_SIGNALS:  # what arrived before is discarded, nothing more can
            signal.signal(number, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, lock)
        os.closerange(lock + 1, 65536)
        if first is not None:
            with contextlib.suppress(Exception):  # the removal must happen whatever the refill did
                first()
        remove_now(client, cid, on_removed)
        if then is not None:
            then()
        with contextlib.suppress(OSError):
            os.unlink(pending_dir() / cid)
    except BaseException:  # noqa: BLE001 - nothing may escape into the caller's code path
        status = 1
    os._exit(status)


def _lock_pending(cid: str) -> int | None:
    directory = pending_dir()
    try:
        ensure_private_dir(directory.parent)
        ensure_private_dir(directory)
        # Locked under a temporary name, then renamed: a waiter never finds the
        # file before its lock is taken (it would take it for an abandoned one).
        fresh = directory / f".{cid}.{os.getpid()}"
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(fresh, directory / cid)
    except Exception:  # noqa: BLE001 - no place to note it: remove it here and now
        return None
    return fd


def _release(fd: int, cid: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(pending_dir() / cid)
    os.close(fd)


def pending_locked(cid: str) -> bool:
    """True while a detached process is removing `cid`."""
    try:
        fd = os.open(pending_dir() / cid, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def wait_for_pending(directory: Path | None = None) -> list[str]:
    """Block until every removal pending now (in `directory`, by default this
    user's) has ended; the IDs of those whose process died first (their
    containers are left to the reaper)."""
    directory = directory or pending_dir()
    abandoned = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        if name.startswith("."):
            continue  # being set up: its remover has not started
        try:
            fd = os.open(directory / name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue  # done meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # returns when its remover has ended
            if os.path.exists(directory / name):
                abandoned.append(name)  # its remover died: the reaper will see to the container
                with contextlib.suppress(OSError):
                    os.unlink(directory / name)
        finally:
            os.close(fd)
    return abandoned
