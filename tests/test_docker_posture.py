"""The sandbox's posture and record on Docker Engine against Podman's (issue 20, an outside attack's findings).

Each test runs the real `vectraguard run` on both engines where both can answer (`engine`
fixture) and asks the sandbox itself, or reads what the audit store recorded: the record says
what the engine was sent; no nameserver without a network; at least Podman's masked and
read-only kernel paths and read-only cgroups; nothing writable that the mount plan does not
list (an image's VOLUME included); an image's ENV under the run's; what Docker cannot give is
refused before anything is created. Skipped without root or without a Docker daemon.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker import docker_available
from tests.support.vg import TEST_IMAGE, Caller, outcome

UNTRUSTED = ["run", "-p", "test-untrusted", "--yes"]
PODMAN_MASKED = ("/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                 "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/fs/selinux",
                 "/sys/dev/block")
PODMAN_READONLY = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# Writable mounts the engines make themselves (kernel and device file systems, none disk-backed) beside the plan.
ENGINE_WRITABLE = {"/dev", "/dev/pts", "/dev/mqueue", "/dev/shm", "/proc", "/proc/keys", "/proc/timer_list",
                   "/proc/latency_stats", "/proc/timer_stats", "/proc/sched_debug", "/proc/kcore",
                   *(f"/dev/{node}" for node in ("null", "zero", "full", "random", "urandom", "tty", "console")),
                   "/sys/fs/cgroup"}  # Podman's tmpfs of v1's mount points: root's, 0755, memory-backed
PLAN_WRITABLE = {"/tmp", "/home/sandbox"}  # test-untrusted: its workspace is read-only
VOLUME_IMAGE = "localhost/vectraguard-test-posture:latest"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the Docker daemon is rootful: these tests need root")


@pytest.fixture(params=["podman", "docker"])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_test_image")
    return str(request.param)


def inside(caller: Caller, workspace: Path, engine: str, script: str, *options: str,
           extra_env: dict[str, str] | None = None) -> str:
    result = caller.run([*UNTRUSTED, "--engine", engine, *options, "--", "sh", "-c", script], cwd=workspace,
                        extra_env=extra_env)
    assert result.returncode == 0, (engine, result.returncode, result.stderr.decode(errors="replace"))
    return result.stdout.decode()


def mounts(text: str) -> dict[str, set[str]]:
    """The topmost mount at each mount point of a /proc/self/mountinfo (proc(5)): its per-mount options."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        fields = line.split(" - ")[0].split()
        if len(fields) >= 6:
            found[fields[4]] = set(fields[5].split(","))  # later lines are mounted over earlier ones
    return found


# -- 1. the record says what the engine was sent ----------------------------------------

def test_the_record_is_what_the_engine_was_sent(root: Caller, workspace: Path, data_dir: Path, engine: str) -> None:
    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    inside(root, workspace, engine, "true", "--env", "SECRET_THING=hunter2", extra_env=private)
    started = root.last_session(workspace, private)["events"][0]
    spec = started["sandbox"]["spec"]
    assert "hunter2" not in str(started)
    assert "SECRET_THING" in spec["env_names"]
    if engine == "podman":
        assert spec["userns"] == {"nsmode": "auto"} and "create" not in spec
        return
    # Docker: its create body, not Podman's specgen, and the user namespace as the daemon gives it.
    assert set(spec) == {"create", "userns", "env_names"}, sorted(spec)
    create, host = spec["create"], spec["create"]["HostConfig"]
    assert create["Entrypoint"] == ["/run/vectraguard-entry"] and create["Image"] == TEST_IMAGE
    assert create["Env"] == ["container"]  # the entry's own environment, by name; the run's is env_names
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"] and host["Init"] is False  # the entry program is PID 1
    [seccomp] = [option for option in host["SecurityOpt"] if option.startswith("seccomp=")]
    path, _, digest = seccomp.removeprefix("seccomp=<").removesuffix(">").partition(" sha256:")
    assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert "/sys/dev/block" in host["MaskedPaths"] and "/sys/fs/cgroup" in host["ReadonlyPaths"]
    assert not any(key in spec["create"] for key in ("userns", "init_path", "netns", "mounts"))
    [base] = [int(line.split(":")[1]) for line in Path("/etc/subuid").read_text().splitlines()
              if line.startswith("dockremap:")]
    assert spec["userns"] == {"mode": "remap", "uid": base, "gid": base, "size": 65536}
    session = root.last_session(workspace, private)
    shown = root.run(["inspect", session["id"]], cwd=workspace, extra_env=private)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert '"MaskedPaths"' in text and "nsmode" not in text and "tini" not in text


# -- 2. no nameserver without a network -------------------------------------------------

@pytest.mark.parametrize("network", [[], ["--allow", "127.0.0.1:9"]], ids=["none", "allowlist"])
def test_no_nameserver_without_a_network(root: Caller, workspace: Path, engine: str, network: list[str]) -> None:
    text = inside(root, workspace, engine, "cat /etc/resolv.conf 2>/dev/null; echo end", *network)
    assert "nameserver" not in text and text.endswith("end\n"), (engine, text)


# -- 3. masked and read-only paths, cgroups ---------------------------------------------

def test_podmans_masked_and_read_only_paths_and_cgroups(root: Caller, workspace: Path, engine: str) -> None:
    script = ("cat /proc/self/mountinfo; echo ==; for p in " + " ".join(PODMAN_MASKED) + "; do "
              "if [ -d $p ]; then echo $p $(ls -A $p | wc -l); elif [ -e $p ]; then echo $p $(wc -c < $p); fi; done")
    mountinfo, _, sizes = inside(root, workspace, engine, script).partition("==\n")
    top = mounts(mountinfo)
    # Masked: what exists is empty (a read-only tmpfs over a directory, /dev/null over a file).
    for line in sizes.splitlines():
        path, size = line.split()
        assert size == "0", (engine, path, size)
    for path in PODMAN_READONLY:
        if path in top:
            assert "ro" in top[path], (engine, path, top[path])
    # Every cgroup file system (cgroup v1: one per controller; v2: /sys/fs/cgroup itself) is read-only. The
    # tmpfs that holds v1's mount points is rw on Podman (root's, 0755: the sandbox user cannot write it).
    cgroups = {path: options for path, options in top.items()
               if path.startswith("/sys/fs/cgroup/") or path == "/sys/fs/cgroup" and engine == "docker"}
    assert cgroups, engine
    assert all("ro" in options for options in cgroups.values()), (engine, cgroups)


def test_dev_gives_nothing_to_execute(root: Caller, workspace: Path, engine: str) -> None:
    """Podman mounts /dev noexec; Docker cannot (a /dev of ours would drop its /dev/pts: README). On both, the
    sandbox user cannot write to /dev, and what it can write there (/dev/shm, /dev/mqueue) is noexec."""
    text = inside(root, workspace, engine, "cat /proc/self/mountinfo; echo ==; touch /dev/x 2>&1; echo $?")
    mountinfo, _, touched = text.partition("==\n")
    top = mounts(mountinfo)
    assert touched.splitlines()[-1] != "0", (engine, touched)
    for path in ("/dev/shm", "/dev/mqueue"):
        assert {"noexec", "nosuid", "nodev"} <= top[path], (engine, path, top[path])
    if engine == "podman":
        assert "noexec" in top["/dev"]


# -- 5. an image's VOLUME, 6. an image's ENV -------------------------------------------

@pytest.fixture(scope="module")
def volume_image(root: Caller) -> Iterator[str]:
    """The test image with a VOLUME and an ENV (LD_PRELOAD-like: an image's word on what runs), in both engines."""
    reason = docker_available()
    work = Path(tempfile.mkdtemp(prefix="vg-posture-image-"))
    (work / "Containerfile").write_text(
        f"FROM {TEST_IMAGE}\nLABEL vectraguard.test=posture\nVOLUME /data /var/cache/image-volume\n"
        "ENV FROM_IMAGE=image-value PATH=/image/bin:/usr/bin:/bin\n")
    built = subprocess.run([*root.podman(), "build", "--pull=never", "-t", VOLUME_IMAGE, str(work)],
                           capture_output=True, check=False, timeout=300)
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    if reason is None:
        from tests.support.docker import docker_image

        docker_image(VOLUME_IMAGE, root.podman())
    yield VOLUME_IMAGE
    subprocess.run([*root.podman(), "rmi", VOLUME_IMAGE], capture_output=True, check=False)
    if reason is None:
        from tests.support.docker import request

        request("DELETE", "/images/" + VOLUME_IMAGE.replace("/", "%2F"))
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


def test_nothing_writable_outside_the_mount_plan(root: Caller, workspace: Path, engine: str,
                                                 volume_image: str) -> None:
    text = inside(root, workspace, engine, "cat /proc/self/mountinfo; echo ==; touch /data/x 2>&1; echo $?",
                  "--image", volume_image)
    mountinfo, _, touched = text.partition("==\n")
    top = mounts(mountinfo)
    writable = {path for path, options in top.items() if "rw" in options}
    assert writable - ENGINE_WRITABLE - PLAN_WRITABLE == set(), (engine, writable)
    assert touched.splitlines()[-1] != "0", (engine, touched)
    for path in ("/data", "/var/cache/image-volume"):
        assert path not in top or "ro" in top[path], (engine, path, top.get(path))


def test_the_image_env_is_under_the_runs(root: Caller, workspace: Path, engine: str, volume_image: str) -> None:
    """The image's ENV is image content, like its files: it reaches the command on both engines, under the
    run's own variables (PATH, HOME, TERM and the profile's are the run's)."""
    text = inside(root, workspace, engine, 'echo "$FROM_IMAGE|$PATH|$HOME"', "--image", volume_image)
    assert text == "image-value|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/home/sandbox\n", \
        (engine, text)
    text = inside(root, workspace, engine, 'echo "$FROM_IMAGE"', "--image", volume_image,
                  "--env", "FROM_IMAGE=run-value")
    assert text == "run-value\n", (engine, text)


# -- 4. what Docker cannot give is refused before anything is created ------------------

def test_an_overlay_workspace_is_refused_on_docker_before_create(root: Caller, workspace: Path, data_dir: Path,
                                                                  docker_test_image: str) -> None:
    from tests.support.docker import call

    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    before = {c["Id"] for c in call("GET", "/containers/json?all=1")}
    result = root.run([*UNTRUSTED, "--engine", "docker", "--workspace", "overlay", "--", "true"], cwd=workspace,
                      extra_env=private)
    assert result.returncode == 125
    stderr = result.stderr.decode()
    assert "workspace mode overlay" in stderr and "Docker Engine cannot give" in stderr, stderr
    assert "--engine podman" in stderr and "Traceback" not in stderr and "runc" not in stderr, stderr
    assert outcome(root.last_session(workspace, private)["events"])["status"] == "refused"
    assert {c["Id"] for c in call("GET", "/containers/json?all=1")} - before == set()


def test_an_agents_kept_home_is_refused_on_docker_before_create(root: Caller, workspace: Path, data_dir: Path,
                                                                 docker_test_image: str) -> None:
    """The shipped `generic` agent keeps its $HOME in a named volume, which Docker is not given."""
    from tests.support.docker import call

    private = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    before = {c["Id"] for c in call("GET", "/containers/json?all=1")}
    result = root.run(["agent", "start", "generic", "--engine", "docker", "--workspace", "ro", "--", "true"],
                      cwd=workspace, extra_env=private)
    stderr = result.stderr.decode()
    assert result.returncode == 125 and "kept $HOME" in stderr and "agent.home: tmpfs" in stderr, stderr
    assert outcome(root.last_session(workspace, private)["events"])["status"] == "refused"
    assert {c["Id"] for c in call("GET", "/containers/json?all=1")} - before == set()


def test_the_engines_log_of_the_output_is_capped(root: Caller, workspace: Path, engine: str) -> None:
    """What the command writes also goes to the engine's container log, which nobody reads and which had no
    cap: 300 MB of output put 428 MB on the host's disk, past every limit of the sandbox (an outside attack).
    The log of 8 MiB of output stays within the cap (CONTAINER_LOG_BYTES, plus one line and the engine's
    framing of it)."""
    from vectraguard.sandbox.spec import CONTAINER_LOG_BYTES

    argv, env = root.argv(root.vg([*UNTRUSTED, "--engine", engine, "--", "sh", "-c",
                                   "head -c 8388608 /dev/zero | tr '\\0' x | fold -w 4096; echo; echo ready; sleep 60"]))
    proc = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line == b"ready\n":
                break
        else:
            raise AssertionError(proc.stderr.read() if proc.stderr else b"")
        command = ["podman", "inspect", "--format", "{{.HostConfig.LogConfig.Path}}"] if engine == "podman" else \
            ["docker", "-H", "unix:///run/docker.sock", "inspect", "--format", "{{.LogPath}}"]
        names = subprocess.run([engine, *(["-H", "unix:///run/docker.sock"] if engine == "docker" else []), "ps",
                                "-q", "--no-trunc", "--filter", "label=io.vectraguard.owner"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.split()
        sizes = []
        for cid in names:
            path = subprocess.run([*command, cid], check=False, capture_output=True, text=True,
                                  timeout=60).stdout.strip()
            if path and os.path.exists(path):
                sizes.append(os.path.getsize(path))
        assert sizes, "the running sandbox's log"
        assert max(sizes) <= CONTAINER_LOG_BYTES + 64 * 1024, sizes
    finally:
        proc.send_signal(signal.SIGINT)  # ends the run as Ctrl-C does: its sandbox goes with it
        proc.communicate(timeout=60)
        root.wait_for_removals()
