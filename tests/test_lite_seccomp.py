"""vectraguard/lite/seccomp_bpf.py: the shipped OCI profiles compiled to BPF.

The filters are loaded by the real bubblewrap (`--seccomp FD`) on the real
kernel, and a probe inside calls syscall() and reports errno. Each filtered
answer is set against the same probe run without a filter, so a test fails
if the call was refused by something other than the profile (a capability,
a bad argument). Needs /usr/bin/bwrap; the 32-bit probe needs gcc.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vectraguard.lite import seccomp_bpf
from vectraguard.resources import seccomp_path

BWRAP = "/usr/bin/bwrap"
EPERM, ENOSYS, EXDEV = 1, 38, 18
CLONE_NEWUSER = 0x1000_0000
SIGCHLD = 17

# Each check: name -> (x86_64 syscall number, arguments). Arguments are chosen
# so that, unfiltered, the kernel answers something other than EPERM
# (EFAULT, EINVAL, ESRCH...) or succeeds.
PROBE = r"""
import ctypes, json, os, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    return 0 if ret >= 0 else ctypes.get_errno()
def clone_newuser():
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(56), ctypes.c_ulong(0x10000000 | 17), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if ret == 0:
        os._exit(0)
    if ret < 0:
        return ctypes.get_errno()
    os.waitpid(ret, 0)
    return 0
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) - 7
def in_child(check):
    pid = os.fork()  # a check that changes the process is made in a child
    if pid == 0:
        os._exit(check())
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
def thread():
    seen = []
    t = threading.Thread(target=seen.append, args=(1,))
    t.start(); t.join()
    return 0 if seen == [1] else -1
null = os.open("/dev/null", os.O_RDONLY)
memfd_name = ctypes.create_string_buffer(b"probe")
pipe_r, pipe_w = os.pipe()
nread = ctypes.c_int()
checks = {
    "unshare_newuser": lambda: in_child(lambda: call(272, 0x10000000)),
    "mount_badptr": lambda: call(165, 1, 1, 1, 0, 0),
    "keyctl_badop": lambda: call(250, 9999, 0, 0, 0, 0),
    "ptrace_nopid": lambda: call(101, 0x4206, 999999, 0, 0),
    "bpf_badcmd": lambda: call(321, 9999, 0, 0),
    "clone3_null": lambda: call(435, 0, 0),
    "clone_newuser": clone_newuser,
    "fork": fork,
    "thread": thread,
    "personality_query": lambda: call(135, 0xFFFFFFFF),
    "personality_no_aslr": lambda: call(135, 0x0040000),
    "memfd_create": lambda: call(319, ctypes.addressof(memfd_name), 0),
    "socket_vsock": lambda: call(41, 40, 1, 0),
    "socket_unix": lambda: call(41, 1, 1, 0),
    "ioctl_tiocsti": lambda: call(16, null, 0x5412, 0),
    "ioctl_tiocsti_high_bits": lambda: call(16, null, 0x1_0000_5412, 0),
    "ioctl_fionread": lambda: call(16, pipe_r, 0x541B, ctypes.addressof(nread)),
    "not_in_profile": lambda: call(450, 0, 0, 0, 0),
    "above_profile": lambda: call(1000),
    "x32_getpid": lambda: call(0x40000000 | 39),
}
names = sys.argv[1:] or list(checks)
print(json.dumps({n: checks[n]() for n in names}))
"""


def bwrap_argv(command: list[str], seccomp_fd: int | None) -> list[str]:
    argv = [BWRAP, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
            "--dev", "/dev", "--proc", "/proc"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv + ["--", *command]


@functools.cache
def bwrap_missing() -> str:
    """Why bwrap cannot run a sandbox here, or ""."""
    if not os.access(BWRAP, os.X_OK):
        return f"{BWRAP} is not installed"
    done = subprocess.run(bwrap_argv(["true"], None), capture_output=True, text=True)
    return "" if done.returncode == 0 else f"bwrap cannot make a sandbox here: {done.stderr.strip()}"


def run_in_bwrap(command: list[str], bpf: bytes | None) -> subprocess.CompletedProcess[str]:
    """`command` in a bwrap sandbox, under the BPF program `bpf` if given;
    skips the test when bwrap cannot run here."""
    if reason := bwrap_missing():
        pytest.skip(reason)
    if bpf is None:
        return subprocess.run(bwrap_argv(command, None), capture_output=True, text=True, timeout=60)
    read, write = os.pipe()
    try:
        os.write(write, bpf)  # a few KiB: fits in the pipe's buffer
        os.close(write)
        return subprocess.run(bwrap_argv(command, read), capture_output=True, text=True,
                              timeout=60, pass_fds=(read,))
    finally:
        os.close(read)


def probe(bpf: bytes | None, *names: str) -> dict[str, int]:
    """The probe's answers: 0 for success, else the errno."""
    done = run_in_bwrap([sys.executable, "-c", PROBE, *names], bpf)
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def unfiltered() -> dict[str, int]:
    return probe(None, *[n for n in PROBE_NAMES if n != "x32_getpid"])


PROBE_NAMES = ["unshare_newuser", "mount_badptr", "keyctl_badop", "ptrace_nopid", "bpf_badcmd",
               "clone3_null", "clone_newuser", "fork", "thread", "personality_query",
               "personality_no_aslr", "memfd_create", "socket_vsock", "socket_unix",
               "ioctl_tiocsti", "ioctl_tiocsti_high_bits", "ioctl_fionread",
               "not_in_profile", "above_profile"]

# What the shipped profiles answer (contrib/seccomp/generate_strict.py).
REFUSED_EPERM = ["unshare_newuser", "mount_badptr", "keyctl_badop", "ptrace_nopid",
                 "bpf_badcmd", "clone_newuser", "personality_no_aslr", "socket_vsock",
                 "ioctl_tiocsti", "ioctl_tiocsti_high_bits", "not_in_profile"]
WORKING = ["fork", "thread", "personality_query", "socket_unix", "ioctl_fionread"]


@pytest.fixture(scope="module", params=[False, True], ids=["strict", "strict-noexec"])
def shipped(request: pytest.FixtureRequest) -> tuple[bool, bytes]:
    noexec: bool = request.param
    return noexec, seccomp_bpf.compile_profile(str(seccomp_path("strict", noexec=noexec)))


def test_unfiltered_answers_differ(unfiltered: dict[str, int]) -> None:
    """The control: without a filter none of the refused calls says EPERM
    (so EPERM below comes from the profile), clone3 is not ENOSYS."""
    for name in REFUSED_EPERM:
        assert unfiltered[name] != EPERM, name
    assert unfiltered["clone3_null"] not in (0, ENOSYS)
    assert unfiltered["memfd_create"] == 0
    for name in WORKING:
        assert unfiltered[name] == 0, name


def test_denied_calls_answer_the_profiles_errno(shipped: tuple[bool, bytes]) -> None:
    """Denied calls, CLONE_NEWUSER through clone, a persona that disables
    ASLR, AF_VSOCK, TIOCSTI (also with high bits set) and a call the profile
    does not name: EPERM; clone3: ENOSYS; fork, threads (glibc falls back from
    clone3), the persona query, AF_UNIX, other ioctls: work."""
    noexec, bpf = shipped
    answers = probe(bpf, *PROBE_NAMES)
    assert {n: answers[n] for n in REFUSED_EPERM} == {n: EPERM for n in REFUSED_EPERM}
    assert {n: answers[n] for n in WORKING} == {n: 0 for n in WORKING}
    assert answers["clone3_null"] == ENOSYS
    assert answers["memfd_create"] == (ENOSYS if noexec else 0)
    # runc's stub: a number above every syscall the profile names is ENOSYS.
    assert answers["above_profile"] == ENOSYS


def test_unshare_command_is_refused(shipped: tuple[bool, bytes]) -> None:
    _, bpf = shipped
    done = run_in_bwrap(["unshare", "-U", "true"], bpf)
    assert done.returncode != 0
    assert "Operation not permitted" in done.stderr
    assert run_in_bwrap(["unshare", "-U", "true"], None).returncode == 0


def test_x32_call_kills_the_thread(shipped: tuple[bool, bytes]) -> None:
    """x32 is not in the profile's architectures: even an allowed call
    (getpid) through the x32 ABI meets the bad-architecture action, SIGSYS.
    Unfiltered, this kernel (no CONFIG_X86_X32_ABI) answers ENOSYS."""
    _, bpf = shipped
    unfiltered = run_in_bwrap([sys.executable, "-c", PROBE, "x32_getpid"], None)
    assert unfiltered.returncode == 0, unfiltered.stderr
    assert json.loads(unfiltered.stdout)["x32_getpid"] in (0, ENOSYS)
    done = run_in_bwrap([sys.executable, "-c", PROBE, "x32_getpid"], bpf)
    assert done.stdout == ""
    assert done.returncode in (-signal.SIGSYS, 128 + signal.SIGSYS), done


INT80_PROBE = r"""
#include <stdio.h>
/* i386 system calls from a 64-bit process: int 0x80 takes the i386 table
   and seccomp sees AUDIT_ARCH_I386. Prints -errno or the result. */
static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}
int main(void) {
    printf("{\"getpid\": %ld, \"unshare_newuser\": %ld, \"keyctl_badop\": %ld, "
           "\"ptrace_nopid\": %ld, \"socketcall_badptr\": %ld, \"personality_no_aslr\": %ld}\n",
           int80(20, 0, 0, 0) > 0 ? 0 : -1, int80(310, 0x10000000, 0, 0), int80(288, 9999, 0, 0),
           int80(26, 0x4206, 999999, 0), int80(102, 1, 1, 0), int80(136, 0x0040000, 0, 0));
    return 0;
}
"""


@pytest.fixture(scope="module")
def int80_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or ""
    if not gcc:
        pytest.skip("gcc is not installed: cannot build the int 0x80 probe")
    folder: Path = tmp_path_factory.mktemp("int80")
    (folder / "int80.c").write_text(INT80_PROBE)
    built = subprocess.run([gcc, "-O1", "-static", "-o", str(folder / "int80"),
                            str(folder / "int80.c")], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"gcc cannot build a static probe: {built.stderr.strip()[-200:]}")
    return folder / "int80"


def run_int80(binary: Path, bpf: bytes | None) -> dict[str, int]:
    done = run_in_bwrap([str(binary)], bpf)
    if done.returncode == -signal.SIGSEGV or "ia32" in done.stderr:
        pytest.skip("this kernel has no i386 emulation (int 0x80)")
    assert done.returncode == 0, done
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_i386_calls_are_filtered_too(shipped: tuple[bool, bytes], int80_probe: Path) -> None:
    """The same denials through int 0x80 (i386, an architecture the profile
    lists); socketcall is refused whole with ENOSYS."""
    _, bpf = shipped
    unfiltered = run_int80(int80_probe, None)
    assert EPERM not in [-v for k, v in unfiltered.items() if k != "getpid"], unfiltered
    assert unfiltered["socketcall_badptr"] != -ENOSYS
    assert run_int80(int80_probe, bpf) == {
        "getpid": 0, "unshare_newuser": -EPERM, "keyctl_badop": -EPERM, "ptrace_nopid": -EPERM,
        "socketcall_badptr": -ENOSYS, "personality_no_aslr": -EPERM}


# --- semantics on small profiles --------------------------------------------

def write_profile(folder: Path, profile: dict[str, Any], name: str = "p.json") -> str:
    path = folder / name
    path.write_text(json.dumps(profile))
    return str(path)


def test_or_and_and_conditions_and_includes(tmp_path: Path) -> None:
    """Conditions on one argument are OR-ed, on different arguments AND-ed;
    rules for another architecture or needing a capability are left out."""
    errno_rule = {"action": "SCMP_ACT_ERRNO", "errnoRet": EXDEV}
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {**errno_rule, "names": ["personality"], "args": [
            {"index": 0, "value": 5, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 6, "op": "SCMP_CMP_EQ"}]},
        {**errno_rule, "names": ["getpriority"], "args": [
            {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 4242, "op": "SCMP_CMP_EQ"}]},
        {**errno_rule, "names": ["getpgid"], "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {**errno_rule, "names": ["getsid"], "excludes": {"arches": ["amd64"]}},
        {**errno_rule, "names": ["getppid"], "includes": {"arches": ["arm64"]}},
        {**errno_rule, "names": ["sched_yield"], "includes": {"arches": ["amd64"]}},
    ]}
    bpf = seccomp_bpf.compile_profile(write_profile(tmp_path, profile))
    script = ("import ctypes, json\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              "def call(nr, *a):\n    ctypes.set_errno(0)\n"
              "    return 0 if libc.syscall(nr, *[ctypes.c_ulong(x) for x in a]) >= 0 "
              "else ctypes.get_errno()\n"
              "print(json.dumps([call(135, 5), call(135, 6), call(135, 0xffffffff), "
              "call(140, 0, 4242), call(140, 0, 0), call(140, 1, 4242), "
              "call(121, 0), call(124, 0), call(110), call(24)]))\n")
    done = run_in_bwrap([sys.executable, "-c", script], bpf)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [EXDEV, EXDEV, 0, EXDEV, 0, 3, 0, 0, 0, EXDEV]


@pytest.mark.parametrize(("change", "message"), [
    ({"defaultAction": "SCMP_ACT_FOO"}, "defaultAction: unknown action 'SCMP_ACT_FOO'"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
     "syscalls[0].action: unknown action 'SCMP_ACT_NOTIFY'"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]},
     "syscalls[0].args[0]: unknown op 'SCMP_CMP_FOO'"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "syscalls[0].args[0].index: 6 is not an argument index (0-5)"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "probability": 1}]},
     "syscalls[0]: unknown field 'probability'"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "includes": {"minKernel": "5.4"}}]},
     "syscalls[0].includes: unknown field 'minKernel'"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "ENOSYS"}]},
     "syscalls[0].action: errno 'ENOSYS' does not match errnoRet None"),
    ({"flags": ["SECCOMP_FILTER_FLAG_LOG"]}, "flags ['SECCOMP_FILTER_FLAG_LOG']: not expressible"),
    ({"architectures": ["SCMP_ARCH_VAX"]}, "architectures: unknown architecture 'SCMP_ARCH_VAX'"),
    ({"listenerPath": "/run/agent.sock"}, "profile: unknown field 'listenerPath'"),
])
def test_bad_profiles_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = write_profile(tmp_path, {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [], **change})
    with pytest.raises(ValueError) as raised:
        seccomp_bpf.compile_profile(path)
    assert str(raised.value).startswith(f"seccomp profile {path}: {message}")


def test_unknown_syscall_is_skipped_and_listed(tmp_path: Path) -> None:
    path = write_profile(tmp_path, {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "vg_no_such_call", "write"], "action": "SCMP_ACT_ALLOW"}]})
    report = seccomp_bpf.compile_report(path)
    assert report.skipped == ("vg_no_such_call",)
    assert report.bpf and len(report.bpf) % 8 == 0


def test_shipped_profile_facts() -> None:
    """x86_64 + x86 from the archMap, x32 left out; names this libseccomp
    does not know are the only ones skipped."""
    report = seccomp_bpf.compile_report(str(seccomp_path("strict", noexec=False)))
    if os.uname().machine == "x86_64":
        assert report.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    import pyseccomp
    for name in report.skipped:
        assert pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) == -1


# --- the cache ----------------------------------------------------------------

def test_cached_bpf_compiles_once_and_follows_the_profile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    profile = tmp_path / "strict.json"
    profile.write_bytes(seccomp_path("strict", noexec=False).read_bytes())
    first = seccomp_bpf.cached_bpf(str(profile), cache)
    assert first.read_bytes() == seccomp_bpf.compile_profile(str(profile))
    assert first.parent == cache and seccomp_bpf.libseccomp_version() in first.name

    def no_compile(data: bytes, origin: str) -> None:
        raise AssertionError("compiled again")

    with monkeypatch.context() as patch:
        patch.setattr(seccomp_bpf, "_compile", no_compile)
        assert seccomp_bpf.cached_bpf(str(profile), cache) == first
    profile.write_bytes(seccomp_path("strict", noexec=True).read_bytes())
    second = seccomp_bpf.cached_bpf(str(profile), cache)
    assert second != first
    assert second.read_bytes() == seccomp_bpf.compile_profile(str(profile))
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, second.name])


def test_cached_bpf_refuses_a_shared_directory(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(ValueError, match="not a private directory"):
        seccomp_bpf.cached_bpf(str(seccomp_path("strict", noexec=False)), cache)
