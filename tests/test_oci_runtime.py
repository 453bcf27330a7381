"""The OCI runtime: chosen on the service, checked per container (issue 12 item 7).

Podman 4.3's REST API ignores the `oci_runtime` a create asks for; only the
service's own `--runtime` counts. These tests show that on real containers,
check `oci.verify_runtime` against their inspect documents, and run real
sandboxes, rootful and rootless, on this host with crun installed (crun 1.8
cannot start anything on hybrid cgroups) through freshly started services.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import podman_service, services_where, stop
from tests.support.vg import ROOTLESS_USER, SYSTEM_PATH, TEST_IMAGE, Caller
from vectraguard.errors import RuntimeUnavailable
from vectraguard.runtime import host, oci, service
from vectraguard.runtime.libpod import Libpod

CHOSEN = host.pick_oci_runtime(host.cgroup_mode())
needs_chosen = pytest.mark.skipif(CHOSEN is None, reason="cgroups v2: Vectra Guard leaves the runtime to Podman")
FRESH = Path(__file__).resolve().parent / "support" / "fresh_runtime_dir.py"
APT_ENV = {"PATH": SYSTEM_PATH, "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}


def _inspect_created(client: Libpod, specgen: dict[str, Any]) -> dict[str, Any]:
    """The inspect document of a real container created (never started) through `client`."""
    cid = client.create({"image": TEST_IMAGE, "command": ["true"], "netns": {"nsmode": "none"}, **specgen})
    try:
        return client.inspect(cid)
    finally:
        client.remove(cid)


def _refusal(inspect: dict[str, Any], expected: str) -> str:
    with pytest.raises(RuntimeUnavailable) as caught:
        oci.verify_runtime(inspect, expected)
    return " ".join(caught.value.lines())


# -- verify_runtime, on inspect documents of real containers ---------------------------------

@needs_chosen
def test_the_service_decides_not_the_create_request(root: Caller) -> None:
    """A create asking for a runtime that does not exist still gets the service's."""
    document = _inspect_created(service.connect(CHOSEN), {"oci_runtime": "doesnotexist"})
    assert document["OCIRuntime"] == CHOSEN
    oci.verify_runtime(document, CHOSEN)
    oci.verify_runtime(document, None)  # None: Podman's default is fine, nothing to check
    assert _refusal(document, "doesnotexist") == (
        f"vectraguard: container {document['Name']} got the OCI runtime {CHOSEN!r} from the Podman service, "
        "not 'doesnotexist', which Vectra Guard chose for this host; the service ignores the runtime a container "
        "asks for: if $CONTAINER_HOST is set, point it at a service started with `podman --runtime doesnotexist "
        "system service`, or unset it so that Vectra Guard starts its own; `vectraguard doctor` shows the "
        "runtime containers get")


def test_a_runtime_given_by_path_is_reported_by_path(root: Caller, tmp_path: Path) -> None:
    runc = shutil.which("runc", path=SYSTEM_PATH)
    assert runc, "the tests need runc"
    with podman_service(root, ["--runtime", runc], tmp_path / "by-path.sock") as sock:
        document = _inspect_created(Libpod(sock), {})
    assert document["OCIRuntime"] == runc
    oci.verify_runtime(document, "runc")  # the same program, named as Podman resolves it
    assert "got the OCI runtime " + repr(runc) + " from the Podman service, not 'crun'" in _refusal(document, "crun")


def test_an_inspect_document_without_a_runtime_is_refused(root: Caller) -> None:
    document = _inspect_created(service.connect(CHOSEN), {})
    del document["OCIRuntime"]
    assert "got an OCI runtime Podman does not name from the Podman service, not 'runc'" in _refusal(document, "runc")


# -- which service, which socket ----------------------------------------------------------

def test_private_services_are_named_for_their_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    assert service.private_socket("runc").name == "podman-runc.sock"
    assert service.private_socket("/usr/bin/runc").name.startswith("podman-runc-")
    assert service.private_socket("/usr/bin/runc") != service.private_socket("/tmp/x/runc")
    assert service.private_socket(None).name == "podman.sock"  # also what a service from before this rule used
    # The runtime is a global option: `podman system service --runtime` is refused.
    assert service.service_argv("runc", Path("/s.sock")) == [
        "podman", "--runtime", "runc", "system", "service", "--time=600", "unix:///s.sock"]
    with pytest.raises(ValueError, match="not an OCI runtime name"):
        service.private_socket("../x y")


def test_the_system_socket_is_only_used_for_podmans_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    assert service._usual_sockets("runc") == []  # its runtime cannot be set: ours is used
    assert service._usual_sockets(None) == ["/run/podman/podman.sock"]  # as root
    monkeypatch.setenv("CONTAINER_HOST", "unix:///elsewhere.sock")
    assert service._usual_sockets("runc") == ["/elsewhere.sock"]  # explicit: used, and checked per container


# -- with crun installed ------------------------------------------------------------------

def _packages() -> set[str]:
    listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n"], capture_output=True,
                            text=True, check=True, timeout=60)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.endswith(" installed")}


@contextmanager
def crun_installed() -> Iterator[None]:
    """crun installed for the block, then removed with whatever it pulled in.

    While it is installed, a Podman started without --runtime defaults to
    crun: other engineers' fresh services would fail, so the window is kept
    to the block. A host that had crun before keeps it."""
    if shutil.which("crun", path=SYSTEM_PATH):
        yield
        return
    before = _packages()
    # crun's state directories (rootful, and rootless under Podman's runtime directory): made on first use.
    state = [path for path in (Path("/run/crun"), Path(f"/tmp/podman-run-{_uid(ROOTLESS_USER)}/crun"))
             if not path.exists()]
    try:
        done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120",
                               "crun"], env=APT_ENV, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot install crun: {done.stderr.strip().splitlines()[-1:]}")
        yield
    finally:
        added = sorted(_packages() - before)
        if added:
            subprocess.run(["apt-get", "purge", "-y", "-o", "DPkg::Lock::Timeout=120", *added], env=APT_ENV,
                           capture_output=True, timeout=900, check=True)
        for path in state:
            if path.is_dir():
                path.rmdir()  # empty once its containers are gone; if not, this says so
        assert _packages() == before, "the test could not leave the host's packages as it found them"


def _rootful_fresh(root: Caller, cwd: Path, commands: list[tuple[str, list[str]]],
                   extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Root's commands in a mount namespace with an empty /run/vectraguard (fresh services)."""
    request = {"cwd": str(cwd), "env": root.environment(extra_env),
               "commands": [[name, root.vg(args)] for name, args in commands]}
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, str(FRESH),
                           json.dumps(request)], capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@contextmanager
def rootless_fresh_runtime_dir() -> Iterator[dict[str, str]]:
    """An environment in which the rootless user's runs start a fresh private service.

    vectraguard keeps its sockets in $XDG_RUNTIME_DIR/vectraguard when the
    user owns that directory; pointing it at the directory Podman already
    uses for this user (so Podman's own state is unchanged) gives a
    vectraguard directory no earlier run used. Its services are stopped and
    the directory removed afterwards."""
    podman_dir = Path(f"/tmp/podman-run-{_uid(ROOTLESS_USER)}")
    assert podman_dir.is_dir() and podman_dir.stat().st_uid == _uid(ROOTLESS_USER), podman_dir
    ours = podman_dir / "vectraguard"
    mine = f"unix://{ours}/".encode()

    def cleanup() -> None:
        stop(services_where(lambda _, argv: any(arg.startswith(mine) for arg in argv)))
        shutil.rmtree(ours, ignore_errors=True)

    cleanup()  # a run of this test that was killed
    try:
        yield {"XDG_RUNTIME_DIR": str(podman_dir)}
    finally:
        cleanup()


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


INSIDE = ["--", "sh", "-c", "echo sandboxed; id -u; test -w /etc/passwd || echo read-only"]


@needs_chosen
def test_runs_work_with_crun_installed(root: Caller, rootless: Caller, workspace: Path,
                                       rootless_workspace: Path, tmp_path: Path) -> None:
    """crun (Podman's preferred default) installed on a hybrid-cgroups host:
    fresh services, rootful and rootless, still start sandboxes, with runc."""
    with crun_installed(), rootless_fresh_runtime_dir() as rootless_env:
        rootful = _rootful_fresh(root, workspace, [
            ("run", ["run", "-p", "test-untrusted", *INSIDE]),
            ("doctor", ["doctor", "--json"]),
        ])
        rootless_run = rootless.run(["run", "-p", "test-best-effort", *INSIDE], cwd=rootless_workspace,
                                    extra_env=rootless_env)
        # Control: what a service started without --runtime gives now.
        with podman_service(root, [], tmp_path / "default.sock") as sock:
            default = root.run(["doctor", "--json"], cwd=workspace, timeout=300,
                               extra_env={"CONTAINER_HOST": f"unix://{sock}"})
    status, out, err = rootful["run"]
    assert (status, out) == (0, "sandboxed\n1000\nread-only\n"), err
    assert rootful["services"] == [service.service_argv(CHOSEN, Path("/run/vectraguard") / service.private_socket(CHOSEN).name)]
    assert (rootless_run.returncode, rootless_run.stdout) == (0, b"sandboxed\n1000\nread-only\n"), rootless_run.stderr
    checks = {c["check"]: c for c in json.loads(rootful["doctor"][1])["checks"]}
    assert checks["oci runtime in use"]["status"] == "ok"
    assert checks["oci runtime in use"]["detail"].startswith(f"containers get {CHOSEN} from the service at ")
    # crun really was there, and really cannot run anything here.
    assert checks["oci runtime crun"]["status"] == "warn", checks["oci runtime crun"]
    assert "cannot start containers here" in checks["oci runtime crun"]["detail"]
    flagged = {c["check"]: c for c in json.loads(default.stdout)["checks"]}["oci runtime in use"]
    assert flagged["status"] == "fail"
    assert flagged["detail"].startswith(f"containers get crun from the service at {tmp_path / 'default.sock'}, "
                                        f"not {CHOSEN}, which Vectra Guard chose for cgroups ")


@needs_chosen
def test_a_run_on_a_service_with_another_runtime_is_refused(root: Caller, workspace: Path, tmp_path: Path) -> None:
    """$CONTAINER_HOST names a service whose containers get another runtime (runc
    under another name, so only the check can tell): refused before anything runs."""
    runc = shutil.which("runc", path=SYSTEM_PATH)
    assert runc, "the tests need runc"
    other = tmp_path / "bin" / "other-runtime"
    other.parent.mkdir()
    other.symlink_to(runc)
    with podman_service(root, ["--runtime", str(other)], tmp_path / "other.sock") as sock:
        result = root.run(["run", "-p", "test-untrusted", "--", "echo", "ran"], cwd=workspace,
                          extra_env={"CONTAINER_HOST": f"unix://{sock}"})
    message = result.stderr.decode()
    assert result.returncode == 125 and result.stdout == b"", message  # nothing ran
    named = re.search(rf"container (\S+) got the OCI runtime '{re.escape(str(other))}' from the Podman service, "
                      rf"not {re.escape(repr(CHOSEN))}", message)
    assert named, message
    gone = subprocess.run(["podman", "container", "exists", named[1]], capture_output=True, timeout=60, check=False)
    assert gone.returncode == 1  # removed


@needs_chosen
def test_a_wrapper_merely_named_like_the_runtime_is_refused(root: Caller, workspace: Path, tmp_path: Path) -> None:
    """From the outside round: a program called `runc` elsewhere passed the check by its name."""
    runc = shutil.which("runc", path=SYSTEM_PATH)
    assert runc
    fake = tmp_path / "fake" / "runc"
    fake.parent.mkdir()
    log = tmp_path / "fake.log"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec {runc} \"$@\"\n")
    fake.chmod(0o755)
    with podman_service(root, ["--runtime", str(fake)], tmp_path / "fake.sock") as sock:
        result = root.run(["run", "-p", "test-untrusted", "--", "echo", "ran"], cwd=workspace,
                          extra_env={"CONTAINER_HOST": f"unix://{sock}"})
    assert result.returncode == 125 and b"ran" not in result.stdout, result.stderr.decode()
    assert f"got the OCI runtime '{fake}'" in result.stderr.decode()
    assert "start" not in (log.read_text() if log.exists() else "")  # created, never started
