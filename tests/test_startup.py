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


def imported_names(stderr: bytes) -> set[str]:
    """Every module's full name, from -X importtime lines."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.decode(errors="replace").splitlines()
            if line.startswith("import time:") and "|" in line}


def test_a_warm_run_imports_nothing_heavy(root: Caller, workspace: Path) -> None:
    args = ["run", "-p", "test-untrusted", "--memory", "256Mi", "--", "true"]
    # A cache of this test's own: one left by an earlier version must not hide a file never cached now
    # (the shipped default.yaml's `upstream_proxy: null` once kept it out of the cache).
    with tempfile.TemporaryDirectory() as own_cache:
        # In its own process (a served run's client imports next to nothing: test_forkserver.py).
        profiled = {"PYTHONPROFILEIMPORTTIME": "1", "XDG_CACHE_HOME": own_cache, "VECTRAGUARD_FORKSERVER": "0"}
        cold = root.run(args, cwd=workspace, extra_env=profiled)  # validates and caches profiles and flags
        assert cold.returncode == 0
        assert {"ruamel", "jsonschema"} <= imported_modules(cold.stderr)  # the check sees them when they happen
        warm = root.run(args, cwd=workspace, extra_env=profiled)
    assert warm.returncode == 0
    assert sorted(imported_modules(warm.stderr) & set(HEAVY)) == []


# What a cached run with no network and a read-only workspace has no use for.
NOT_FOR_A_PLAIN_RUN = (
    "ssl",  # only to find the host's CA bundle (network.trust_host_ca)
    "tomllib",  # only when a containers storage.conf exists
    "vectraguard.workspace",  # overlay and rw workspaces
    "vectraguard.network.proxy", "vectraguard.network.server", "vectraguard.network.plant",
    "vectraguard.network.relay", "vectraguard.network.resolve", "vectraguard.network.tls",
    "vectraguard.network.summary",  # the allowlist's egress
    "vectraguard.audit.recording",  # shells and agents
    "termios", "tty",  # an interactive terminal
    "vectraguard.images", "vectraguard.doctor",
    # ~7 ms with ast, dis and tokenize: value classes on the path are records
    # (vectraguard/records.py) or plain classes.
    "dataclasses", "inspect",
    # OpenSSL (~2.5 ms): short digests come from vectraguard/digests.py, and
    # `true` writes no output to hash; hmac and secrets load it too.
    "_hashlib", "hashlib", "hmac", "secrets",
    "threading",  # the allowlist's preload thread only
    "vectraguard.terminal.sequences",  # the filter for output that reaches a terminal
    "vectraguard.risk.rules", "vectraguard.approvals.gate",  # the judge: a cached decision needs neither
    "vectraguard.pool.reap", "vectraguard.runtime.reaper",  # the detached remover imports them, after the run
)


def test_a_plain_run_imports_only_what_it_uses(root: Caller, workspace: Path) -> None:
    args = ["run", "-p", "test-untrusted", "--", "true"]
    with tempfile.TemporaryDirectory() as own_cache:
        profiled = {"PYTHONPROFILEIMPORTTIME": "1", "XDG_CACHE_HOME": own_cache, "VECTRAGUARD_FORKSERVER": "0"}
        assert root.run(args, cwd=workspace, extra_env=profiled).returncode == 0  # fills the cache
        warm = root.run(args, cwd=workspace, extra_env=profiled)
    assert warm.returncode == 0
    names = imported_names(warm.stderr)
    assert "vectraguard.sandbox.compile" in names  # the check reads the run's imports
    unexpected = NOT_FOR_A_PLAIN_RUN
    if any(Path(conf).exists() for conf in ("/usr/share/containers/storage.conf", "/etc/containers/storage.conf")):
        unexpected = tuple(name for name in unexpected if name != "tomllib")  # this host has one to read
    assert sorted(name for name in names if name.startswith(unexpected)) == []


def test_short_digests_are_sha256() -> None:
    """digests.py (CPython's own SHA-256, not OpenSSL's) gives hashlib's digests."""
    import hashlib

    from vectraguard.digests import sha256_hex, sha256_of

    for data in (b"", b"abc", bytes(range(256)) * 300):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
        assert sha256_of([data, b"-", data]) == hashlib.sha256(data + b"-" + data).hexdigest()
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 B.1
