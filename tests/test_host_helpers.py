"""Code in the project directory never runs on the host.

Rootless runs start helpers of Vectra Guard's own under `podman unshare`
(runtime/unshare.py): listeners for an allowlist, sockets for a published
port, the reading of an overlay layer. They were started with `python -m`
in the run's working directory — the project — which `-m` puts first on the
module path: a `socket.py` or a `vectraguard/` package in a cloned
repository, or written there by an earlier sandbox with a read-write
workspace, ran on the host as the user. Each module below, if imported,
leaves a file beside itself.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import Caller

# Pure-Python modules the helpers import, and our own package's name.
PLANTED = ("socket.py", "tempfile.py", "array.py", "json.py", "vectraguard/__init__.py")
MARK = "import os\nopen(os.path.join(os.path.dirname(os.path.abspath(__file__)), {name!r} + '.ran'), 'w').close()\n"


@pytest.fixture
def planted(rootless_workspace: Path) -> Path:
    for name in PLANTED:
        path = rootless_workspace / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(MARK.format(name=path.name.removesuffix(".py")))
        shutil.chown(path.parent, "vgtest", "vgtest")
        shutil.chown(path, "vgtest", "vgtest")
    return rootless_workspace


@pytest.fixture
def private(rootless: Caller) -> Iterator[dict[str, str]]:
    base = Path(tempfile.mkdtemp(prefix="vg-helpers-data-"))
    base.chmod(0o777)  # the rootless user makes its store below
    try:
        yield {"VECTRAGUARD_DATA_DIR": str(base / "data")}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ran(workspace: Path) -> list[str]:
    return sorted(str(path.relative_to(workspace)) for path in workspace.rglob("*.ran"))


@pytest.mark.parametrize("options", [
    pytest.param(["--publish", "PORT:3000"], id="publish"),
    pytest.param(["--allow", "127.0.0.1:9"], id="allowlist"),
    pytest.param(["--workspace", "overlay"], id="overlay"),
])
def test_rootless_helpers_never_import_from_the_project(rootless: Caller, planted: Path, private: dict[str, str],
                                                        options: list[str]) -> None:
    options = [word.replace("PORT", str(_free_port())) for word in options]
    result = rootless.run(["run", "-p", "test-best-effort", "--yes", *options, "--",
                           "sh", "-c", "echo made > made-inside.txt; echo done"],
                          cwd=planted, extra_env=private)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.endswith(b"done\n")
    if "overlay" in options:  # the layer is read by the helper too
        changes = rootless.run(["changes", "--json"], cwd=planted, extra_env=private)
        assert changes.returncode == 0, changes.stderr.decode()
        assert b"made-inside.txt" in changes.stdout
    rootless.wait_for_removals()
    assert _ran(planted) == []
