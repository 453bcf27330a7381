"""The isolation suite (tests/test_isolation.py) again, every sandbox run with
`--isolation gvisor` (vectraguard/isolation/gvisor.py), checked from inside;
and what proves from inside which level a run got.

Each test of test_isolation.py is imported here and runs with that module's
LEVEL set to `--isolation gvisor` for this module. Where gVisor reports
differently, the test is replaced below by one that proves the same property
the way gVisor shows it (named in GVISOR_SPECIFIC). Skipped when this host
cannot run gVisor (`vectraguard doctor` says why).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_isolation as iso
from tests.support.vg import Caller
from tests.test_isolation import *

GVISOR = ["--isolation", "gvisor"]


def _gvisor_missing() -> str:
    from vectraguard.isolation import gvisor

    return gvisor.why_not()


pytestmark = pytest.mark.skipif(bool(_gvisor_missing()), reason=f"no gVisor here: {_gvisor_missing()}")


@pytest.fixture(scope="module", autouse=True)
def _at_gvisor() -> Iterator[None]:
    """Module-wide, before the module's other fixtures (the syscall results are gathered once)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(iso, "LEVEL", GVISOR)
        yield


def test_the_run_got_gvisor_and_a_container_run_did_not(root: Caller, workspace: Path) -> None:
    """gVisor's kernel says so itself: its release is 4.4.0 and its log is gVisor's."""
    out = iso.inside(root, workspace, "uname -r; cat /proc/version")
    assert out.splitlines()[0] == "4.4.0", out
    plain = root.run([*iso.UNTRUSTED, "--", "uname", "-r"], cwd=workspace)
    assert plain.returncode == 0 and plain.stdout.decode().strip() != "4.4.0"


def test_the_record_says_which_level_ran(root: Caller, workspace: Path, data_dir: Path) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    assert root.run([*iso.UNTRUSTED, *GVISOR, "--", "true"], cwd=workspace, extra_env=private).returncode == 0
    assert root.last_session(workspace, private)["events"][0]["isolation"] == "gvisor"
    assert root.run([*iso.UNTRUSTED, "--", "true"], cwd=workspace, extra_env=private).returncode == 0
    assert root.last_session(workspace, private)["events"][0]["isolation"] == "container"


# -- where gVisor shows the same property another way (each replaces the test of that name) ----------

def test_iso01_no_capabilities_no_new_privs_seccomp_non_root(root: Caller, workspace: Path) -> None:
    """gVisor has no NoNewPrivs line in /proc/self/status (runsc: "PR_SET_NO_NEW_PRIVS is
    assumed to always be set"): that a setuid program gains nothing is test_priv01's."""
    status = iso.probe(root, workspace, "status")
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd"):  # gVisor has no CapAmb line either
        assert int(status[key], 16) == 0, key
    assert status.get("CapAmb") in (None, "0000000000000000")
    assert status.get("NoNewPrivs") in (None, 1)
    assert status["Seccomp"] == 2  # the profile's filter, applied by gVisor (--oci-seccomp)
    assert status["uid"] == status["euid"] == 1000 and status["gid"] == status["egid"] == 1000
    assert status["hostname"] == "sandbox"


def test_iso02_every_namespace_differs_from_the_host(root: Caller, workspace: Path) -> None:
    """gVisor lists only some namespaces in /proc/self/ns, all its own."""
    sandbox = iso.probe(root, workspace, "status")["namespaces"]
    host = iso.host_namespaces()
    assert sandbox, "gVisor lists no namespace at all"
    assert sorted(name for name in sandbox if sandbox[name] == host.get(name)) == []


def test_iso06_minimal_dev_no_mknod_no_kmsg(root: Caller, workspace: Path) -> None:
    """gVisor adds /dev/fuse and /dev/net/tun: its own devices, served by its kernel, not the host's."""
    out = iso.inside(root, workspace, "ls /dev; cat /dev/kmsg 2>&1 | head -c 200; echo kmsg=$?")
    devices = set(out.split("kmsg=")[0].split())
    allowed = {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
               "stdin", "stdout", "tty", "urandom", "zero", "fuse", "net"}
    words = {"cat:", "can't", "open", "'/dev/kmsg':", "No", "such", "file", "or", "directory", "Operation", "not",
             "permitted"}
    assert devices - allowed - words == set(), out
    assert "kmsg" not in devices
    assert iso.probe(root, workspace, "syscalls")["mknod_chardev"] == "EPERM"


def test_iso07_kcore_and_keys_reveal_nothing(root: Caller, workspace: Path) -> None:
    """gVisor has neither /proc/kcore nor /proc/keys."""
    out = iso.inside(root, workspace, "head -c 16 /proc/kcore 2>/dev/null | wc -c; cat /proc/keys 2>/dev/null | wc -c")
    assert out.split() == ["0", "0"]


TERMINAL_IOCTLS = ("ioctl_tiocsti", "ioctl_tiocsti_high_bits", "ioctl_tioclinux")


@pytest.mark.parametrize("op", ["keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
                                "io_uring_setup", "mount_tmpfs", "pivot_root", "kexec_load", "init_module",
                                "open_by_handle_at", *TERMINAL_IOCTLS, "socket_raw", "socket_packet", "chroot"])
def test_priv04_dangerous_syscalls_are_blocked(root: Caller, workspace: Path, op: str,
                                               syscall_results: dict[str, str]) -> None:
    """The terminal ioctls: refused by the profile, or there is no terminal to inject
    into (gVisor's devpts gives the probe no pseudo-terminal: setup-pty; the
    sandbox's streams are pipes)."""
    got = syscall_results[op]
    assert got == "EPERM" or (op in TERMINAL_IOCTLS and got.startswith("setup-pty:")), got


GVISOR_ORDINARY = {  # what gVisor (runsc 2022-12) itself does not provide, whatever the profile says
    "personality_linux": "EINVAL", "personality_query": "EINVAL",
    "ioctl_tiocgwinsz": "setup-pty:EINVAL", "ioctl_tiocgwinsz_high_bits": "setup-pty:EINVAL",
}


def test_ordinary_syscalls_still_work(root: Caller, workspace: Path) -> None:
    """posix_spawn and threads too (glibc's clone3 gets gVisor's own ENOSYS: gvisor.NATIVE_ENOSYS)."""
    result = iso.probe(root, workspace, "allowed")
    assert {k: v for k, v in result.items() if v != "ok" and GVISOR_ORDINARY.get(k) != v} == {}
    assert result.get("posix_spawn") == "ok"


def test_fs01_writes_outside_the_mounts_fail_and_the_host_is_unchanged(root: Caller, workspace: Path) -> None:
    """gVisor says EACCES where Linux says EROFS for the read-only root."""
    marker = workspace / "escaped"
    out = iso.inside(root, workspace, f"vgprobe write /etc/x; vgprobe write ../../escaped; "
                                       f"vgprobe write /usr/bin/x; vgprobe write {marker}; vgprobe write /workspace/x")
    results = [json.loads(line)["result"] for line in out.splitlines()]
    assert {results[0], results[1], results[2], results[4]} <= {"EROFS", "EACCES"}, results
    assert results[3] in {"ENOENT", "EROFS", "EACCES", "ok"}
    assert not marker.exists()
    assert not Path("/etc/x").exists() and not Path("/escaped").exists()


def test_tmp_and_home_are_size_capped_nosuid_nodev_tmpfs(root: Caller, workspace: Path) -> None:
    """gVisor's mount table shows no nosuid/nodev: the size cap is proven by filling
    /tmp, nosuid by test_priv01 (a setuid copy in /tmp gains nothing), nodev by
    mknod being refused (test_iso06)."""
    out = iso.inside(root, workspace, "grep -E ' /(tmp|home/sandbox) ' /proc/self/mountinfo; "
                                       "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; echo rc=$?")
    for target in ("/tmp", "/home/sandbox"):
        line = next(line for line in out.splitlines() if f" {target} " in line)
        assert " tmpfs " in line and f"size={64 * 1024 * 1024}" in line, line  # untrusted: 64Mi, in bytes
    assert "No space left on device" in out and "rc=1" in out


def test_net01_only_loopback_nothing_reachable(root: Caller, workspace: Path,
                                               host_listener: tuple[int, list[str]]) -> None:
    """gVisor's own network stack (runsc --network=none): loopback only, its routes on lo."""
    port, seen = host_listener
    out = iso.inside(root, workspace,
                     f"ls /sys/class/net; nc -w 2 127.0.0.1 {port} </dev/null 2>&1; echo tcp=$?; "
                     f"nslookup vectraguard.test >/dev/null 2>&1; echo dns=$?; ip route 2>&1")
    lines = out.splitlines()
    assert lines[0] == "lo", out
    assert "tcp=0" not in out and "dns=0" not in out
    routes = lines[lines.index(next(l for l in lines if l.startswith("dns="))) + 1:]
    assert all(" dev lo" in route for route in routes), routes
    assert seen == []


def test_the_gvisor_sandbox_runs_as_nobody_on_the_host(root: Caller, workspace: Path) -> None:
    """What an exploit inside reaches first, runsc's Sentry, runs as nobody on the host (gvisor.py)."""
    import subprocess

    argv, env = root.argv(root.vg([*iso.UNTRUSTED, *GVISOR, "--", "sh", "-c", "echo ready; sleep 20"]), None)
    with subprocess.Popen(argv, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        assert run.stdout is not None and run.stdout.readline() == b"ready\n"
        sentries = [pid for pid in os.listdir("/proc") if pid.isdigit() and _argv0(pid) == b"runsc-sandbox"]
        owners = {os.stat(f"/proc/{pid}").st_uid for pid in sentries}
        run.terminate()  # vectraguard stops and removes its sandbox
        run.communicate(timeout=60)
    assert sentries and owners == {65534}, owners


def test_the_sandbox_uid_is_not_the_hosts_uid_for_the_files_it_is_given(root: Caller, workspace: Path) -> None:
    """Found by a blind attack: without Podman's user namespace, the sandbox's
    uid 1000 was the host's uid 1000 for the files under its mounts. Now a
    gVisor sandbox gets a range of unprivileged ids as at container: a
    host file of uid 1000 that its mode keeps from others stays unreadable."""
    secret = workspace / "uid1000.txt"
    secret.write_text("host uid 1000 only\n")
    os.chown(secret, 1000, 1000)
    secret.chmod(0o600)
    out = iso.inside(root, workspace, "cat /workspace/uid1000.txt 2>&1; echo rc=$?; cat /workspace/hello.txt")
    assert "host uid 1000 only" not in out and "rc=1" in out and "hello from the workspace" in out, out


def test_a_workspace_others_cannot_reach_is_refused_before_anything_starts(root: Caller) -> None:
    """runsc's file proxy opens the mount sources as an id that owns nothing on the host."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="vg-gvisor-private-"))  # 0700
    inner = top / "project"
    inner.mkdir()
    inner.chmod(0o755)
    try:
        result = root.run([*iso.UNTRUSTED, *GVISOR, "--", "true"], cwd=inner)
        assert result.returncode == 125 and "not searchable by others" in result.stderr.decode(), result.stderr
        assert root.run([*iso.UNTRUSTED, "--", "true"], cwd=inner).returncode == 0  # runc opens it as root
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_rootless_gvisor_with_best_effort_limits(rootless: Caller, rootless_workspace: Path) -> None:
    """Rootless, runsc cannot use cgroups: refused unless the profile accepts
    best-effort limits; then the level holds from inside (its own kernel,
    the profile's seccomp, no capabilities, the sandbox user)."""
    import json

    refused = rootless.run([*iso.UNTRUSTED, *GVISOR, "--", "true"], cwd=rootless_workspace)
    assert refused.returncode == 125 and "limits.enforcement=best-effort" in refused.stderr.decode(), \
        refused.stderr
    result = rootless.run(["run", "-p", "test-best-effort", *GVISOR, "--", "vgprobe", "status"],
                          cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout.decode().splitlines()[-1])
    assert all(int(status[key], 16) == 0 for key in ("CapInh", "CapPrm", "CapEff", "CapBnd"))
    assert status["Seccomp"] == 2 and status["uid"] == 1000
    kernel = rootless.run(["run", "-p", "test-best-effort", *GVISOR, "--", "uname", "-r"], cwd=rootless_workspace)
    assert kernel.returncode == 0 and kernel.stdout.decode().strip() == "4.4.0", kernel.stderr


def _argv0(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().split(b"\0", 1)[0]
    except OSError:
        return b""
