"""The compiler is pure: same inputs, same spec — checked against golden files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vectraguard import records
from vectraguard.config import profiles
from vectraguard.errors import LimitNotEnforceable
from vectraguard.runtime.host import HostFacts
from vectraguard.sandbox.compile import compile_spec
from vectraguard.sandbox.mounts import Mount
from vectraguard.sandbox.request import RunRequest

GOLDEN = Path(__file__).parent / "golden"
ROOTFUL = HostFacts(rootless=False, uid=0, cgroup_mode="hybrid", nofile_hard=20000, nproc_hard=-1,
                    oci_runtime="runc", init_path="/usr/bin/tini-static", limits_enforced=True, why_not_enforced="")
ROOTLESS_V1 = HostFacts(rootless=True, uid=1001, cgroup_mode="v1", nofile_hard=512, nproc_hard=100,
                        oci_runtime="runc", init_path=None, limits_enforced=False,
                        why_not_enforced="rootless Podman cannot enforce cpu, memory or pids limits on cgroups v1")
REQUEST = RunRequest(
    argv=("sh", "-c", "echo hi"), profile="untrusted", cwd="/home/alice/app",
    host_env=(("TERM", "xterm"), ("AWS_SECRET_ACCESS_KEY", "s3cr3t"), ("HTTPS_PROXY", "http://p:1"), ("KEEP", "k")),
    session_id="0190000000000abcdef", owner="4242:123456",
)
MOUNTS = (Mount("/home/alice/app", "/workspace", True),)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VECTRAGUARD_SYSTEM_DIR", str(tmp_path / "etc"))


def compiled_specgen(host: HostFacts, profile_name: str = "untrusted") -> dict[str, object]:
    profile = profiles.resolve(profile_name, [])
    result = compile_spec(profile, REQUEST, host, image="sha256:feed", mounts=MOUNTS,
                          seccomp_profile_path="/usr/share/vectraguard/profiles/seccomp/strict.json")
    return result.spec.to_specgen("/run/vectraguard/sessions/0190000000000abcdef.hosts")


def test_untrusted_rootful_matches_the_golden_file() -> None:
    actual = compiled_specgen(ROOTFUL)
    golden = GOLDEN / "untrusted-rootful.json"
    if os.environ.get("VECTRAGUARD_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(golden.read_text())


def test_compile_is_deterministic() -> None:
    assert compiled_specgen(ROOTFUL) == compiled_specgen(ROOTFUL)


def test_environment_is_an_allowlist_and_proxies_never_pass() -> None:
    env = compiled_specgen(ROOTFUL)["env"]
    assert env == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "HOME": "/home/sandbox", "TERM": "xterm", "LANG": "C.UTF-8"}


def test_rlimits_never_exceed_the_callers_hard_limits() -> None:
    host = HostFacts(**{**ROOTFUL.__dict__, "nofile_hard": 512, "nproc_hard": 100})
    limits = {r["type"]: r for r in compiled_specgen(host)["r_limits"]}  # type: ignore[attr-defined]
    assert limits["nofile"] == {"type": "nofile", "soft": 512, "hard": 512}
    assert limits["nproc"] == {"type": "nproc", "soft": 100, "hard": 100}


def test_strict_limits_are_refused_where_they_cannot_be_enforced() -> None:
    with pytest.raises(LimitNotEnforceable) as error:
        compiled_specgen(ROOTLESS_V1)
    assert error.value.message == ("vectraguard: profile 'untrusted' requires cpu, memory and pids limits, but "
                                   "rootless Podman cannot enforce cpu, memory or pids limits on cgroups v1")


def test_best_effort_drops_cgroup_limits_keeps_rlimits(tmp_path: Path) -> None:
    directory = tmp_path / "config" / "vectraguard" / "profiles.d"
    directory.mkdir(parents=True)
    (directory / "be.yaml").write_text("extends: untrusted\nlimits:\n  enforcement: best-effort\n")
    profile = profiles.resolve("be", [])
    result = compile_spec(profile, REQUEST, ROOTLESS_V1, image="sha256:feed", mounts=MOUNTS,
                          seccomp_profile_path="/s.json")
    specgen = result.spec.to_specgen("/tmp/x.hosts")
    assert specgen["resource_limits"] == {}
    assert "userns" not in specgen  # rootless Podman has its own user namespace already
    assert {r["type"]: r["hard"] for r in specgen["r_limits"]} == {"nofile": 512, "nproc": 100}
    assert result.notices and result.notices[0].startswith("limits are best-effort")


def test_an_agent_gets_its_repository_and_a_home_volume() -> None:
    """Started in a subdirectory of a repository: the repository is the workspace,
    the command starts in the subdirectory's place, $HOME is the agent's volume."""
    request = records.replace(REQUEST, cwd="/home/alice/app/src/lib", workspace="/home/alice/app",
                              home_volume="vectraguard-agent-claude-code")
    profile = profiles.resolve("claude-code", [])
    specgen = compile_spec(profile, request, ROOTFUL, image="sha256:feed", mounts=MOUNTS,
                           seccomp_profile_path="/s.json").spec.to_specgen("/tmp/x.hosts")
    assert specgen["work_dir"] == "/workspace/src/lib"
    assert specgen["volumes"] == [{"Name": "vectraguard-agent-claude-code", "Dest": "/home/sandbox",
                                   "Options": ["rw", "nosuid", "nodev", "U"]}]
    assert [m["destination"] for m in specgen["mounts"] if m["type"] == "tmpfs"] == ["/tmp"]
    assert specgen["env"]["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert "ANTHROPIC_API_KEY" not in specgen["env"]  # allowed, but not set in this caller's environment
