"""The isolation suite (tests/test_isolation.py) again, every sandbox run with
`--isolation lite` (vectraguard/lite/: bubblewrap, Vectra Guard's init,
Landlock, seccomp, a cgroup of its own; no container engine at run time),
checked from inside; and what proves from inside which level a run got.

Each test of test_isolation.py is imported here and runs with that module's
LEVEL set to `--isolation lite`. Where lite shows a property differently,
the test is replaced below by one that proves the same property the way
lite shows it. Skipped when this host cannot run lite (`vectraguard doctor`
says why).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_isolation as iso
from tests.support.vg import TEST_IMAGE, Caller
from tests.test_isolation import *

LITE = ["--isolation", "lite"]
DEFAULT_IMAGE = "localhost/vectraguard/default:bookworm"


def _lite_missing() -> str:
    from vectraguard.lite import support

    return support.why_not()


pytestmark = pytest.mark.skipif(bool(_lite_missing()), reason=f"no isolation lite here: {_lite_missing()}")


@pytest.fixture(scope="module", autouse=True)
def _at_lite(root: Caller, default_image: str) -> Iterator[None]:
    """Module-wide, before the module's other fixtures: the test image unpacked for lite, LEVEL set."""
    for image in (TEST_IMAGE, DEFAULT_IMAGE):  # test-python runs the default image
        unpacked = root.run(["image", "unpack", image], cwd=Path("/"), timeout=600)
        assert unpacked.returncode == 0, unpacked.stderr.decode(errors="replace")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(iso, "LEVEL", LITE)
        yield


def test_the_run_got_lite_and_a_container_run_did_not(root: Caller, workspace: Path) -> None:
    """At lite, the sandbox's pid 1 is bubblewrap (no container init), and
    Landlock's signal scope stops a signal to it from the command (under
    runc the init is the command's own user and `kill -0 1` works)."""
    out = iso.inside(root, workspace, "cat /proc/1/comm; kill -0 1 2>&1; echo kill=$?")
    assert out.splitlines()[0] == "bwrap" and "kill=0" not in out, out
    plain = iso.inside(root, workspace, "cat /proc/1/comm; kill -0 1; echo kill=$?", *[])
    assert plain.splitlines()[0] == "bwrap"  # LEVEL is lite for the whole module
    container = root.run([*iso.UNTRUSTED, "--yes", "--", "sh", "-c", "cat /proc/1/comm; kill -0 1; echo kill=$?"],
                         cwd=workspace)
    text = container.stdout.decode()
    assert container.returncode == 0 and text.splitlines()[0] != "bwrap" and "kill=0" in text, text


def test_the_record_says_which_level_ran(root: Caller, workspace: Path, data_dir: Path) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    assert root.run([*iso.UNTRUSTED, *LITE, "--", "true"], cwd=workspace, extra_env=private).returncode == 0
    session = root.last_session(workspace, private)
    assert session["events"][0]["isolation"] == "lite"
    assert session["events"][-1]["status"] == "ok"


def test_no_container_is_made(root: Caller, workspace: Path) -> None:
    before = set(root.sandboxes())
    result = root.run([*iso.UNTRUSTED, *LITE, "--", "sh", "-c", "sleep 1; echo done"], cwd=workspace)
    assert result.returncode == 0 and result.stdout == b"done\n"
    assert set(root.sandboxes()) == before


# -- where lite shows the same property another way (each replaces the test of that name) ----------

def test_net01_only_loopback_nothing_reachable(root: Caller, workspace: Path,
                                               host_listener: tuple[int, list[str]]) -> None:
    """There is no /sys at lite (the kernel allows a new sysfs in a user
    namespace only where one is visible already): the links are asked of
    the kernel (`ip -o link`, netlink)."""
    port, seen = host_listener
    out = iso.inside(root, workspace, f"ls /sys 2>&1 | wc -l; ip -o link; "
                     f"nc -w 2 127.0.0.1 {port} </dev/null 2>&1; echo tcp=$?; "
                     f"nslookup vectraguard.test >/dev/null 2>&1; echo dns=$?; ip route 2>&1 | wc -l")
    lines = out.splitlines()
    links = [line for line in lines if ": " in line and "link/" in line]
    assert len(links) == 1 and links[0].split(": ")[1] == "lo", out
    assert "tcp=0" not in out and "dns=0" not in out and lines[-1] == "0"
    assert seen == []


def test_sec01_only_the_fixed_environment_reaches_the_sandbox(root: Caller, workspace: Path) -> None:
    """As test_isolation's; at lite there is no engine to add `container=`, and bubblewrap adds PWD."""
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-s3cr3t", "GITHUB_TOKEN": "ghp_s3cr3t",
               "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock", "HTTPS_PROXY": "http://proxy.invalid:3128",
               "TERM": "xterm-256color"}
    result = root.run([*iso.UNTRUSTED, *iso.LEVEL, "--", "env"], cwd=workspace, extra_env=secrets)
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert set(env) == {"PATH", "HOME", "TERM", "LANG", "HOSTNAME", "PWD"}
    assert env["TERM"] == "xterm-256color" and env["HOME"] == "/home/sandbox" and env["PWD"] == "/workspace"
    for value in secrets.values():
        if value != "xterm-256color":
            assert value not in result.stdout.decode()


# -- what only lite has ------------------------------------------------------------------

def test_the_sandbox_runs_as_an_unprivileged_host_user(root: Caller, workspace: Path) -> None:
    """Rootful, the sandbox's uid 1000 is the system user vectraguard-sandbox on the host, never root."""
    import pwd

    expected = pwd.getpwnam("vectraguard-sandbox").pw_uid
    out = iso.inside(root, workspace, "cat /proc/self/uid_map")
    inside_id, outside_id, count = out.split()
    assert (inside_id, int(outside_id), count) == ("1000", expected, "1") and expected != 0


def test_a_host_file_of_the_callers_uid_is_not_readable_through_a_mount(root: Caller, workspace: Path) -> None:
    """The sandbox is "other" for the host's files, as under runc's user namespace."""
    secret = workspace / "secret.txt"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    out = iso.inside(root, workspace, "cat /workspace/secret.txt 2>&1; echo rc=$?")
    assert "root only" not in out and "rc=1" in out, out


def test_a_missing_command_is_not_found(root: Caller, workspace: Path) -> None:
    result = root.run([*iso.UNTRUSTED, *LITE, "--", "no-such-program"], cwd=workspace)
    assert result.returncode == 127, result.stderr
    notexec = root.run([*iso.UNTRUSTED, *LITE, "--", "/etc/hosts"], cwd=workspace)
    assert notexec.returncode == 126, notexec.stderr


def test_stdin_reaches_the_command_and_ends(root: Caller, workspace: Path) -> None:
    result = root.run([*iso.UNTRUSTED, *LITE, "--", "sh", "-c", "wc -c; echo end"], cwd=workspace,
                      input=b"x" * 300000)
    assert result.returncode == 0 and result.stdout.split() == [b"300000", b"end"], result.stderr


def test_refused_settings_say_why(root: Caller, workspace: Path) -> None:
    for options, words in ((["--workspace", "overlay"], "overlay"), (["--network", "full", "--yes"], "network full")):
        result = root.run([*iso.UNTRUSTED, *LITE, *options, "--", "true"], cwd=workspace)
        assert result.returncode == 125 and words in result.stderr.decode(), result.stderr


def test_an_image_that_is_not_unpacked_is_refused(root: Caller, workspace: Path) -> None:
    result = root.run([*iso.UNTRUSTED, *LITE, "--image", "localhost/vectraguard/never-built:1", "--", "true"],
                      cwd=workspace)
    assert result.returncode == 125 and "image unpack" in result.stderr.decode(), result.stderr


def test_rootless_without_best_effort_limits_is_refused(rootless: Caller, rootless_workspace: Path) -> None:
    result = rootless.run([*iso.UNTRUSTED, *LITE, "--", "true"], cwd=rootless_workspace)
    assert result.returncode == 125 and "best-effort" in result.stderr.decode(), result.stderr


def test_rootless_posture_is_the_same(rootless: Caller, rootless_workspace: Path) -> None:
    """Rootless (no cgroup: best-effort limits), the same lock-down from inside."""
    import json

    unpacked = rootless.run(["image", "unpack", TEST_IMAGE], cwd=Path("/"), timeout=600)
    assert unpacked.returncode == 0, unpacked.stderr.decode(errors="replace")
    result = rootless.run(["run", "-p", "test-best-effort", *LITE, "--", "vgprobe", "status"], cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout.decode().splitlines()[-1])
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == 0, key
    assert status["NoNewPrivs"] == 1 and status["Seccomp"] == 2 and status["uid"] == 1000
    host = iso.host_namespaces()
    assert not [name for name in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup")
                if status["namespaces"][name] == host[name]]
    escape = rootless.run(["run", "-p", "test-best-effort", *LITE, "--yes", "--", "sh", "-c",
                           "touch /etc/x /usr/x 2>&1; kill -0 1 2>&1; echo kill=$?; unshare -U true 2>&1; echo u=$?"],
                          cwd=rootless_workspace)
    out = escape.stdout.decode()
    assert "kill=0" not in out and "u=0" not in out and "Read-only file system" in out, out


def test_rootless_with_best_effort_limits_runs_as_the_caller(rootless: Caller, rootless_workspace: Path) -> None:
    unpacked = rootless.run(["image", "unpack", TEST_IMAGE], cwd=Path("/"), timeout=600)
    assert unpacked.returncode == 0, unpacked.stderr.decode(errors="replace")
    result = rootless.run(["run", "-p", "test-best-effort", *LITE, "--", "sh", "-c",
                           "id -u; cat /proc/self/uid_map; touch /workspace/x 2>&1; echo touch=$?"],
                          cwd=rootless_workspace)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().split("\n")
    import pwd

    caller = pwd.getpwnam("vgtest").pw_uid
    assert lines[0] == "1000" and lines[1].split()[:2] == ["1000", str(caller)], result.stdout
    assert "touch=0" not in result.stdout.decode()  # the workspace is read-only (ro), even for its owner
    assert os.path.exists(rootless_workspace) and not (rootless_workspace / "x").exists()
