"""The one place that knows bubblewrap's and vectraguard-lite-init's options.

A `lite` sandbox is `bwrap` (bubblewrap 0.8, bwrap(1)) building the
namespaces and the mount table from the ContainerSpec, then running
Vectra Guard's init (contrib/lite/vectraguard-lite-init.c) as its first
program, which hands the planted listeners back, waits for the go-ahead,
remounts the noexec tmpfs, drops every capability, applies the rlimits,
Landlock and the seccomp filter, and executes the command.

Every host object reaches bwrap as a file descriptor the caller opened
(`--ro-bind-fd`/`--bind-fd`; /etc/hosts as data). bubblewrap 0.8 still
resolves such a descriptor's path by name once inside its user namespace
(bubblewrap issue #570): rootful, where it runs as an unprivileged system
user, every source must be reachable by path for "others" (plan.py checks
it first), and what it mounted is proved to be the held object before the
command runs (sandbox/held.py verify, through the init's /proc/PID/root).
"""

from __future__ import annotations

from collections.abc import Mapping

from vectraguard.lite.plan import LitePlan
from vectraguard.records import record
from vectraguard.sandbox.entry import ENTRY_TARGET
from vectraguard.sandbox.spec import ContainerSpec

SHM_SIZE = 64 << 20  # Podman's default /dev/shm
DEV_SIZE = 64 << 10  # /dev holds only device nodes and symlinks
# The host's device nodes bound into /dev, as OCI's default devices (runtime-spec config-linux.md) minus console.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
CONSOLE = "/dev/console"
# Held by the init, in the sandbox's own user namespace only, from bwrap
# until it has bound the allowlist's forwarders (ports below 1024:
# CAP_NET_BIND_SERVICE), remounted the noexec tmpfs (CAP_SYS_ADMIN) and
# locked the securebits (CAP_SETPCAP); it then drops every capability for good.
INIT_CAPABILITIES = ("CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_SETPCAP")


@record
class Fds:
    """Descriptors open in the caller, inherited by bwrap under the same numbers."""

    entries: Mapping[str, int]  # top-level entry name -> O_PATH fd in the unpacked image
    binds: Mapping[str, int]  # mount target -> held O_PATH fd of its source
    hosts: int  # the sandbox's /etc/hosts: its bytes, read by bwrap (--ro-bind-data)
    init: int  # vectraguard-lite-init
    bpf: int  # the seccomp filter, read by the init
    control: int  # the init's end of the control socket
    tty: str = ""  # a terminal session's pseudo-terminal (ours, streams.py), e.g. /dev/pts/3
    empty: tuple[int, ...] = ()  # empty files, one per PROC_COVERED path


def argv(spec: ContainerSpec, plan: LitePlan, fds: Fds, listen: tuple[tuple[str, int], ...],
         bwrap: str) -> list[str]:
    """The whole command line. ValueError for a spec it cannot express (a
    user that is not UID:GID, a volume)."""
    uid, _, gid = spec.user.partition(":")
    if not (uid.isdigit() and gid.isdigit()):
        raise ValueError(f"isolation lite needs a numeric security.user UID:GID, not {spec.user!r}")
    if spec.volumes:
        raise ValueError("isolation lite has no volumes")
    line = [bwrap, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup", "--uid", uid, "--gid", gid, "--hostname", spec.hostname,
            "--die-with-parent", "--new-session", *(f for cap in INIT_CAPABILITIES for f in ("--cap-add", cap)),
            "--clearenv"]
    # HOSTNAME as Podman sets it (bash and others read it); bwrap adds PWD.
    for name, value in {"HOSTNAME": spec.hostname, **spec.env}.items():
        line += ["--setenv", name, value]
    line += ["--chdir", spec.workdir]
    for entry in plan.entries:
        if entry.kind == "symlink":
            line += ["--symlink", entry.link, f"/{entry.name}"]
        else:
            line += ["--ro-bind-fd", str(fds.entries[entry.name]), f"/{entry.name}"]
    line += ["--proc", "/proc", *_proc_covers(fds.empty), *_dev()]
    if fds.tty:  # a terminal session's: /dev/pts is the sandbox's own devpts
        line += ["--dev-bind", fds.tty, CONSOLE]
    for bind in spec.binds:
        line += ["--ro-bind-fd" if bind.read_only else "--bind-fd", str(fds.binds[bind.target]), bind.target]
    for tmpfs in spec.tmpfs:
        line += ["--size", str(tmpfs.size), "--perms", tmpfs.mode, "--tmpfs", tmpfs.target]
    line += ["--perms", "0444", "--ro-bind-data", str(fds.hosts), "/etc/hosts", "--ro-bind-fd", str(fds.init), ENTRY_TARGET,
             "--remount-ro", "/", "--", ENTRY_TARGET, *init_options(spec, fds, listen), "--", *spec.command]
    return line


# The kernel's key lists show the descriptions of every key the sandbox's
# host uid may view: nothing rootful (a user that owns nothing), but the
# caller's own keyrings rootless, where the sandbox is the caller (found by
# the rootless isolation matrix). Covered with an empty file, as runc covers
# its masked paths (OCI config-linux.md maskedPaths).
PROC_COVERED = ("/proc/keys", "/proc/key-users")


def _proc_covers(empty: tuple[int, ...]) -> list[str]:
    """An empty read-only file over each of PROC_COVERED: `empty` holds one
    descriptor of an empty file per path (bwrap reads each to its end)."""
    if len(empty) != len(PROC_COVERED):
        raise ValueError("one empty file per covered /proc path is needed")
    return [part for path, fd in zip(PROC_COVERED, empty)
            for part in ("--perms", "0444", "--ro-bind-data", str(fd), path)]


def _dev() -> list[str]:
    """A minimal /dev of our own rather than bwrap's `--dev`: for the devpts
    it mounts there, `--dev` sets the sandbox up as uid 0 and then moves it
    into a second, nested user namespace for its uid 1000 — and the network
    namespace stays the first one's, so the init could no longer bind the
    allowlist's forwarders on ports below 1024. The init mounts the
    sandbox's own devpts on /dev/pts (and /dev/ptmx points there); a
    terminal session's pseudo-terminal, ours (streams.py), is /dev/console."""
    line = ["--size", str(DEV_SIZE), "--perms", "0755", "--tmpfs", "/dev"]
    for name in DEVICES:
        line += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
        line += ["--symlink", target, f"/dev/{name}"]
    return [*line, "--dir", "/dev/pts", "--size", str(SHM_SIZE), "--perms", "1777", "--tmpfs", "/dev/shm"]


def init_options(spec: ContainerSpec, fds: Fds, listen: tuple[tuple[str, int], ...]) -> list[str]:
    """vectraguard-lite-init's options (before its `--`)."""
    options = ["--control", str(fds.control)]
    for address, port in listen:
        options += ["--listen", f"{address}:{port}"]
    writable = [t.target for t in spec.tmpfs] + [b.target for b in spec.binds if not b.read_only]
    for tmpfs in spec.tmpfs:
        if tmpfs.noexec:
            options += ["--noexec", tmpfs.target]
    if any(t.noexec for t in spec.tmpfs):
        options += ["--noexec", "/dev/shm"]  # the other writable tmpfs: noexec too, as the profile asks
    # Landlock: everything readable and executable (noexec mounts stop
    # execution where the profile wants it stopped, mmap included); writable
    # only where a writable mount is; devices only under /dev.
    options += ["--read", "/", "--exec", "/"]
    for target in [*writable, "/dev/shm"]:
        options += ["--write", target]
    options += ["--device", "/dev"]
    for rlimit in spec.rlimits:
        options += ["--rlimit", f"{rlimit.name}={rlimit.soft}:{rlimit.hard}"]
    options += ["--devpts", "/dev/pts"]
    if spec.terminal:
        options += ["--tty", "0"]
    options += ["--seccomp", str(fds.bpf)]
    return options
