"""Check-then-mount races (the CVE-2021-30465 class), attacked for real.

An attacker sandbox with a read-write workspace loops `renameat2(RENAME_EXCHANGE)`
between a directory `data` and a symlink to a home secret, while the test
starts sandboxes that mount `data` (by --mount, read-write and read-only, and
as an overlay workspace). Without held sources (vectraguard/sandbox/held.py)
the OCI runtime follows the symlink it finds at mount time and the victim
sees the secret; with them, each try either mounts `data` or is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import TEST_IMAGE, Caller

TRIES = 50
MARKER = "vg-race-secret-marker"
SAFE = "vg-race-data-marker"

# Runs in the attacker sandbox, from its read-write workspace (compiled
# statically here: the test image is busybox). `data` is the directory most
# of the time, so most checks pass, and a symlink to the secret now and then,
# so some mounts happen while it is one.
SWAPPER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2 || chdir("/workspace") != 0 || symlink(argv[1], "link") != 0) return 2;
    close(open("READY", O_CREAT | O_WRONLY, 0644));
    struct timespec brief = {0, 500000}, pause = {0, 2000000};
    long swaps = 0;
    time_t end = time(NULL) + 600;
    while (access("STOP", F_OK) != 0 && time(NULL) < end) {
        if (renameat2(AT_FDCWD, "data", AT_FDCWD, "link", RENAME_EXCHANGE) == 0) {
            swaps++;
            nanosleep(&brief, NULL);
            renameat2(AT_FDCWD, "data", AT_FDCWD, "link", RENAME_EXCHANGE);
        }
        nanosleep(&pause, NULL);
    }
    printf("swaps %ld\n", swaps);
    return 0;
}
"""


def _own(path: Path, user: str | None) -> None:
    if user:
        shutil.chown(path, user, user)


@pytest.fixture
def arena(request: pytest.FixtureRequest) -> Iterator[tuple[Caller, Path, Path, dict[str, str]]]:
    """(caller, workspace with `data`, secret directory, extra environment)."""
    caller: Caller = request.getfixturevalue(request.param)
    user = caller.user
    base = Path(tempfile.mkdtemp(prefix="vg-race-"))
    base.chmod(0o755)
    workspace = base / "ws"
    workspace.mkdir()
    data = workspace / "data"
    data.mkdir()
    (data / SAFE).write_text("data\n")
    # Rootful, a read-write mount needs a directory every sandbox user may write.
    for path in (workspace, data):
        path.chmod(0o777 if user is None else 0o755)
        _own(path, user)
    (data / SAFE).chmod(0o644)
    _own(data / SAFE, user)
    if user is None:
        home = base / "home"
        home.mkdir(mode=0o755)
        extra = {"HOME": str(home)}
    else:  # rootless Podman keeps its storage under the real home: use that one
        home = Path(os.path.expanduser(f"~{user}"))
        extra = {}
    secret = home / ".ssh"
    created = not secret.exists()
    secret.mkdir(mode=0o755, exist_ok=True)
    (secret / MARKER).write_text("secret\n")
    (secret / MARKER).chmod(0o644)
    for path in (secret, secret / MARKER):
        _own(path, user)
    try:
        yield caller, workspace, secret, extra
    finally:
        (secret / MARKER).unlink(missing_ok=True)
        if created:
            shutil.rmtree(secret, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def _start_attacker(caller: Caller, workspace: Path, secret: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    source = workspace / "swapper.c"
    source.write_text(SWAPPER_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(workspace / "swapper"), str(source)], check=True)
    (workspace / "swapper").chmod(0o755)
    argv, env = caller.argv(caller.vg([
        "run", "-p", "test-best-effort", "--workspace", "rw", "--yes", "--set", "limits.timeout=15m",
        "--", "/workspace/swapper", str(secret)]), extra)
    attacker = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (workspace / "READY").exists():
        if attacker.poll() is not None or time.monotonic() > deadline:
            attacker.kill()
            _, err = attacker.communicate()
            pytest.fail(f"the attacker sandbox did not start: {err.decode(errors='replace')}")
        time.sleep(0.1)
    return attacker


def _stop_attacker(attacker: subprocess.Popen[bytes], workspace: Path) -> str:
    (workspace / "STOP").touch()
    try:
        out, err = attacker.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        attacker.kill()
        out, err = attacker.communicate()
    return out.decode(errors="replace") + err.decode(errors="replace")


@pytest.mark.parametrize("arena", ["root", "rootless"], indirect=True)
@pytest.mark.parametrize("how", ["mount-rw", "mount-ro", "overlay-workspace"])
def test_a_swapped_mount_source_is_never_what_the_sandbox_gets(
        arena: tuple[Caller, Path, Path, dict[str, str]], how: str) -> None:
    caller, workspace, secret, extra = arena
    attacker = _start_attacker(caller, workspace, secret, extra)
    seen_secret, seen_data, refused, other, reasons = 0, 0, 0, [], set()
    try:
        for _ in range(TRIES):
            if how == "overlay-workspace":
                args, cwd = ["--workspace", "overlay"], workspace / "data"
            else:
                args = ["--workspace", "none", "--mount",
                        f"{workspace / 'data'}:/workspace:{'rw' if how == 'mount-rw' else 'ro'}"]
                cwd = workspace
            try:
                result = caller.run(["run", "-p", "test-best-effort", "--image", TEST_IMAGE, "--yes", *args,
                                     "--", "ls", "/workspace"], cwd=cwd, extra_env=extra, timeout=120)
            except (FileNotFoundError, NotADirectoryError):  # the cwd was a symlink at that moment
                continue
            listing = result.stdout.decode(errors="replace")
            if MARKER in listing:
                seen_secret += 1
            elif SAFE in listing and result.returncode == 0:
                seen_data += 1
            elif result.returncode != 0:
                refused += 1
                reasons.add(result.stderr.decode(errors="replace").strip().splitlines()[0][:160])
            else:
                other.append(listing)
    finally:
        # (`ls` changes nothing: an overlay try keeps no layer to discard)
        report = _stop_attacker(attacker, workspace)
    print(f"{how}: {seen_data} mounted data, {refused} refused ({sorted(reasons)[:3]}), {seen_secret} got the secret")
    swaps = next((int(line.split()[1]) for line in report.splitlines() if line.startswith("swaps ")), 0)
    assert swaps > 100, f"the attacker did not run: {report}"
    assert seen_secret == 0, (f"{seen_secret} of {TRIES} sandboxes got the swapped-in secret "
                              f"({seen_data} got data, {refused} refused)")
    assert seen_data > 0, f"no try mounted the real directory ({refused} refused: {sorted(reasons)[:5]})"
    assert not other, f"unexpected listings: {other[:3]}"


def test_the_mount_table_is_split_on_newlines_only() -> None:
    """Found by a blind attack: a working directory named with a carriage
    return was refused as "replaced between its check and the mount":
    str.splitlines() also splits on \\r, \\f, \\v and \\x1c-\\x1e, which the
    kernel leaves unescaped in /proc/PID/mountinfo (it escapes only space,
    tab, newline and backslash)."""
    from vectraguard.sandbox.held import parse_mountinfo

    line = "36 35 0:40 / /work/odd\rname\x1cx rw,nosuid - tmpfs tmpfs rw\n"
    (entry,) = parse_mountinfo(line + "37 35 0:41 / /tmp\\040x ro - tmpfs tmpfs ro\n")[:1]
    assert entry.mount_point == "/work/odd\rname\x1cx" and "nosuid" in entry.options
    assert parse_mountinfo(line)[0].mount_point == "/work/odd\rname\x1cx"
