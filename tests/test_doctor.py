"""`vectraguard doctor` on this host, and with one thing broken at a time."""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import podman_service
from tests.support.vg import (
    DEFAULT_IMAGE_REF,
    ROOTLESS_USER,
    SYSTEM_PATH,
    TEST_IMAGE,
    Caller,
)
from vectraguard.runtime import host, oci, service
from vectraguard.runtime.libpod import Libpod

# Reported on every host; runtimes, /dev/net/tun (rootless) vary.
ALWAYS = ["podman", "mode", "podman service", "cgroups", "oci runtime in use", "profiles", "system policy", "rlimits",
          "cpu/memory/pids limits", "init", "subordinate ids", "network", "storage driver", "nftables", "mmdebstrap",
          "default image"]
CHOSEN = host.pick_oci_runtime(host.cgroup_mode())  # what Vectra Guard asks for on this host


def doctor_json(caller: Caller, cwd: Path, extra_env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = caller.run(["doctor", "--json"], cwd=cwd, timeout=300, extra_env=extra_env)
    assert result.stderr == b"", result.stderr.decode(errors="replace")  # no traceback, no noise
    return result.returncode, json.loads(result.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["check"]: check for check in report["checks"]}


def test_doctor_passes_on_this_host(root: Caller, default_image: str, tmp_path: Path) -> None:
    result = root.run(["doctor"], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout.decode()
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == ["check", "status", "detail", "hint"]
    assert lines[-1].startswith("ready: no check failed (")
    names = [line.split("  ")[0] for line in lines[2:-1]]
    assert set(ALWAYS) <= set(names)


def test_doctor_json_reports_every_check(root: Caller, default_image: str, tmp_path: Path) -> None:
    status, report = doctor_json(root, tmp_path)
    assert status == 0 and report["ok"] is True
    checks = by_name(report)
    assert set(ALWAYS) <= set(checks)
    for check in report["checks"]:
        assert check["status"] in ("ok", "warn", "fail")
        assert (check["hint"] != "") == (check["status"] != "ok"), check
    assert checks["mode"]["detail"] == "rootful: each sandbox gets a user namespace of its own"
    assert checks["default image"]["detail"] == f"{DEFAULT_IMAGE_REF} {default_image}"
    nofile, nproc = (resource.getrlimit(r)[1] for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC))
    assert checks["rlimits"]["detail"].startswith(f"hard nofile {_limit(nofile)}, nproc {_limit(nproc)}; ")
    # The runtime Vectra Guard uses must have started a real container.
    used = [c for c in report["checks"] if c["check"].startswith("oci runtime ") and "(used by Vectra Guard)" in c["detail"]]
    assert len(used) == 1 and used[0]["status"] == "ok", report["checks"]


def NO_DOCKER(where: Path) -> dict[str, str]:
    """Without Podman, `engine: auto` takes a Docker daemon that answers: these tests want neither
    (tests/test_doctor_engines.py has doctor on Docker)."""
    return {"DOCKER_HOST": f"unix://{where}/no-docker.sock"}


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def test_podman_not_found_fails_with_the_install_hint(root: Caller, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    status, report = doctor_json(root, tmp_path, {"PATH": str(empty), **NO_DOCKER(tmp_path)})
    assert status == 1 and report["ok"] is False
    assert by_name(report)["podman"] == {
        "check": "podman", "status": "fail", "detail": "not found in PATH",
        "hint": "apt-get install podman runc (or run contrib/install.sh)",
    }


def test_table_shows_the_failure_and_its_hint(root: Caller, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = root.run(["doctor"], cwd=tmp_path, extra_env={"PATH": str(empty), **NO_DOCKER(tmp_path)})
    assert result.returncode == 1
    out = result.stdout.decode()
    row = next(line for line in out.splitlines() if line.startswith("podman "))
    assert row.split()[:5] == ["podman", "fail", "not", "found", "in"]
    assert row.endswith("apt-get install podman runc (or run contrib/install.sh)")
    assert "failed" in out.splitlines()[-1]


@pytest.fixture
def config_home(tmp_path: Path) -> Iterator[Path]:
    profiles = tmp_path / "config" / "vectraguard" / "profiles.d"
    profiles.mkdir(parents=True)
    yield tmp_path / "config"


def test_invalid_profile_fails_with_its_location(root: Caller, config_home: Path, tmp_path: Path) -> None:
    bad = config_home / "vectraguard" / "profiles.d" / "default.yaml"
    bad.write_text("bogus: 1\n")
    status, report = doctor_json(root, tmp_path, {"XDG_CONFIG_HOME": str(config_home)})
    assert status == 1
    profiles = by_name(report)["profiles"]
    assert profiles["status"] == "fail"
    assert profiles["detail"].startswith(f"profile default: {bad}:1: unknown key 'bogus'")


def test_missing_default_image_names_the_build_command(root: Caller, config_home: Path, tmp_path: Path) -> None:
    ref = "localhost/vectraguard/default:nosuchsuite"
    (config_home / "vectraguard" / "profiles.d" / "default.yaml").write_text(f"image: {ref}\n")
    status, report = doctor_json(root, tmp_path, {"XDG_CONFIG_HOME": str(config_home)})
    assert status == 1
    checks = by_name(report)
    assert checks["default image"] == {
        "check": "default image", "status": "fail", "detail": f"{ref} is not built",
        "hint": "build it: vectraguard image build --suite nosuchsuite",
    }
    # Without the image, the runtimes cannot be probed: said, not failed.
    assert checks["oci runtimes"]["status"] == "warn"
    assert checks["oci runtimes"]["detail"].endswith(f"not probed: the default image {ref} is not available")


def test_rootless_reports_its_own_ids_and_limits(rootless: Caller, rootless_workspace: Path) -> None:
    status, report = doctor_json(rootless, rootless_workspace)
    checks = by_name(report)
    assert checks["mode"]["detail"].startswith("rootless (uid ")
    assert checks["subordinate ids"]["status"] == "ok"
    assert checks["subordinate ids"]["detail"].startswith(f"{ROOTLESS_USER}: ")
    assert "/dev/net/tun" in checks  # rootless only: matters for the full network
    assert checks["/dev/net/tun"]["status"] in ("ok", "warn")
    limits = checks["cpu/memory/pids limits"]
    if limits["status"] == "fail":
        # cgroups v1/hybrid, or v2 without delegation: strict profiles cannot run
        refused = limits["detail"].split("will refuse to run: ", 1)[1].split(", ")
        assert "default" in refused and "claude-code" in refused
        assert "`limits.enforcement: best-effort`" in limits["hint"]
        assert status == 1


def _runtime_given(socket: str) -> str | None:
    """What a container created through `socket` really gets, asked here, not by doctor."""
    return oci.runtime_given(Libpod(socket), TEST_IMAGE, None)


def test_doctor_reports_the_runtime_containers_get(root: Caller, default_image: str, tmp_path: Path) -> None:
    _, report = doctor_json(root, tmp_path)
    checks = by_name(report)
    socket = checks["podman service"]["detail"].rsplit(" answering at ", 1)[1]
    got = _runtime_given(socket)
    mode = host.cgroup_mode()
    if CHOSEN is None:
        expected = f"containers get {got} from the service at {socket} (Podman's default: Vectra Guard picks none " \
                   f"on cgroups {mode})"
    else:
        assert got == CHOSEN
        expected = f"containers get {got} from the service at {socket}, as chosen for cgroups {mode}"
    assert checks["oci runtime in use"] == {"check": "oci runtime in use", "status": "ok", "detail": expected, "hint": ""}


def test_rootless_vfs_storage_is_a_warning_with_the_fix(rootless: Caller, rootless_workspace: Path) -> None:
    """Issue 18: a rootless Podman on the vfs driver (every run copies the image: seconds each) was "ready".
    A real rootless service on vfs, with storage of its own (the user's own stays as it is)."""
    store = Path(tempfile.mkdtemp(prefix="vg-doctor-vfs-"))
    try:
        for name in ("root", "run"):
            (store / name).mkdir()
        for path in [store, *store.iterdir()]:
            shutil.chown(path, ROOTLESS_USER, ROOTLESS_USER)
        store.chmod(0o755)
        flags = ["--storage-driver", "vfs", "--root", str(store / "root"), "--runroot", str(store / "run")]
        with podman_service(rootless, flags, store / "vfs.sock") as socket:
            _, report = doctor_json(rootless, rootless_workspace, {"CONTAINER_HOST": f"unix://{socket}"})
    finally:
        shutil.rmtree(store, ignore_errors=True)
    assert by_name(report)["storage driver"] == {
        "check": "storage driver", "status": "warn",
        "detail": f"vfs ({store / 'root'}): every sandbox copies its whole image, so each run takes seconds, "
                  "and images take their size again on disk",
        "hint": "use overlay: the kernel's rootless overlay (Linux 5.13+; nothing to install) or fuse-overlayfs "
                "(apt-get install fuse-overlayfs); set driver = \"overlay\" under [storage] in "
                "~/.config/containers/storage.conf, then `podman system reset` (it removes this user's images and "
                "containers; rebuild with `vectraguard image build`)",
    }


@pytest.fixture
def rootless_config(rootless: Caller) -> Iterator[Path]:
    """A config home (owned by the rootless user) whose default profile uses the test image."""
    home = Path(tempfile.mkdtemp(prefix="vg-doctor-rootless-"))
    profiles = home / "vectraguard" / "profiles.d"
    profiles.mkdir(parents=True)
    (profiles / "default.yaml").write_text(f"image: {TEST_IMAGE}\n")
    for path in [home, *home.rglob("*")]:
        shutil.chown(path, ROOTLESS_USER, ROOTLESS_USER)
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_rootless_doctor_reports_the_runtime_containers_get(rootless: Caller, rootless_config: Path,
                                                          rootless_workspace: Path) -> None:
    _, report = doctor_json(rootless, rootless_workspace, {"XDG_CONFIG_HOME": str(rootless_config)})
    checks = by_name(report)
    socket = checks["podman service"]["detail"].rsplit(" answering at ", 1)[1]
    in_use = checks["oci runtime in use"]
    assert in_use["status"] == "ok", in_use
    if CHOSEN is not None:
        assert in_use["detail"] == f"containers get {CHOSEN} from the service at {socket}, " \
                                   f"as chosen for cgroups {host.cgroup_mode()}"
        assert os.path.basename(socket) == service.private_socket(CHOSEN).name


@pytest.mark.skipif(CHOSEN is None, reason="cgroups v2: Vectra Guard leaves the runtime to Podman")
def test_doctor_fails_when_containers_get_another_runtime(root: Caller, default_image: str, tmp_path: Path) -> None:
    """$CONTAINER_HOST names a service whose containers get another runtime (here
    runc under another name, so nothing breaks but the name): flagged, with the fix."""
    runc = shutil.which("runc", path=SYSTEM_PATH)
    assert runc, "the tests need runc"
    other = tmp_path / "bin" / "other-runtime"
    other.parent.mkdir()
    other.symlink_to(runc)
    with podman_service(root, ["--runtime", str(other)], tmp_path / "other.sock") as socket:
        assert _runtime_given(socket) == str(other)
        status, report = doctor_json(root, tmp_path, {"CONTAINER_HOST": f"unix://{socket}"})
    assert status == 1 and report["ok"] is False
    assert by_name(report)["oci runtime in use"] == {
        "check": "oci runtime in use", "status": "fail",
        "detail": f"containers get {other} from the service at {socket}, not {CHOSEN}, which Vectra Guard chose "
                  f"for cgroups {host.cgroup_mode()}: every run is refused",
        "hint": f"if $CONTAINER_HOST is set, point it at a service started with `podman --runtime {CHOSEN} "
                "system service`, or unset it",
    }


def test_on_a_terminal_the_table_fits_its_width(root: Caller, default_image: str, tmp_path: Path) -> None:
    """The hint column holds the fix: on a 100-column terminal no line is wider (it was ~300)."""
    from tests.support.terminal import Terminal

    terminal = Terminal(root, tmp_path, ["doctor"], extra_env={"COLUMNS": ""})
    terminal.resize(40, 100)
    seen = terminal.expect(b"ready: no check failed", timeout=300)
    assert terminal.wait(timeout=120) == 0
    lines = seen.decode(errors="replace").replace("\r", "").splitlines()
    assert lines and max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert any(line.startswith("check ") for line in lines)


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_paths_in_the_table_are_never_split_across_lines(root: Caller, default_image: str, tmp_path: Path,
                                                          columns: int) -> None:
    """At 100 columns `/opt/vectraguard/...` was split into `/o` / `pt/vectraguard/...`: every path the
    checks name is in the table whole, or shortened from the left with its last name whole (terminal/fit.py)."""
    from tests.support.terminal import Terminal
    from vectraguard.terminal.fit import names_a_file

    _, report = doctor_json(root, tmp_path)
    terminal = Terminal(root, tmp_path, ["doctor"], extra_env={"COLUMNS": ""})  # a real terminal this wide
    terminal.resize(40, columns)
    seen = terminal.expect(b"ready: no check failed", timeout=300)
    assert terminal.wait(timeout=120) == 0
    lines = seen.decode(errors="replace").replace("\r", "").splitlines()
    assert any(line.startswith("check ") for line in lines), lines
    tokens = {token for line in lines for token in line.split()}
    paths = {word for check in report["checks"] for field in ("detail", "hint")
             for word in (check[field] or "").split() if names_a_file(word)}
    assert any(word.startswith("/") for word in paths), paths
    for word in paths:
        last = word.rstrip("/").rsplit("/", 1)[-1]
        assert word in tokens or any(t.startswith("…/") and word.endswith(t[1:]) and t.endswith(last) for t in tokens), \
            (word, [line for line in lines if last in line or word[:8] in line])
