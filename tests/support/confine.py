"""confine.py MODE CMD...: run CMD confined, as an agent's sandbox would confine
its tools, without the no_new_privs bit (as root may):

  landlock  a Landlock domain that handles only LANDLOCK_ACCESS_FS_MAKE_BLOCK
            (nothing here makes block devices: everything else still works)
  seccomp   a seccomp filter that allows every system call

Either way the process is more confined than one without, and nothing shows
it in /proc but the Seccomp line (seccomp) or nothing at all (Landlock).
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

SYS_LANDLOCK_CREATE_RULESET = 444  # <asm-generic/unistd.h>, the same on x86_64 and aarch64
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000


def landlock(libc: ctypes.CDLL) -> None:
    attr = struct.pack("=Q", LANDLOCK_ACCESS_FS_MAKE_BLOCK)  # struct landlock_ruleset_attr, handled_access_fs only
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, len(attr), 0)
    if ruleset < 0 or libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
        raise SystemExit(f"confine.py: landlock: {os.strerror(ctypes.get_errno())}")


def seccomp(libc: ctypes.CDLL) -> None:
    program = ctypes.create_string_buffer(struct.pack("=HBBI", BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    fprog = struct.pack("@HP", 1, ctypes.addressof(program))  # struct sock_fprog, native alignment
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0) != 0:
        raise SystemExit(f"confine.py: seccomp: {os.strerror(ctypes.get_errno())}")


def main() -> None:
    mode, *command = sys.argv[1:]
    libc = ctypes.CDLL(None, use_errno=True)
    {"landlock": landlock, "seccomp": seccomp}[mode](libc)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
