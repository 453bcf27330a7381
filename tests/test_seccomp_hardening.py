"""Seccomp faults from the outside attack round (issue 12, items 5 and 6), checked from inside.

5. `deny-exec-in-tmp` promised that nothing written at run time executes, yet a
   memfd (memfd_create, then execveat(fd, "", AT_EMPTY_PATH) or execve of
   /proc/self/fd/N) ran a dropped binary. A sandbox with noexec tmpfs now gets
   the strict-noexec seccomp profile, which refuses memfd_create; every place
   the sandbox can write is swept for a way to run what was written there.
6. socket(AF_VSOCK) was allowed. Only AF_UNIX, AF_INET, AF_INET6 and
   AF_NETLINK/NETLINK_ROUTE sockets can be made now; every family and netlink
   protocol is tried from inside, allowed ones too (so a rule that is too
   tight fails as well), through the x86_64 and the i386 entry points.

Everything runs the real `vectraguard run` against real Podman and asks the
vgprobe probe (tests/probe/vgprobe.c) inside the sandbox what the kernel said.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import DEFAULT_IMAGE_REF, TEST_IMAGE, Caller

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "contrib" / "seccomp" / "generate_strict.py"

# Three ways a profile ends up with noexec tmpfs; each must bring the memfd rule.
FRAGMENT = "test-sc-fragment"  # include: [deny-exec-in-tmp]
NOEXEC_ROUTES = {
    "fragment": ["-p", FRAGMENT],
    "profile key": ["-p", "test-noexec"],  # conftest: filesystem.noexec_tmpfs set by hand
    "--set": ["-p", "test-untrusted", "--set", "filesystem.noexec_tmpfs=true"],
}
ROOTLESS = ["-p", "test-best-effort"]
ROOTLESS_NOEXEC = [*ROOTLESS, "--set", "filesystem.noexec_tmpfs=true"]

# The names vgprobe socket-families uses, in Linux's numbering (linux/socket.h, linux/netlink.h).
FAMILIES = (
    "AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK", "AF_NETROM", "AF_BRIDGE",
    "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet", "AF_NETBEUI", "AF_SECURITY", "AF_KEY",
    "AF_NETLINK", "AF_PACKET", "AF_ASH", "AF_ECONET", "AF_ATMSVC", "AF_RDS", "AF_SNA", "AF_IRDA",
    "AF_PPPOX", "AF_WANPIPE", "AF_LLC", "AF_IB", "AF_MPLS", "AF_CAN", "AF_TIPC", "AF_BLUETOOTH", "AF_IUCV",
    "AF_RXRPC", "AF_ISDN", "AF_PHONET", "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC", "AF_VSOCK",
    "AF_KCM", "AF_QIPCRTR", "AF_SMC", "AF_XDP", "AF_MCTP", "AF_46", "AF_47"
)
NETLINK = (
    "ROUTE", "UNUSED", "USERSOCK", "FIREWALL", "SOCK_DIAG", "NFLOG", "XFRM", "SELINUX", "ISCSI", "AUDIT",
    "FIB_LOOKUP", "CONNECTOR", "NETFILTER", "IP6_FW", "DNRTMSG", "KOBJECT_UEVENT", "GENERIC", "17",
    "SCSITRANSPORT", "ECRYPTFS", "RDMA", "CRYPTO", "SMC", "23", "24", "25", "26", "27", "28", "29", "30",
    "31"
)
ALLOWED_FAMILIES = {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def vgprobe(caller: Caller, workspace: Path, options: list[str], *args: str) -> Any:
    result = caller.run(["run", *options, "--", "vgprobe", *args], cwd=workspace)
    assert result.returncode == 0, (result.returncode, result.stderr.decode(errors="replace"))
    return json.loads(result.stdout.decode().splitlines()[-1])


def _add_fragment_profile(caller: Caller) -> Iterator[None]:
    path = caller.config_home / "vectraguard" / "profiles.d" / f"{FRAGMENT}.yaml"
    path.write_text(f"extends: untrusted\nimage: {TEST_IMAGE}\ninclude: [deny-exec-in-tmp]\n")
    if caller.user:
        shutil.chown(path, caller.user, caller.user)
    yield
    path.unlink()


@pytest.fixture(scope="module")
def fragment_profile(root: Caller) -> Iterator[None]:
    yield from _add_fragment_profile(root)


# -- the profiles are what the generator writes ---------------------------------------

@pytest.mark.parametrize("variant", ["strict", "strict-noexec"])
def test_the_shipped_seccomp_profiles_are_the_generators_output(variant: str) -> None:
    generated = subprocess.run([sys.executable, str(GENERATOR), variant], capture_output=True, check=True).stdout
    assert generated == (REPO / "profiles" / "seccomp" / f"{variant}.json").read_bytes()


# -- 5. nothing written at run time executes where tmp is noexec -----------------------

MEMFD_REFUSED = {"plain.create": "ENOSYS", "exec.create": "ENOSYS", "noexec_seal.create": "ENOSYS"}


@pytest.mark.parametrize("route", NOEXEC_ROUTES)
def test_item5_no_memfd_where_tmp_is_noexec(root: Caller, workspace: Path, fragment_profile: None,
                                            route: str) -> None:
    # ENOSYS for every flag, MFD_NOEXEC_SEAL too: a sealed memfd cannot be
    # execve'd but can be mapped executable, which is all ld.so needs.
    assert vgprobe(root, workspace, NOEXEC_ROUTES[route], "exec-memfd") == MEMFD_REFUSED


def test_item5_control_memfd_runs_what_it_holds_without_noexec(root: Caller, workspace: Path) -> None:
    """The probe's routes work where nothing forbids them (untrusted lets
    installers run what they unpack), so the refusals above are the profile's."""
    result = vgprobe(root, workspace, ["-p", "test-untrusted"], "exec-memfd")
    assert {k: v for k, v in result.items() if k.startswith("plain.")} == {
        "plain.create": "ok", "plain.execveat": "ok", "plain.proc_fd": "ok", "plain.mmap_exec": "ok"}
    assert result["noexec_seal.mmap_exec"] == "ok"  # why MFD_NOEXEC_SEAL is not let through


def writable_directories(caller: Caller, workspace: Path, options: list[str]) -> list[str]:
    """Every mount point the sandbox user can write to, as seen from inside."""
    script = 'for m in $(cut -d" " -f5 /proc/self/mountinfo); do [ -d "$m" ] && [ -w "$m" ] && echo "$m"; done'
    result = caller.run(["run", *options, "--", "sh", "-c", script], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return sorted(set(result.stdout.decode().split()))


def runs_of_dropped_files(caller: Caller, workspace: Path, options: list[str]) -> dict[str, dict[str, str]]:
    return {place: vgprobe(caller, workspace, options, "exec-dropped", place)
            for place in writable_directories(caller, workspace, options)}


def assert_nothing_dropped_runs(results: dict[str, dict[str, str]]) -> None:
    assert {"/tmp", "/home/sandbox", "/dev/shm"} <= set(results), results  # the sweep saw them
    ran = {f"{place} {route}": verdict for place, result in results.items()
           for route, verdict in result.items()
           if not route.endswith((".copy", ".create")) and verdict not in ("EACCES", "EPERM")}
    assert ran == {}, results
    assert results["/tmp"]["named.copy"] == results["/tmp"]["tmpfile.create"] == "ok", results


def test_item5_nothing_dropped_anywhere_writable_runs(root: Caller, workspace: Path) -> None:
    """By path, by descriptor (O_TMPFILE + execveat or /proc/self/fd/N) or as a
    mapping (what ld.so does): in /tmp, $HOME, /dev/shm and any other place."""
    assert_nothing_dropped_runs(runs_of_dropped_files(root, workspace, NOEXEC_ROUTES["profile key"]))


def test_item5_rootless_no_memfd_and_nothing_dropped_runs(rootless: Caller, rootless_workspace: Path) -> None:
    assert vgprobe(rootless, rootless_workspace, ROOTLESS_NOEXEC, "exec-memfd") == MEMFD_REFUSED
    assert_nothing_dropped_runs(runs_of_dropped_files(rootless, rootless_workspace, ROOTLESS_NOEXEC))


def test_item5_a_writable_workspace_is_outside_the_promise(root: Caller, workspace: Path) -> None:
    """The workspace holds the user's own files (build outputs are run there);
    the fragment's header and man 5 say that noexec does not cover it."""
    options = [*NOEXEC_ROUTES["profile key"], "--set", "filesystem.workspace.mode=overlay", "--yes"]
    assert vgprobe(root, workspace, options, "exec-dropped", "/workspace")["named.exec"] == "ok"


def test_item5_real_programs_fall_back_without_memfd(root: Caller, workspace: Path, default_image: str) -> None:
    # By tag: test_images rebuilds the default image, which drops the fixture's ID.
    script = (
        "import errno, os\n"
        "from multiprocessing import shared_memory\n"
        "try:\n    os.memfd_create('x')\nexcept OSError as e:\n    print('memfd', errno.errorcode[e.errno])\n"
        "m = shared_memory.SharedMemory(create=True, size=4096)\nm.close()\nm.unlink()\nprint('shm_open ok')\n"
    )
    result = root.run(["run", *NOEXEC_ROUTES["profile key"], "--image", DEFAULT_IMAGE_REF, "--",
                       "python3", "-c", script], cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().split("\n") == ["memfd ENOSYS", "shm_open ok", ""]


# -- 6. only the address families a sandbox uses -------------------------------------

def expected_socket_results() -> dict[str, str]:
    """What vgprobe socket-families must print: "ok" for what sandboxes use,
    EPERM (the profile's refusal) for everything else, ENOSYS for socketcall."""
    expected: dict[str, str] = {}
    for family in FAMILIES:
        expected[f"socket.{family}"] = "ok" if family in ALLOWED_FAMILIES else "EPERM"
        expected[f"socketpair.{family}"] = "ok" if family == "AF_UNIX" else "EPERM"
    for protocol in NETLINK:
        expected[f"netlink.NETLINK_{protocol}"] = "ok" if protocol == "ROUTE" else "EPERM"
    expected |= {"socket.AF_VSOCK+high_bits": "EPERM", "socket.AF_UNIX+high_bits": "ok",
                 "netlink.NETLINK_SOCK_DIAG+high_bits": "EPERM"}
    if platform.machine() == "x86_64":
        for family in ("AF_UNIX", "AF_INET", "AF_VSOCK", "AF_ALG"):
            expected[f"i386.socket.{family}"] = "ok" if family in ALLOWED_FAMILIES else "EPERM"
            expected[f"i386.socketpair.{family}"] = "ok" if family == "AF_UNIX" else "EPERM"
            expected[f"i386.socketcall.socket.{family}"] = "ENOSYS"
            expected[f"i386.socketcall.socketpair.{family}"] = "ENOSYS"
    return expected


@pytest.mark.parametrize("profile", ["test-untrusted", "test-noexec"])
def test_item6_only_the_socket_families_sandboxes_use(root: Caller, workspace: Path, profile: str) -> None:
    assert vgprobe(root, workspace, ["-p", profile], "socket-families") == expected_socket_results()


def test_item6_rootless_only_the_socket_families_sandboxes_use(rootless: Caller, rootless_workspace: Path) -> None:
    assert vgprobe(rootless, rootless_workspace, ROOTLESS, "socket-families") == expected_socket_results()


def test_item6_real_programs_still_resolve_and_connect(root: Caller, workspace: Path, default_image: str) -> None:
    """glibc's getaddrinfo (AI_ADDRCONFIG reads NETLINK_ROUTE), if_nameindex,
    socketpair, and curl and git talking HTTP to a server on the sandbox's loopback."""
    script = (
        "cd /tmp && python3 -m http.server 8000 >/dev/null 2>&1 & "
        "python3 -c \"import socket, time\n"
        "flags = socket.AI_ADDRCONFIG\n"
        "print(sorted({a[4][0] for a in socket.getaddrinfo('localhost', 80, type=socket.SOCK_STREAM, flags=flags)}))\n"
        "print(socket.if_nameindex())\n"
        "socket.socketpair()\n"
        "for _ in range(100):\n"
        "    try:\n        socket.create_connection(('127.0.0.1', 8000)).close(); break\n"
        "    except OSError: time.sleep(0.1)\n\"; "
        "curl -sS -o /dev/null -w 'curl %{http_code}\\n' http://localhost:8000/; "
        "git ls-remote http://localhost:8000/missing 2>&1 | tail -1"
    )
    result = root.run(["run", "-p", "test-untrusted", "--yes", "--image", DEFAULT_IMAGE_REF, "--", "sh", "-c", script],
                      cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().splitlines() == [
        "['127.0.0.1', '::1']", "[(1, 'lo')]", "curl 200",
        "fatal: repository 'http://localhost:8000/missing/' not found"]
