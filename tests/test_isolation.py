"""What a sandboxed process can see and do, checked from inside (SECURITY-TESTS.md).

Every test runs the real `vectraguard run` against real Podman and asks the
sandbox itself — through busybox and the vgprobe probe in the test image —
rather than looking at the flags that were passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.vg import Caller

UNTRUSTED = ["run", "-p", "test-untrusted"]
# The isolation level's option: none here (container); tests/test_isolation_gvisor.py runs these tests again
# with `--isolation gvisor` (it sets LEVEL for the whole module).
LEVEL: list[str] = []


def inside(caller: Caller, workspace: Path, script: str, *options: str, **kw: Any) -> str:
    # These scripts attack the sandbox on purpose (setuid, mount, unshare ...): the
    # risk gate would ask first, so they are approved here (--yes); the gate has
    # its own tests (test_approvals.py).
    result = caller.run([*UNTRUSTED, *LEVEL, "--yes", *options, "--", "sh", "-c", script], cwd=workspace, **kw)
    assert result.returncode == 0, (result.returncode, result.stderr.decode(errors="replace"))
    return result.stdout.decode()


def probe(caller: Caller, workspace: Path, *args: str, profile: str = "test-untrusted") -> Any:
    result = caller.run(["run", "-p", profile, *LEVEL, "--", "vgprobe", *args], cwd=workspace)
    assert result.returncode == 0, (result.returncode, result.stderr.decode(errors="replace"))
    return json.loads(result.stdout.decode().splitlines()[-1])


# -- posture and namespaces -------------------------------------------------------------

def test_iso01_no_capabilities_no_new_privs_seccomp_non_root(root: Caller, workspace: Path) -> None:
    status = probe(root, workspace, "status")
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == 0, key
    assert status["NoNewPrivs"] == 1
    assert status["Seccomp"] == 2
    assert status["uid"] == status["euid"] == 1000
    assert status["gid"] == status["egid"] == 1000
    assert status["hostname"] == "sandbox"


def host_namespaces() -> dict[str, str]:
    return {name: os.readlink(f"/proc/self/ns/{name}") for name in os.listdir("/proc/self/ns")}


def test_iso02_every_namespace_differs_from_the_host(root: Caller, workspace: Path) -> None:
    sandbox = probe(root, workspace, "status")["namespaces"]
    host = host_namespaces()
    # runc 1.1 (and so Podman 4.3) cannot create time namespaces; they only
    # offset CLOCK_MONOTONIC/BOOTTIME and hold nothing to escape through.
    compared = {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"}
    same = sorted(name for name in compared if sandbox[name] == host[name])
    assert same == [], f"namespaces shared with the host: {same}"


def test_iso02_only_sandbox_processes_are_visible(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, f"ps -o pid,comm; kill -0 {os.getpid()} 2>&1; echo rc=$?")
    pids = [line.split()[0] for line in out.splitlines()[1:] if line.split() and line.split()[0].isdigit()]
    assert len(pids) <= 4, out  # the init, sh, ps (and nothing from the host)
    assert "No such process" in out and "rc=1" in out


def test_iso06_minimal_dev_no_mknod_no_kmsg(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, "ls /dev; cat /dev/kmsg 2>&1 | head -c 200; echo kmsg=$?")
    devices = set(out.split("kmsg=")[0].split())
    allowed = {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
               "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
    assert devices - allowed - {"cat:", "can't", "open", "'/dev/kmsg':", "No", "such", "file", "or",
                                "directory", "Operation", "not", "permitted"} == set(), out
    assert "kmsg" not in devices
    assert probe(root, workspace, "syscalls")["mknod_chardev"] == "EPERM"


@pytest.mark.parametrize("path", ["/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches"])
def test_iso07_kernel_knobs_cannot_be_written(root: Caller, workspace: Path, path: str) -> None:
    assert probe(root, workspace, "write", path)["result"] in {"EROFS", "EACCES", "EPERM", "ENOENT"}


def test_iso07_kcore_and_keys_reveal_nothing(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, "head -c 16 /proc/kcore 2>/dev/null | wc -c; wc -c < /proc/keys")
    assert out.split() == ["0", "0"]


# -- privilege -------------------------------------------------------------------------

def test_priv01_setuid_binaries_do_not_grant_privilege(root: Caller, workspace: Path) -> None:
    # A setuid-root shell prepared by the host in the (read-only) workspace,
    # and one the sandbox makes itself in /tmp.
    (workspace / "suid").mkdir()
    (workspace / "suid").chmod(0o755)
    suid = workspace / "suid" / "busybox"  # busybox picks the applet by its own name
    shutil.copy("/bin/busybox", suid)
    os.chown(suid, 0, 0)
    suid.chmod(0o4755)
    assert suid.stat().st_mode & stat.S_ISUID
    out = inside(root, workspace, "suid/busybox id -u; mkdir /tmp/s; cp /bin/busybox /tmp/s/busybox; "
                                   "chmod 4755 /tmp/s/busybox; /tmp/s/busybox id -u; su -c 'id -u' 2>&1; "
                                   "echo su=$?; sudo -n id -u 2>&1; echo sudo=$?")
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1000"
    assert "su=0" not in out and "sudo=0" not in out
    assert "\n0\n" not in f"\n{out}"


def test_priv02_no_ptrace_no_process_vm_readv(root: Caller, workspace: Path) -> None:
    result = probe(root, workspace, "syscalls")
    assert result["ptrace_traceme"] == "EPERM"
    assert result["ptrace_attach_parent"] == "EPERM"
    assert result["process_vm_readv"] == "EPERM"


def test_priv03_no_user_namespaces_no_mounts(root: Caller, workspace: Path) -> None:
    result = probe(root, workspace, "syscalls")
    for op in ("unshare_newuser", "unshare_newns", "clone_newuser", "mount_tmpfs", "setns"):
        assert result[op] == "EPERM", op
    assert result["clone3"] == "ENOSYS"  # so libc falls back to the filtered clone
    out = inside(root, workspace, "unshare -Ur id 2>&1; echo rc=$?; mount -t tmpfs none /tmp 2>&1; echo rc=$?")
    assert out.count("rc=0") == 0, out


@pytest.mark.parametrize("op", ["keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
                                "io_uring_setup", "mount_tmpfs", "pivot_root", "kexec_load", "init_module",
                                "open_by_handle_at", "ioctl_tiocsti", "ioctl_tiocsti_high_bits",
                                "ioctl_tioclinux", "socket_raw", "socket_packet", "chroot"])
def test_priv04_dangerous_syscalls_are_blocked(root: Caller, workspace: Path, op: str,
                                               syscall_results: dict[str, str]) -> None:
    assert syscall_results[op] == "EPERM"


@pytest.fixture(scope="module")
def syscall_results(root: Caller) -> Iterator[dict[str, str]]:
    # A directory others can reach: rootful gvisor and lite open mount sources
    # as an id that owns nothing (pytest's own tmp dirs sit below a 0700 one).
    workspace = Path(tempfile.mkdtemp(prefix="vg-syscalls-"))
    workspace.chmod(0o755)
    try:
        yield probe(root, workspace, "syscalls")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def test_ordinary_syscalls_still_work(root: Caller, workspace: Path) -> None:
    result = probe(root, workspace, "allowed")
    assert {k: v for k, v in result.items() if v != "ok"} == {}


# -- filesystem ------------------------------------------------------------------------

def test_fs01_writes_outside_the_mounts_fail_and_the_host_is_unchanged(root: Caller, workspace: Path) -> None:
    marker = workspace / "escaped"
    out = inside(root, workspace, f"vgprobe write /etc/x; vgprobe write ../../escaped; "
                                   f"vgprobe write /usr/bin/x; vgprobe write {marker}; vgprobe write /workspace/x")
    results = [json.loads(line)["result"] for line in out.splitlines()]
    assert results[0] == "EROFS" and results[2] == "EROFS" and results[4] == "EROFS"
    assert results[1] in {"EROFS", "EACCES"}
    # The host's absolute path does not exist inside (or is the sandbox's own tmpfs).
    assert results[3] in {"ENOENT", "EROFS", "ok"}
    assert not marker.exists()
    assert not Path("/etc/x").exists() and not Path("/escaped").exists()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory others can reach (see syscall_results)."""
    path = Path(tempfile.mkdtemp(prefix="vg-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_fs09_read_only_mounts_cannot_be_written_or_remounted(root: Caller, workspace: Path, shared_tmp: Path) -> None:
    # World-writable, so that the read-only mount is the only thing in the way.
    data = Path(shared_tmp / "data")
    data.mkdir()
    data.chmod(0o777)
    (data / "f").write_text("x")
    (data / "f").chmod(0o666)
    out = inside(root, workspace, "vgprobe write /data/f; mount -o remount,rw /data 2>&1; echo rc=$?; cat /data/f",
                 "--mount", f"{data}:/data:ro")
    lines = out.splitlines()
    assert json.loads(lines[0])["result"] == "EROFS"
    assert "rc=0" not in out
    assert lines[-1] == "x"
    assert (data / "f").read_text() == "x"


def test_fs09_binaries_dropped_in_tmp_run_only_where_the_profile_allows(root: Caller, workspace: Path) -> None:
    assert probe(root, workspace, "exec-tmp", profile="test-noexec") == {"copy": "ok", "exec": "EACCES"}
    assert probe(root, workspace, "exec-tmp") == {"copy": "ok", "exec": "ok"}  # untrusted: installers may run


def test_tmp_and_home_are_size_capped_nosuid_nodev_tmpfs(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, "grep -E ' /(tmp|home/sandbox) ' /proc/self/mountinfo; "
                                   "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; echo rc=$?")
    for target in ("/tmp", "/home/sandbox"):
        line = next(line for line in out.splitlines() if f" {target} " in line)
        assert "nosuid" in line and "nodev" in line and " tmpfs " in line, line
        assert "size=65536k" in line, line  # untrusted: 64Mi
    assert "No space left on device" in out and "rc=1" in out


SETID_PROBE = """
import errno, os, stat
def attempt(name, call):
    try:
        call()
        print(name, "ok")
    except OSError as exc:
        print(name, errno.errorcode[exc.errno])
open("/tmp/plain", "w").close()
fd = os.open("/tmp/held", os.O_CREAT | os.O_WRONLY, 0o644)
attempt("chmod-755", lambda: os.chmod("/tmp/plain", 0o755))
attempt("chmod-4755", lambda: os.chmod("/tmp/plain", 0o4755))
attempt("chmod-2755", lambda: os.chmod("/tmp/plain", 0o2755))
attempt("fchmod-6755", lambda: os.fchmod(fd, 0o6755))
attempt("fchmodat-4755", lambda: os.chmod("plain", 0o4755, dir_fd=os.open("/tmp", os.O_RDONLY)))
attempt("create-4755", lambda: os.close(os.open("/tmp/c1", os.O_CREAT | os.O_WRONLY, 0o4755)))
attempt("create-2755-at", lambda: os.close(os.open("c2", os.O_CREAT | os.O_WRONLY, 0o2755, dir_fd=os.open("/tmp", os.O_RDONLY))))
attempt("create-644", lambda: os.close(os.open("/tmp/c3", os.O_CREAT | os.O_WRONLY, 0o644)))
attempt("mknod-4755", lambda: os.mknod("/tmp/n1", stat.S_IFREG | 0o4755))
attempt("tmpfile-4755", lambda: os.close(os.open("/tmp", os.O_TMPFILE | os.O_WRONLY, 0o4755)))
print("setid-files", [n for n in os.listdir("/tmp") if os.stat("/tmp/" + n).st_mode & 0o6000])
"""


def test_priv05_no_set_uid_or_set_gid_file_can_be_made(root: Caller, workspace: Path, default_image: str) -> None:
    """A mount's nosuid covers only what runs inside it: a set-id file made in a
    read-write workspace would be set-id on the host (found by a blind attack on
    isolation lite). Every call that sets a mode refuses the bits; plain modes work."""
    result = root.run(["run", "-p", "test-python", *LEVEL, "--yes", "--", "python3", "-c", SETID_PROBE],
                      cwd=workspace)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    answers = dict(line.split(" ", 1) for line in result.stdout.decode().splitlines())
    assert answers.pop("setid-files") == "[]"
    assert answers.pop("chmod-755") == "ok" and answers.pop("create-644") == "ok"
    assert set(answers.values()) == {"EPERM"}, answers


def test_home_is_owned_by_the_sandbox_user_and_writable(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, "cd && touch .profile-test && stat -c %u . && echo HOME=$HOME")
    assert out.splitlines() == ["1000", "HOME=/home/sandbox"]


def test_root_filesystem_is_read_only(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, "awk '$5 == \"/\" {print $6}' /proc/self/mountinfo")
    assert out.split(",")[0].strip() == "ro"


# -- network ---------------------------------------------------------------------------

@pytest.fixture
def host_listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on the host's loopback; records whoever connects."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            seen.append(f"{peer[0]}:{peer[1]}")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def test_net01_only_loopback_nothing_reachable(root: Caller, workspace: Path,
                                               host_listener: tuple[int, list[str]]) -> None:
    port, seen = host_listener
    out = inside(root, workspace,
                 f"ls /sys/class/net; ip -o link | wc -l; "
                 f"nc -w 2 127.0.0.1 {port} </dev/null 2>&1; echo tcp=$?; "
                 f"nslookup vectraguard.test >/dev/null 2>&1; echo dns=$?; "
                 f"cat /etc/resolv.conf 2>/dev/null | grep -c nameserver; ip route 2>&1 | wc -l")
    lines = out.splitlines()
    assert lines[0] == "lo" and lines[1] == "1"
    assert "tcp=0" not in out  # the sandbox's 127.0.0.1 is its own, not the host's
    assert "dns=0" not in out
    assert lines[-1] == "0"  # no routes at all
    assert seen == []


# -- secrets ---------------------------------------------------------------------------

def test_sec01_only_the_fixed_environment_reaches_the_sandbox(root: Caller, workspace: Path) -> None:
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-s3cr3t", "GITHUB_TOKEN": "ghp_s3cr3t",
               "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock", "HTTPS_PROXY": "http://proxy.invalid:3128",
               "TERM": "xterm-256color"}
    result = root.run([*UNTRUSTED, *LEVEL, "--", "env"], cwd=workspace, extra_env=secrets)
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    # container= and HOSTNAME are set by Podman itself and carry nothing of the host.
    assert set(env) == {"PATH", "HOME", "TERM", "LANG", "container", "HOSTNAME"}
    assert env["TERM"] == "xterm-256color" and env["HOME"] == "/home/sandbox"
    for value in secrets.values():
        if value != "xterm-256color":
            assert value not in result.stdout.decode()


def test_sec01_allowed_variables_pass_by_name(root: Caller, workspace: Path) -> None:
    result = root.run([*UNTRUSTED, *LEVEL, "--env", "GITHUB_TOKEN", "--env", "MODE=test", "--", "env"],
                      cwd=workspace, extra_env={"GITHUB_TOKEN": "ghp_passed", "AWS_SECRET_ACCESS_KEY": "no"})
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert env["GITHUB_TOKEN"] == "ghp_passed" and env["MODE"] == "test"
    assert "AWS_SECRET_ACCESS_KEY" not in env


# -- resource exhaustion ---------------------------------------------------------------

def test_dos01_fork_bomb_hits_the_pids_limit(root: Caller, workspace: Path) -> None:
    result = probe(root, workspace, "fork-bomb", "10", profile="test-tight")
    assert result["errno"] == "EAGAIN"
    assert result["forked"] < 64  # test-tight: pids 64


def test_dos02_memory_bomb_is_killed_and_reported_as_oom(root: Caller, workspace: Path) -> None:
    result = root.run(["run", "-p", "test-tight", *LEVEL, "--", "vgprobe", "mem-bomb", "512"], cwd=workspace)
    assert result.returncode == 137
    assert b"killed: out of memory (limit 64Mi)" in result.stderr
    assert b"allocated_mib" not in result.stdout


def test_dos02_a_plain_sigkill_is_not_reported_as_oom(root: Caller, workspace: Path) -> None:
    result = root.run(["run", "-p", "test-tight", *LEVEL, "--", "sh", "-c", "kill -KILL $$"], cwd=workspace)
    assert result.returncode == 137
    assert b"out of memory" not in result.stderr


def test_dos05_timeout_kills_a_process_that_traps_term(root: Caller, workspace: Path) -> None:
    result = root.run(["run", "-p", "test-tight", *LEVEL, "--", "sh", "-c", "trap '' TERM INT; while :; do sleep 1; done"],
                      cwd=workspace, timeout=120)
    assert result.returncode == 124
    assert b"timed out after 5s" in result.stderr


def test_dos06_orphaned_zombies_are_reaped_by_the_init(root: Caller, workspace: Path) -> None:
    out = inside(root, workspace, "vgprobe zombies 1000; sleep 1; vgprobe count-zombies; vgprobe fork-bomb 1 20",
                 "--pids", "2048")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["spawned"] == 1000
    assert lines[1]["zombies"] == 0
    assert lines[2]["forked"] == 20  # the pids are free again


def test_rlimits_are_set_within_the_callers_hard_limits(root: Caller, workspace: Path) -> None:
    status = probe(root, workspace, "status")
    assert status["rlimits"]["nofile"] == {"soft": 1024, "hard": 1024}
    assert status["rlimits"]["nproc"]["hard"] <= 128


def test_iso05_the_runtime_binaries_cannot_be_overwritten(root: Caller, workspace: Path) -> None:
    """ISO-05 (CVE-2019-5736): /proc/self/exe is not writable; host runtime binaries are unchanged."""
    binaries = [Path(p) for p in ("/usr/bin/runc", "/usr/bin/conmon", "/usr/bin/tini-static") if Path(p).exists()]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in binaries}
    result = root.run(["run", "-p", "test-untrusted", *LEVEL, "--", "sh", "-c",
                       "vgprobe write /proc/self/exe; vgprobe write /run/podman-init; vgprobe write /proc/1/exe"],
                      cwd=workspace)
    results = [json.loads(line)["result"] for line in result.stdout.decode().splitlines()]
    assert all(r != "ok" for r in results), results
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in binaries} == before


def test_net02_no_host_names_leak_into_the_sandbox(root: Caller, workspace: Path) -> None:
    """The sandbox's /etc/hosts is Vectra Guard's: not the host's, no host.containers.internal."""
    out = inside(root, workspace, "cat /etc/hosts; ls /etc/resolv.conf 2>&1; true")
    assert out.splitlines()[:3] == ["127.0.0.1\tlocalhost", "::1\tlocalhost", "127.0.1.1\tsandbox"]
    assert "host.containers.internal" not in out
    for line in Path("/etc/hosts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] not in ("localhost", "sandbox"):
            assert parts[1] not in out, f"host entry {parts[1]} leaked"
