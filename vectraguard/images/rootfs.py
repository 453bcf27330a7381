"""Building a Debian root filesystem tarball with mmdebstrap.

mmdebstrap needs no registry and no daemon: it downloads .debs from a
Debian mirror and installs them into a temporary chroot under $TMPDIR
(one of ours, see scratch.py), which it removes itself on TERM and INT.
As root it chroots directly; an unprivileged caller needs its
user-namespace mode (`--mode=unshare`, using the caller's /etc/subuid).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vectraguard.errors import RuntimeUnavailable
from vectraguard.images import recipe

TIMEOUT_S = 30 * 60  # a slow mirror, not a hung one
STOP_GRACE_S = 60  # mmdebstrap removes its temporary chroot on TERM
DEFAULT_MIRROR_TEXT = "deb.debian.org (mmdebstrap's default)"

# apt's wording for a mirror it could not talk to at all.
_UNREACHABLE = re.compile(
    r"Could not resolve|Temporary failure resolving|Could not connect|Connection refused|"
    r"Connection timed out|Unable to connect|No route to host|Network is unreachable|Connection failed"
)
# ... and for a mirror that answered but has no such suite.
_NO_SUITE = re.compile(r"404\s+Not Found|does not have a Release file")


@dataclass(frozen=True)
class MmdebstrapRun:
    status: int
    timed_out: bool
    tail: tuple[str, ...]  # the last lines it printed, for the error report


def mmdebstrap_argv(plan: recipe.ImagePlan, mirror: str | None, target: Path, *, rootless: bool,
                    verbose: bool) -> list[str]:
    argv = [
        "mmdebstrap", "--variant=minbase", f"--mode={'unshare' if rootless else 'root'}", "--format=tar",
        f"--include={','.join(plan.packages)}",
        *(f"--dpkgopt={option}" for option in recipe.DPKG_OPTIONS),
        *(f"--aptopt={option}" for option in recipe.APT_OPTIONS),
        *(f"--customize-hook={hook}" for hook in plan.hooks),
    ]
    # Always: apt's and dpkg's lines are what the progress display reads (progress.py);
    # they are shown as they are only with -v.
    argv.append("--verbose")
    argv += [plan.suite, str(target)]
    if mirror:
        argv.append(mirror)
    return argv


def require_mmdebstrap() -> None:
    if shutil.which("mmdebstrap") is None:
        raise RuntimeUnavailable("vectraguard: mmdebstrap is not installed (it builds the image from Debian packages)",
                                 hint="apt-get install mmdebstrap")


def needs_unshare() -> bool:
    """Without root, mmdebstrap works in a user namespace of the caller's subordinate ids."""
    return os.geteuid() != 0


def build_rootfs(plan: recipe.ImagePlan, mirror: str | None, target: Path, *, tmpdir: Path, echo: bool,
                 verbose: bool, on_line: Callable[[str], None] | None = None) -> None:
    """Write the plan's rootfs to `target` (a tar) or raise a one-line error."""
    require_mmdebstrap()
    rootless = needs_unshare()
    suite = plan.suite
    argv = mmdebstrap_argv(plan, mirror, target, rootless=rootless, verbose=verbose)
    run = run_mmdebstrap(argv, env={**os.environ, "TMPDIR": str(tmpdir)}, echo=echo, on_line=on_line)
    if run.timed_out:
        raise RuntimeUnavailable(f"vectraguard: mmdebstrap did not finish within {TIMEOUT_S // 60} minutes",
                                 hint="the mirror may be very slow: try --mirror with a closer one")
    if run.status != 0:
        raise explain_failure(run, suite, mirror, rootless=rootless)
    if not target.is_file():
        raise RuntimeUnavailable("vectraguard: mmdebstrap reported success but wrote no rootfs",
                                 hint="rerun with -v to see mmdebstrap's output")


def run_mmdebstrap(argv: list[str], *, env: dict[str, str], echo: bool,
                   on_line: Callable[[str], None] | None = None) -> MmdebstrapRun:
    """Run it, keep the last lines of its output, echo them with -v, hand each to `on_line` (progress)."""
    tail: deque[str] = deque(maxlen=40)
    timed_out = threading.Event()
    # stdin is /dev/null: mmdebstrap reads sources.list entries from stdin when told to.
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, text=True, errors="replace")

    def give_up() -> None:
        timed_out.set()
        proc.terminate()

    timer = threading.Timer(TIMEOUT_S, give_up)
    timer.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(tail[-1])
            if echo:
                sys.stderr.write(line)
                sys.stderr.flush()
        return MmdebstrapRun(proc.wait(), timed_out.is_set(), tuple(tail))
    finally:
        timer.cancel()
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    """After Ctrl-C or an error: let mmdebstrap clean up its chroot, then make sure it is gone."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def explain_failure(run: MmdebstrapRun, suite: str, mirror: str | None, *, rootless: bool) -> RuntimeUnavailable:
    errors = [line for line in run.tail if line.startswith("E:")] or list(run.tail[-5:])
    where = mirror or DEFAULT_MIRROR_TEXT
    text = "\n".join(run.tail)
    # The first error names the URL and apt's reason; the rest repeat it.
    if _NO_SUITE.search(text):
        return RuntimeUnavailable(f"vectraguard: the Debian mirror {where} has no suite {suite!r}", details=errors[:1],
                                  hint="check --suite (e.g. bookworm, trixie) and --mirror")
    if _UNREACHABLE.search(text):
        return RuntimeUnavailable(f"vectraguard: the Debian mirror {where} is unreachable", details=errors[:1],
                                  hint="check the network and proxy settings (http_proxy), "
                                  "or pass --mirror URL of a reachable Debian mirror")
    hint = "rerun with -v to see mmdebstrap's output"
    if rootless and "unshare" in text:
        hint = ("rootless builds need subordinate ids for your user in /etc/subuid and /etc/subgid "
                "and newuidmap (apt-get install uidmap); " + hint)
    return RuntimeUnavailable(f"vectraguard: mmdebstrap failed (exit status {run.status})",
                              details=errors[-5:], hint=hint)
