"""The start-up path of `vectraguard run` imports nothing it does not need.

ruamel.yaml and jsonschema are needed only when a configuration file is not
in the validated-layer cache; podman-py, tabulate, loguru and dateparser
(read relative times for logs) never on a plain run. (Their cost is
measured by bench/run_overhead, not here.)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.vg import Caller

HEAVY = ("podman", "requests", "urllib3", "jsonschema", "ruamel", "loguru", "tabulate",
         "dateparser", "regex", "tzlocal", "pytz", "dateutil")


def imported_modules(stderr: bytes) -> set[str]:
    names = set()
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_run_modules_import_nothing_heavy_at_module_level() -> None:
    code = "import sys, vectraguard.cli, vectraguard.commands.run; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert sorted({m.split(".")[0] for m in loaded} & set(HEAVY)) == []


def test_a_warm_run_imports_nothing_heavy(root: Caller, workspace: Path) -> None:
    args = ["run", "-p", "test-untrusted", "--memory", "256Mi", "--", "true"]
    profiled = {"PYTHONPROFILEIMPORTTIME": "1"}
    cold = root.run(args, cwd=workspace, extra_env=profiled)  # validates and caches profiles and flags
    assert cold.returncode == 0
    warm = root.run(args, cwd=workspace, extra_env=profiled)
    assert warm.returncode == 0
    assert sorted(imported_modules(warm.stderr) & set(HEAVY)) == []
    # The check can see heavy imports when they happen: a cold cache needs the parsers.
    with tempfile.TemporaryDirectory() as empty_cache:
        fresh = root.run(args, cwd=workspace, extra_env={**profiled, "XDG_CACHE_HOME": empty_cache})
    assert fresh.returncode == 0
    assert {"ruamel", "jsonschema"} <= imported_modules(fresh.stderr)
