#!/usr/bin/env python3
"""Generate Vectra Guard's strict seccomp profile.

    python3 contrib/seccomp/generate_strict.py strict > profiles/seccomp/strict.json
    python3 contrib/seccomp/generate_strict.py strict-noexec > profiles/seccomp/strict-noexec.json

The JSON is committed; this script is its source of truth and reproduces it
byte for byte (tests/test_seccomp_hardening.py checks). The profile is an
allowlist: anything not named here fails with EPERM. It is stricter than
Podman's default in that namespace creation (unshare, setns, clone with
CLONE_NEW*), mounts, the kernel keyring, bpf, perf, userfaultfd, io_uring,
ptrace, terminal injection and address families a sandbox has no use for
(AF_VSOCK, AF_ALG, netlink other than NETLINK_ROUTE...) are all refused.

strict-noexec is the same profile for sandboxes whose writable filesystems
are noexec (filesystem.noexec_tmpfs; vectraguard/resources.py picks it, so a
profile cannot have the one without the other): it also refuses
memfd_create, the one way left to make a file that no mount flag governs
and then execute it (execveat(fd, "", AT_EMPTY_PATH) or /proc/self/fd/N).

How the JSON is read (runc 1.1 and crun, through Podman's containers/common):
  * rules whose action equals the default action are skipped as redundant,
    so the explicit "deny" rules below document intent and keep working if
    the default is ever changed (e.g. to SCMP_ACT_LOG while debugging);
  * several conditions on the same argument inside one rule are OR-ed by the
    runtimes, conditions on different arguments are AND-ed. Every
    alternative here is its own rule, and the one rule with two conditions
    (AF_NETLINK and NETLINK_ROUTE) puts them on different arguments;
  * libseccomp keeps only the unconditional rule when a syscall has both an
    unconditional rule and conditional ones, whatever their actions and order
    (seccomp_rule_add even returns 0). "allow ioctl" + "deny ioctl if
    request == TIOCSTI" therefore compiles to a plain "allow ioctl". Measured
    with libseccomp 2.5.4: see allow_all_except() for the formulation used;
  * on x86_64, libseccomp copies each rule on a socket call (socket, bind,
    ...) to the i386 socketcall multiplexer, with argument 0 replaced by the
    call number and the other conditions kept: see socket_rules().
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

EPERM = 1
ENOSYS = 38

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
MASKED_EQ = "SCMP_CMP_MASKED_EQ"

LOW32 = 0xFFFF_FFFF  # the kernel reads ioctl's request and personality as 32-bit


@dataclass(frozen=True)
class Arg:
    """One argument comparison: (arg[index] & mask) == value."""

    index: int
    mask: int
    value: int

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "value": self.mask, "valueTwo": self.value, "op": MASKED_EQ}


def low32(index: int, value: int) -> Arg:
    """arg[index] == value for an `int` argument: the kernel ignores bits
    above 32, so a filter must too (else 1 << 32 | AF_VSOCK slips past)."""
    return Arg(index, LOW32, value)


@dataclass(frozen=True)
class Rule:
    """One syscall rule; its `args` are AND-ed and must name distinct
    argument indexes (runc OR-s conditions on the same index)."""

    names: tuple[str, ...]
    action: str
    comment: str
    args: tuple[Arg, ...] = ()
    errno: tuple[str, int] | None = None
    arches: tuple[str, ...] = ()  # native arches (Go names) the rule is limited to

    def to_json(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "names": sorted(self.names),
            "action": self.action,
            "args": [arg.to_json() for arg in self.args],
            "comment": self.comment,
        }
        if self.arches:
            rule["includes"] = {"arches": list(self.arches)}
        if self.errno:
            rule["errnoRet"] = self.errno[1]
            rule["errno"] = self.errno[0]
        return rule


# --- what ordinary programs need, by intent -------------------------------
# Names that do not exist on an architecture are ignored there, so one list
# serves x86_64, i386, aarch64 and arm. Legacy 32-bit names are in their own
# group so that their presence is a visible choice.

ALLOWED: dict[str, tuple[str, ...]] = {
    "process lifecycle": (
        "execve", "execveat", "exit", "exit_group", "fork", "vfork",
        "wait4", "waitid", "getpid", "getppid", "gettid", "getpgid", "getpgrp",
        "getsid", "setpgid", "setsid", "set_tid_address", "set_robust_list",
        "get_robust_list", "rseq", "restart_syscall", "prctl", "arch_prctl",
        "capget", "capset", "seccomp", "landlock_create_ruleset",
        "landlock_add_rule", "landlock_restrict_self",
    ),
    # Changing identity still needs CAP_SETUID/CAP_SETGID, which are dropped;
    # programs that drop privileges must not crash on EPERM-by-seccomp instead.
    "credentials": (
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
        "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid",
        "setresgid", "setgroups", "setfsuid", "setfsgid",
    ),
    "memory": (
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync",
        "mincore", "mlock", "mlock2", "munlock", "mlockall", "munlockall",
        "membarrier", "memfd_create", "pkey_alloc", "pkey_free",
        "pkey_mprotect", "get_mempolicy", "set_mempolicy", "mbind",
        "map_shadow_stack", "mseal",
    ),
    "signals": (
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_sigqueueinfo",
        "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "kill",
        "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "pause", "alarm",
    ),
    # Reading clocks and sleeping; setting the clock is in DENIED.
    "time": (
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
        "gettimeofday", "time", "times", "getitimer", "setitimer",
        "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun",
        "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    ),
    "futexes and scheduling": (
        "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
        "sched_yield", "sched_getaffinity", "sched_setaffinity",
        "sched_getparam", "sched_setparam", "sched_getscheduler",
        "sched_setscheduler", "sched_get_priority_max",
        "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr",
        "sched_setattr", "getpriority", "setpriority", "ioprio_get",
        "ioprio_set", "getcpu",
    ),
    "limits and system information": (
        "getrlimit", "setrlimit", "prlimit64", "getrusage", "sysinfo", "uname",
        "getrandom", "umask",
    ),
    "file descriptors and I/O": (
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
        "pwritev", "preadv2", "pwritev2", "close", "close_range", "dup", "dup2",
        "dup3", "lseek", "fcntl", "flock", "pipe", "pipe2", "sendfile",
        "splice", "tee", "copy_file_range", "readahead", "fadvise64",
        "fallocate", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
        "eventfd", "eventfd2", "cachestat",
    ),
    "paths and metadata": (
        "stat", "fstat", "lstat",
        "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
        "faccessat2", "readlink", "readlinkat", "getcwd", "chdir", "fchdir",
        "getdents", "getdents64", "mkdir", "mkdirat", "rmdir", "unlink",
        "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
        "symlink", "symlinkat",
        "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate",
        "utime", "utimes", "futimesat", "utimensat", "getxattr", "lgetxattr",
        "fgetxattr", "listxattr", "llistxattr", "flistxattr", "setxattr",
        "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
        "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch",
        "inotify_rm_watch",
    ),
    # The classic AIO is allowed, io_uring is not (see DENIED).
    "polling and AIO": (
        "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "io_setup",
        "io_destroy", "io_submit", "io_getevents", "io_cancel",
    ),
    # Network isolation is the network namespace's job; raw and packet
    # sockets still need CAP_NET_RAW, which is dropped. Which sockets can be
    # made at all is decided by family: see SOCKET_FAMILIES.
    "sockets": (
        "bind", "listen", "accept", "accept4",
        "connect", "getsockname", "getpeername", "getsockopt", "setsockopt",
        "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
        "shutdown", "send", "recv",
    ),
    # Private to the container's IPC namespace.
    "SysV and POSIX IPC": (
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop",
        "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open",
        "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
        "mq_getsetattr",
    ),
    # i386 and arm binaries: 32-bit variants of the calls above.
    "32-bit ABI variants": (
        "_llseek", "_newselect", "mmap2", "fcntl64", "fstat64", "lstat64",
        "stat64", "fstatat64", "statfs64", "fstatfs64", "truncate64",
        "ftruncate64", "sendfile64", "fadvise64_64", "arm_fadvise64_64",
        "arm_sync_file_range", "ugetrlimit", "waitpid",
        "sigreturn", "ipc", "nice", "get_thread_area",
        "set_thread_area", "cacheflush", "set_tls", "chown32", "fchown32",
        "lchown32", "getuid32", "geteuid32", "getgid32", "getegid32",
        "getresuid32", "getresgid32", "getgroups32", "setuid32", "setgid32",
        "setreuid32", "setregid32", "setresuid32", "setresgid32",
        "setgroups32", "setfsuid32", "setfsgid32", "clock_gettime64",
        "clock_getres_time64", "clock_nanosleep_time64", "futex_time64",
        "ppoll_time64", "pselect6_time64", "recvmmsg_time64",
        "rt_sigtimedwait_time64", "sched_rr_get_interval_time64",
        "semtimedop_time64", "timer_gettime64", "timer_settime64",
        "timerfd_gettime64", "timerfd_settime64", "utimensat_time64",
        "mq_timedsend_time64", "mq_timedreceive_time64",
    ),
}

# --- refused, with the reason ------------------------------------------------
# Not strictly needed (the default already refuses them) but stated so that a
# review sees each decision, and so the generator can check that no allowed
# group lets one of them back in.

DENIED: dict[str, tuple[str, ...]] = {
    # A new user namespace re-grants every capability inside it: the usual
    # first step of a container escape (PRIV-03). setns would join another
    # process's namespaces.
    "namespaces": (
        "unshare", "setns",
    ),
    # Mounting, remounting or changing root escapes the filesystem policy;
    # the new mount API (fsopen...) and mount introspection come with it.
    "mounts and root changes": (
        "mount", "umount", "umount2", "pivot_root", "chroot",
        "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree",
        "mount_setattr", "statmount", "listmount",
    ),
    # The kernel keyring is not namespaced: keys are shared with the host.
    "kernel keyring": (
        "keyctl", "add_key", "request_key",
    ),
    # Large kernel attack surface, rarely needed by ordinary programs.
    "risky kernel interfaces": (
        "bpf",  # verifier bugs are a recurring path to kernel code execution
        "userfaultfd",  # stalls page faults at will: the classic race widener
        "perf_event_open",  # large, bug-prone, and a side channel
        # I/O outside the reach of syscall filtering and a long CVE list;
        # libuv and others fall back to ordinary I/O when setup fails.
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        "vmsplice",  # page-cache splicing, home of several root exploits
        "io_pgetevents", "io_pgetevents_time64",  # newer AIO wait; io_getevents stays
        "modify_ldt", "vm86", "vm86old",  # 16-bit segments and real mode: Wine/DOSEMU only
        "memfd_secret",  # secretmem: new and unneeded
        "fanotify_init", "fanotify_mark",  # filesystem-wide watching
        "lookup_dcookie",  # profiling interface that reveals kernel-side paths
    ),
    # Reading or steering other processes (PRIV-02).
    "other processes": (
        "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
        "pidfd_getfd", "kcmp", "move_pages", "migrate_pages",
        "process_mrelease",
    ),
    # File handles bypass path checks and mount boundaries (CVE-2014-3519).
    "file handles": (
        "open_by_handle_at", "name_to_handle_at",
    ),
    # Machine administration: needs capabilities we drop, refused regardless.
    "host administration": (
        "reboot", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module",
        "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog",
        "sethostname", "setdomainname", "vhangup", "iopl", "ioperm",
        "settimeofday", "clock_settime", "clock_settime64", "adjtimex",
        "clock_adjtime", "clock_adjtime64", "stime",
        "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",  # obsolete
    ),
}

# --- syscalls allowed only for some argument values -------------------------

# clone: any CLONE_NEW* flag creates a namespace. The mask covers NEWNS,
# NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID and NEWNET (CLONE_NEWTIME only
# exists for clone3 and unshare). The flags are argument 0 on x86_64, i386,
# aarch64 and arm but not on s390x, hence the arches list: on an architecture
# not listed, clone is refused altogether (fail closed).
CLONE_NEW_MASK = 0x7E02_0000
CLONE_ARCHES = ("amd64", "arm64")

# personality: only the harmless personas; ADDR_NO_RANDOMIZE and friends
# would weaken ASLR. 0xffffffff queries the current persona.
PERSONAS = {
    0x0: "PER_LINUX",
    0x8: "PER_LINUX32",
    0x2_0000: "UNAME26",
    0x2_0008: "PER_LINUX32|UNAME26",
    0xFFFF_FFFF: "query",
}

# ioctl: TIOCSTI pushes keystrokes into a terminal's input (CVE-2017-5226),
# TIOCLINUX can do the same on a virtual console (CVE-2023-1523). The
# kernel truncates the request to 32 bits, so 0x1_0000_5412 is TIOCSTI too
# (CVE-2019-10063): every comparison masks with 0xffffffff.
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# mknod/mknodat: fifos, sockets and regular files only; device nodes need
# CAP_MKNOD today, refusing them here keeps that true if a capability slips in.
S_IFMT = 0o170000

# No set-user-ID or set-group-ID file is made in a sandbox: a mount's nosuid
# covers only what runs inside it, and a read-write workspace is the host's
# own directory. Found by a blind attack on isolation lite, whose rootful
# sandboxes all run as one host user: a sandbox planted a set-uid copy of a
# shell in an rw workspace, any local user who ran it became that user, and
# with it could read and write every running lite sandbox. The mode bits are
# checked wherever a call sets them: chmod and its relatives; open, openat and
# creat when they create (O_CREAT or O_TMPFILE); mknod of a regular file.
# openat2 passes its mode in memory, where a filter cannot look: ENOSYS, which
# glibc and Go never need (open and openat are what they call), and which the
# programs that try it first take as "use openat".
S_ISUID, S_ISGID = 0o4000, 0o2000
SETID = S_ISUID | S_ISGID
O_CREAT, O_TMPFILE_BIT = 0o100, 0o20000000  # <asm-generic/fcntl.h>: O_TMPFILE = __O_TMPFILE | O_DIRECTORY
MODE_ARG = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "creat": 1}
OPEN_ARGS = {"open": (1, 2), "openat": (2, 3)}  # (flags index, mode index)
NODE_TYPES = {0: "regular (0)", 0o100000: "S_IFREG", 0o010000: "S_IFIFO", 0o140000: "S_IFSOCK"}

# socket: only the address families sandboxes use. AF_UNIX (local IPC:
# nscd, D-Bus, language servers), AF_INET and AF_INET6 (the network
# namespace decides what they reach), and AF_NETLINK with NETLINK_ROUTE only:
# glibc's getaddrinfo reads the interface addresses through it
# (AI_ADDRCONFIG), and so do getifaddrs, if_nameindex, `ip`, Go's
# net.Interfaces and Node's os.networkInterfaces. Every other family fails
# with EPERM, as Docker's and Podman's defaults refuse AF_VSOCK: vsock
# reaches the hypervisor and host past the network namespace, and the rest
# (AF_ALG, AF_KEY, AF_TIPC, AF_RDS, AF_CAN, AF_BLUETOOTH, AF_XDP, AF_SMC ...)
# is kernel code no sandbox needs, often loaded as a module by the very
# socket() call, with a CVE history of its own. The other netlink protocols
# (SOCK_DIAG, AUDIT, KOBJECT_UEVENT, GENERIC, XFRM, NETFILTER ...) steer or
# watch kernel subsystems; `ss` falls back to /proc/net without SOCK_DIAG.
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
NETLINK_ROUTE = 0
SOCKET_FAMILIES = {AF_UNIX: "AF_UNIX", AF_INET: "AF_INET", AF_INET6: "AF_INET6"}

# socketcall (i386) multiplexes the socket calls with their arguments in
# memory, where a filter cannot read the family. libseccomp turns every rule
# on an x86_64 socket call into one on socketcall too, with argument 0
# replaced by the call number: the family rules above become "allow
# socketcall(SYS_SOCKET)" for any family, and a conditional deny next to
# them loses (measured: AF_VSOCK through socketcall was still created). An
# unconditional rule is the one formulation that wins (module docstring), so
# socketcall is refused whole, with ENOSYS, what a kernel without it says.
# Linux 4.3+ has direct i386 socket calls, filtered like x86_64's, and musl
# uses them; i386 glibc built for older kernels (Debian's) goes through
# socketcall and so has no sockets in a sandbox.

# strict-noexec only. ENOSYS, not EPERM: it is what a kernel without the
# call answers, the case programs fall back from (to shm_open or a
# temporary file, which lie on noexec mounts). MFD_NOEXEC_SEAL is no way
# out: a sealed memfd cannot be execve'd, but it can still be mapped
# executable (measured on Linux 6.18), which is all ld.so and dlopen need.
NOEXEC_REFUSED = ("memfd_create",)
VARIANTS = {"strict": False, "strict-noexec": True}  # name: NOEXEC_REFUSED refused


def allow_all_except(forbidden: list[int], width: int = 32) -> list[tuple[int, int]]:
    """(mask, value) pairs whose matches are exactly the values not forbidden.

    libseccomp cannot express "allow unless (x & mask) == v" (see the module
    docstring), so ioctl is allowed by several rules instead, one for each
    subtree of a binary trie over the low `width` bits that holds no
    forbidden value. The subtrees are disjoint and together cover every
    value except the forbidden ones; bits above `width` are ignored, as the
    kernel ignores them.
    """

    def cover(bit: int, mask: int, value: int, left: list[int]) -> list[tuple[int, int]]:
        if not left:
            return [(mask, value)]
        if bit < 0:
            return []  # this leaf is a forbidden value
        pairs: list[tuple[int, int]] = []
        for b in (0, 1):
            branch = [v for v in left if (v >> bit) & 1 == b]
            pairs += cover(bit - 1, mask | 1 << bit, value | b << bit, branch)
        return pairs

    return cover(width - 1, 0, 0, sorted(set(forbidden)))


def conditional_rules() -> list[Rule]:
    rules = [
        Rule(("clone",), ALLOW, "clone without CLONE_NEW* flags",
             (Arg(0, CLONE_NEW_MASK, 0),), arches=CLONE_ARCHES),
        # glibc falls back to clone only on ENOSYS; clone3 passes its flags in
        # memory, where seccomp cannot look.
        Rule(("clone3",), ERRNO, "clone3: flags unreadable, force clone fallback",
             errno=("ENOSYS", ENOSYS)),
    ]
    rules += [Rule(("personality",), ALLOW, f"personality {name}", (low32(0, value),))
              for value, name in PERSONAS.items()]
    rules += [Rule(("ioctl",), ALLOW, "ioctl other than TIOCSTI/TIOCLINUX", (Arg(1, mask, value),))
              for mask, value in allow_all_except([TIOCSTI, TIOCLINUX])]
    rules += [Rule(("ioctl",), ERRNO, f"{name}: terminal input injection",
                   (low32(1, value),), errno=("EPERM", EPERM))
              for value, name in ((TIOCSTI, "TIOCSTI"), (TIOCLINUX, "TIOCLINUX"))]
    for call, mode_index in (("mknod", 1), ("mknodat", 2)):
        rules += [Rule((call,), ALLOW, f"{call} {name}, neither set-uid nor set-gid",
                       (Arg(mode_index, S_IFMT | SETID, kind),))
                  for kind, name in NODE_TYPES.items()]
    return rules + setid_rules() + socket_rules()


def setid_rules() -> list[Rule]:
    """Every call that sets a file's mode, allowed only without S_ISUID and S_ISGID (above)."""
    rules = [Rule((call,), ALLOW, f"{call}: no set-uid or set-gid bit", (Arg(index, SETID, 0),))
             for call, index in MODE_ARG.items()]
    for call, (flags, mode) in OPEN_ARGS.items():
        rules += [Rule((call,), ALLOW, f"{call} that creates nothing", (Arg(flags, O_CREAT | O_TMPFILE_BIT, 0),)),
                  Rule((call,), ALLOW, f"{call} creating a file with no set-uid or set-gid bit",
                       (Arg(mode, SETID, 0),))]
    rules.append(Rule(("openat2",), ERRNO, "openat2: its mode is unreadable, use openat", errno=("ENOSYS", ENOSYS)))
    return rules


def socket_rules() -> list[Rule]:
    rules = [Rule(("socket",), ALLOW, f"socket {name}", (low32(0, family),))
             for family, name in SOCKET_FAMILIES.items()]
    rules.append(Rule(("socket",), ALLOW, "socket AF_NETLINK, NETLINK_ROUTE only",
                      (low32(0, AF_NETLINK), low32(2, NETLINK_ROUTE))))
    rules.append(Rule(("socketpair",), ALLOW, "socketpair AF_UNIX", (low32(0, AF_UNIX),)))
    rules.append(Rule(("socketcall",), ERRNO, "socketcall: family unreadable, use the direct calls",
                      errno=("ENOSYS", ENOSYS)))
    return rules


def allowed_groups(noexec: bool) -> dict[str, tuple[str, ...]]:
    if not noexec:
        return ALLOWED
    return {intent: tuple(n for n in names if n not in NOEXEC_REFUSED) for intent, names in ALLOWED.items()}


def noexec_rules(noexec: bool) -> list[Rule]:
    if not noexec:
        return []
    return [Rule(NOEXEC_REFUSED, ERRNO, "deny: a file no mount flag governs, executable (strict-noexec)",
                 errno=("ENOSYS", ENOSYS))]


def check_consistency(noexec: bool) -> None:
    allowed = [n for names in allowed_groups(noexec).values() for n in names]
    denied = [n for names in DENIED.values() for n in names]
    denied += [n for rule in noexec_rules(noexec) for n in rule.names]
    conditional = {n for rule in conditional_rules() for n in rule.names}
    duplicates = {n for n in allowed + denied if (allowed + denied).count(n) > 1}
    if duplicates:
        raise SystemExit(f"listed twice: {sorted(duplicates)}")
    if overlap := conditional & set(allowed + denied):
        raise SystemExit(f"conditional syscalls also listed unconditionally: {sorted(overlap)}")


def profile(noexec: bool) -> dict[str, Any]:
    """The profile; `noexec`: the strict-noexec variant."""
    check_consistency(noexec)
    syscalls = [Rule(tuple(names), ALLOW, f"allow: {intent}").to_json()
                for intent, names in allowed_groups(noexec).items()]
    syscalls += [rule.to_json() for rule in conditional_rules()]
    syscalls += [Rule(tuple(names), ERRNO, f"deny: {reason}", errno=("EPERM", EPERM)).to_json()
                 for reason, names in DENIED.items()]
    syscalls += [rule.to_json() for rule in noexec_rules(noexec)]
    return {
        "defaultAction": ERRNO,
        "defaultErrnoRet": EPERM,
        "defaultErrno": "EPERM",
        # i386 and arm binaries stay usable; x32 is left out: no distribution
        # ships it and its entry points have had their own bugs
        # (CVE-2014-0038). Its syscalls hit the bad-architecture action.
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": syscalls,
    }


def main() -> None:
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    if name not in VARIANTS:
        raise SystemExit(f"usage: generate_strict.py {{{'|'.join(VARIANTS)}}}")
    json.dump(profile(VARIANTS[name]), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
