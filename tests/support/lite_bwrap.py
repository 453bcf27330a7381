"""A minimal bubblewrap sandbox around vectraguard-lite-init, for its tests.

Not the runner: the smallest bwrap line that gives the init what the runner
will (an unprivileged user namespace, uid 1000 inside, CAP_SYS_ADMIN and
CAP_SETPCAP in that namespace only, every namespace unshared, the host's root
read-only), and the parent's side of the control socket (the protocol is
described in contrib/lite/vectraguard-lite-init.c).

A run goes: `LiteRun.start(...)`, `handshake()` (the "R" message and its
listeners, or the "F" line of an init that failed), `go()` or `refuse()`,
then `finish()` (exit status, what came after on the control socket, output).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "contrib" / "lite" / "vectraguard-lite-init.c"
INIT_INSIDE = "/run/vectraguard-lite-init"
# Where the command runs in these tests; PATH as the runner sets it.
SANDBOX_PATH = "/usr/bin:/bin"
TIMEOUT = 60  # seconds; a guard against a hang, never an assertion
# An unprivileged caller: bwrap then makes an unprivileged user namespace.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

# Classic BPF (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k), as
# libseccomp's seccomp_export_bpf writes it; native byte order.
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AUDIT_ARCH_X86_64 = 0xC000003E
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x15, 0x06


def bpf(*instructions: tuple[int, int, int, int]) -> bytes:
    """The bytes of a classic BPF program: (code, jt, jf, k) per instruction."""
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in instructions)


ALLOW_ALL = bpf((_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))


def deny_syscall(number: int, errno: int) -> bytes:
    """A filter (x86-64) that fails syscall `number` with `errno` and allows the rest."""
    return bpf((_BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
               (_BPF_JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
               (_BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
               (_BPF_JEQ_K, 0, 1, number),
               (_BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno),
               (_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))


def compile_init(directory: Path) -> Path:
    """The init, built as contrib/install.sh builds it, in `directory`."""
    program = directory / "vectraguard-lite-init"
    subprocess.run(["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(program), str(SOURCE)],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(["strip", str(program)], check=True, timeout=60)
    program.chmod(0o755)
    return program


def shared_dir(prefix: str) -> Path:
    """A directory anyone may use, since bwrap resolves bind sources as its caller."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o1777)
    return path


def bwrap_command(init: Path, init_args: Sequence[str], command: Sequence[str],
                  bwrap_args: Sequence[str] = (), caps: Sequence[str] = ("CAP_SYS_ADMIN", "CAP_SETPCAP")) -> list[str]:
    """The bwrap argv: the brief's minimal sandbox, then `bwrap_args` (extra mounts)."""
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", SANDBOX_PATH, "--uid", "1000", "--gid", "1000"]
    for cap in caps:
        argv += ["--cap-add", cap]
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
             "--tmpfs", "/run", "--ro-bind", str(init), INIT_INSIDE, *bwrap_args]
    return [*argv, INIT_INSIDE, *init_args, "--", *command]


@dataclass(frozen=True)
class Handshake:
    """The init's first message: "R" with listeners, "F" and its line (no F, no newline), or "EOF"."""

    kind: str
    message: str
    listeners: list[socket.socket]


@dataclass(frozen=True)
class Finished:
    """How the run ended: exit status, the control bytes after the handshake, output."""

    status: int
    control: bytes
    stdout: str
    stderr: str


class LiteRun:
    """One bwrap process running the init, and the parent's end of its control socket."""

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket) -> None:
        self.process = process
        self.control = control
        self.control.settimeout(TIMEOUT)

    @classmethod
    def start(cls, init: Path, init_args: Sequence[str], command: Sequence[str], *,
              unprivileged: bool, seccomp: bytes = ALLOW_ALL, bwrap_args: Sequence[str] = (),
              caps: Sequence[str] = ("CAP_SYS_ADMIN", "CAP_SETPCAP"),
              pass_fds: Sequence[int] = ()) -> LiteRun:
        """Start the sandbox; `init_args` gets --control and --seccomp prepended.

        `unprivileged`: run bwrap as nobody (setpriv) when this process is root.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        program = os.memfd_create("seccomp", 0)
        try:
            os.write(program, seccomp)
            os.lseek(program, 0, os.SEEK_SET)
            args = ["--control", str(theirs.fileno()), "--seccomp", str(program), *init_args]
            argv = bwrap_command(init, args, command, bwrap_args, caps)
            if unprivileged and os.geteuid() == 0:
                argv = NOBODY + argv
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       pass_fds=(theirs.fileno(), program, *pass_fds))
        finally:
            theirs.close()
            os.close(program)
        return cls(process, ours)

    def handshake(self) -> Handshake:
        """Read the first message: "R" and its listeners, or an "F" line (to EOF)."""
        data, fds, _flags, _address = socket.recv_fds(self.control, 1, 64)
        listeners = [socket.socket(fileno=fd) for fd in fds]
        if data == b"R":
            return Handshake("R", "", listeners)
        rest = self._read_to_end().decode(errors="replace")
        return Handshake(data.decode(errors="replace") or "EOF", rest.rstrip("\n"), listeners)

    def go(self) -> None:
        self.control.sendall(b"G")

    def refuse(self, answer: bytes = b"N") -> None:
        """Send anything but G, or nothing at all (b""): the parent's refusal."""
        if answer:
            self.control.sendall(answer)
        self.control.shutdown(socket.SHUT_WR)

    def finish(self) -> Finished:
        """Wait for the sandbox to end; what the control socket said after the handshake."""
        control = self._read_to_end()
        stdout, stderr = self.process.communicate(timeout=TIMEOUT)
        self.control.close()
        return Finished(self.process.returncode, control, stdout.decode(errors="replace"),
                        stderr.decode(errors="replace"))

    def _read_to_end(self) -> bytes:
        chunks = []
        while chunk := self.control.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        """Stop the sandbox if it is still running (test cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=TIMEOUT)
        self.control.close()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
