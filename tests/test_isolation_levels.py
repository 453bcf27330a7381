"""`isolation: container | gvisor | lite` (vectraguard/isolation/): the setting,
the runtime it compiles to, the policy minimum, refusals — no sandbox here;
what a gVisor sandbox is like from inside: tests/test_isolation_gvisor.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vectraguard import records
from vectraguard.config import flags, policy, profiles
from vectraguard.config.layers import validated_layer
from vectraguard.errors import IsolationUnavailable, LimitNotEnforceable
from vectraguard.isolation import gvisor, levels
from vectraguard.runtime.host import HostFacts
from vectraguard.sandbox.compile import (
    GVISOR_PIDS_BASE,
    GVISOR_PIDS_PER_PROCESS,
    compile_spec,
)
from vectraguard.sandbox.mounts import Mount
from vectraguard.sandbox.request import RunRequest

ROOTFUL = HostFacts(rootless=False, uid=0, cgroup_mode="hybrid", nofile_hard=20000, nproc_hard=-1,
                    oci_runtime="/usr/bin/runc", init_path=None, limits_enforced=True, why_not_enforced="",
                    gvisor_dir="/opt/vg/libexec", why_no_gvisor="", why_no_lite="")
NO_GVISOR = records.replace(ROOTFUL, gvisor_dir=None, why_no_gvisor="gVisor's runsc is not installed at /usr/bin/runsc")
ROOTLESS = records.replace(ROOTFUL, rootless=True, uid=1000)
REQUEST = RunRequest(argv=("true",), profile="untrusted", cwd="/home/alice/app", host_env=(),
                     session_id="0190000000000abcdef", owner="4242:123456")
MOUNTS = (Mount("/home/alice/app", "/workspace", True),)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VECTRAGUARD_SYSTEM_DIR", str(tmp_path / "etc"))


def _profile(**values: object) -> profiles.ResolvedProfile:
    layer = validated_layer(flags.COMMAND_LINE, _nested(values), "profile")
    return profiles.resolve("untrusted", [layer])


def _nested(values: dict[str, object]) -> dict[str, object]:
    data: dict[str, object] = {}
    for path, value in values.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = value
    return data


def _compile(host: HostFacts, **values: object) -> object:
    return compile_spec(_profile(**values), REQUEST, host, image="sha256:feed", mounts=MOUNTS,
                        seccomp_profile_path="/s.json")


def test_the_default_is_container_on_the_hosts_runtime() -> None:
    profile = profiles.resolve("untrusted", [])
    assert profile.isolation == "container"
    spec = compile_spec(profile, REQUEST, ROOTFUL, image="x", mounts=MOUNTS, seccomp_profile_path="/s.json").spec
    assert spec.oci_runtime == "/usr/bin/runc"


@pytest.mark.parametrize(("network", "wrapper"), [("none", "runsc-none"), ("allowlist", "runsc-host"),
                                                  ("full", "runsc-host")])
def test_gvisor_compiles_to_its_wrapper_for_the_network(network: str, wrapper: str) -> None:
    extra = {"network.allow": ["example.com"]} if network == "allowlist" else {}
    spec = _compile(ROOTFUL, isolation="gvisor", **{"network.mode": network}, **extra).spec  # type: ignore[attr-defined]
    assert spec.oci_runtime == f"/opt/vg/libexec/{wrapper}"
    own = profiles.resolve("untrusted", []).limits.pids
    assert spec.pids == own * GVISOR_PIDS_PER_PROCESS + GVISOR_PIDS_BASE
    nproc = {r.name: r.soft for r in spec.rlimits}["nproc"]
    assert nproc == profiles.resolve("untrusted", []).limits.pids  # inside, the profile's own limit


def test_gvisor_where_it_is_not_installed_is_refused_with_the_reason() -> None:
    with pytest.raises(IsolationUnavailable) as refused:
        _compile(NO_GVISOR, isolation="gvisor")
    assert "runsc is not installed" in str(refused.value) and "set by command line" in str(refused.value)
    assert refused.value.exit_status == 125


def test_gvisor_rootless_needs_best_effort_limits() -> None:
    with pytest.raises(LimitNotEnforceable, match="gVisor cannot use cgroups rootless"):
        _compile(ROOTLESS, isolation="gvisor")
    compiled = _compile(ROOTLESS, isolation="gvisor", **{"limits.enforcement": "best-effort"})
    assert compiled.spec.oci_runtime == "/opt/vg/libexec/runsc-none-rootless"  # type: ignore[attr-defined]
    assert compiled.spec.pids is None and any("best-effort" in n for n in compiled.notices)  # type: ignore[attr-defined]


def test_gvisor_with_an_overlay_workspace_is_refused_before_anything_starts() -> None:
    """Found by a blind attack: `-p dev --isolation gvisor` failed late, blaming a user namespace."""
    with pytest.raises(IsolationUnavailable, match="overlay workspace") as refused:
        _compile(ROOTFUL, isolation="gvisor", **{"filesystem.workspace.mode": "overlay"})
    assert "--workspace ro" in (refused.value.hint or "")


def test_lite_compiles_to_no_oci_runtime_with_its_own_cgroup_limits() -> None:
    compiled = _compile(ROOTFUL, isolation="lite")
    spec = compiled.spec  # type: ignore[attr-defined]
    own = profiles.resolve("untrusted", []).limits
    assert spec.oci_runtime is None and spec.pids == own.pids and spec.memory == own.memory
    assert not spec.private_userns and not spec.keep_id


def test_lite_where_it_cannot_run_is_refused_with_the_reason() -> None:
    host = records.replace(ROOTFUL, why_no_lite="bubblewrap is not installed at /usr/bin/bwrap")
    with pytest.raises(IsolationUnavailable, match="this host cannot give: bubblewrap is not installed"):
        _compile(host, isolation="lite")


@pytest.mark.parametrize(("values", "words"), [
    ({"filesystem.workspace.mode": "overlay"}, "overlay workspace"),
    ({"network.mode": "full"}, "network full"),
])
def test_lite_refuses_what_it_cannot_give_before_anything_starts(values: dict[str, object], words: str) -> None:
    with pytest.raises(IsolationUnavailable, match=words) as refused:
        _compile(ROOTFUL, isolation="lite", **values)
    assert "set by command line" in str(refused.value)


def test_lite_rootless_needs_best_effort_limits_and_runs_as_the_caller() -> None:
    with pytest.raises(LimitNotEnforceable, match="isolation lite makes cgroups only as root"):
        _compile(ROOTLESS, isolation="lite")
    compiled = _compile(ROOTLESS, isolation="lite", **{"limits.enforcement": "best-effort"})
    assert compiled.spec.pids is None and compiled.spec.keep_id  # type: ignore[attr-defined]


def test_an_unknown_level_is_a_located_schema_error() -> None:
    from vectraguard.errors import ConfigError

    with pytest.raises(ConfigError) as bad:
        _profile(isolation="vm")
    assert "isolation" in str(bad.value) or "isolation" in "".join(bad.value.lines())


def test_only_a_changed_level_changes_the_profile_digest() -> None:
    from vectraguard.config.resolved import digest

    base = profiles.resolve("untrusted", [])
    assert digest(_profile(isolation="container")) == digest(base)  # approvals bound to it still hold
    assert digest(_profile(isolation="gvisor")) != digest(base)


def _policy(tmp_path: Path, text: str) -> policy.Policy:
    system = Path(os.environ["VECTRAGUARD_SYSTEM_DIR"])
    system.mkdir(parents=True, exist_ok=True)
    (system / "policy.yaml").write_text(text)
    loaded = policy.load()
    assert loaded is not None
    return loaded


def test_the_policy_minimum_refuses_a_weaker_level_and_names_both_files(tmp_path: Path) -> None:
    rules = _policy(tmp_path, "version: 1\nsecurity:\n  isolation_minimum: gvisor\n")
    [problem] = policy.check_profile(profiles.resolve("untrusted", []), rules)
    assert "container is weaker than the minimum isolation gvisor" in problem.message
    assert "security.isolation_minimum" in problem.message and "policy.yaml:3" in problem.message
    assert policy.check_profile(_profile(isolation="gvisor"), rules) == []


def test_a_minimum_for_one_profile_applies_to_that_name_only(tmp_path: Path) -> None:
    rules = _policy(tmp_path, "version: 1\nsecurity:\n  isolation_minimum: lite\n"
                    "  isolation_minimum_for:\n    untrusted: gvisor\n")
    [problem] = policy.check_profile(profiles.resolve("untrusted", []), rules)
    assert "security.isolation_minimum_for.untrusted" in problem.message
    assert policy.check_profile(profiles.resolve("dev", []), rules) == []


def test_a_bad_policy_level_is_refused_by_its_schema(tmp_path: Path) -> None:
    from vectraguard.errors import ConfigError

    with pytest.raises(ConfigError):
        _policy(tmp_path, "version: 1\nsecurity:\n  isolation_minimum: vm\n")


def test_levels_are_ordered_weakest_first() -> None:
    assert levels.LEVELS == ("lite", "container", "gvisor")
    assert levels.at_least("gvisor", "container") and not levels.at_least("lite", "container")
    with pytest.raises(ValueError, match="not an isolation level"):
        levels.rank("vm")


def test_wrappers_are_trusted_only_when_nobody_else_can_change_them(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.access(gvisor.RUNSC, os.X_OK):
        pytest.skip("runsc is not installed here (contrib/install.sh installs it)")
    directory = tmp_path / "libexec"
    directory.mkdir()
    for name in gvisor.WRAPPERS.values():
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    assert gvisor.why_not(str(directory)) == ""
    (directory / "runsc-host").chmod(0o777)
    assert "others may change it" in gvisor.why_not(str(directory))
    (directory / "runsc-host").unlink()
    assert "runsc-host is missing" in gvisor.why_not(str(directory))
