"""Shipped profiles, extends chains, merge rules and provenance."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vectraguard import resources
from vectraguard.config import profiles
from vectraguard.config.layers import Layer, load_file
from vectraguard.config.merge import merge
from vectraguard.errors import ConfigError


@pytest.fixture
def user_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "config" / "vectraguard" / "profiles.d"
    directory.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VECTRAGUARD_SYSTEM_DIR", str(tmp_path / "etc"))
    yield directory


@pytest.mark.parametrize("path", sorted(Path(resources.profiles_dir()).glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_profile_is_valid_and_resolves(path: Path, user_profiles: Path) -> None:
    text = path.read_text()
    assert text.startswith(f"# {path.stem} — "), "each shipped profile starts with a header saying what it is for"
    load_file(path, "profile")
    profile = profiles.resolve(path.stem, [])
    if profile.agent is None:
        assert profile.network_mode == "none"
    else:  # an agent reaches its provider's API over HTTPS, nothing else
        assert profile.network_mode in ("none", "allowlist")
        assert all(entry.endswith(":443") and "*" not in entry for entry in profile.network_allow)
        assert profile.workspace_mode == "overlay" and profile.agent.home == "volume"
    assert profile.user != "0:0"
    assert profile.limits.enforcement == "strict"


def test_untrusted_is_stricter_than_default(user_profiles: Path) -> None:
    default, untrusted = profiles.resolve("default", []), profiles.resolve("untrusted", [])
    assert untrusted.limits.memory < default.limits.memory
    assert untrusted.limits.pids < default.limits.pids
    assert untrusted.limits.timeout < default.limits.timeout
    assert untrusted.workspace_mode == "ro"
    assert untrusted.provenance["limits.memory"].source.endswith("untrusted.yaml")
    assert untrusted.provenance["image"].source.endswith("default.yaml")


def test_user_profile_merges_over_its_parent_with_provenance(user_profiles: Path) -> None:
    mine = user_profiles / "mine.yaml"
    mine.write_text("extends: untrusted\nlimits:\n  memory: 1Gi\nenv:\n  set:\n    MODE: x\n")
    profile = profiles.resolve("mine", [])
    assert profile.limits.memory == 1 << 30
    assert profile.limits.pids == 128  # from untrusted
    assert profile.env_set == {"MODE": "x"}
    assert str(profile.provenance["limits.memory"]) == f"{mine}:3"


def test_mounts_merge_by_target(user_profiles: Path) -> None:
    (user_profiles / "a.yaml").write_text(
        "extends: default\nfilesystem:\n  mounts:\n    - {source: /srv/one, target: /one}\n"
        "    - {source: /srv/two, target: /two}\n")
    overlay = Layer("command line", {"filesystem": {"mounts": [{"source": "/srv/new", "target": "/two", "mode": "rw"}]}}, {})
    profile = profiles.resolve("a", [overlay])
    assert [(m.source, m.target, m.mode) for m in profile.mounts] == [
        ("/srv/one", "/one", "ro"), ("/srv/new", "/two", "rw")]


def test_allowlists_replace(user_profiles: Path) -> None:
    (user_profiles / "a.yaml").write_text("extends: default\nenv:\n  allow: [A, B]\n")
    (user_profiles / "b.yaml").write_text("extends: a\nenv:\n  allow: [C]\n")
    assert profiles.resolve("b", []).env_allow == ("C",)


def test_extends_cycle_and_missing_parent(user_profiles: Path) -> None:
    (user_profiles / "x.yaml").write_text("extends: y\n")
    (user_profiles / "y.yaml").write_text("extends: x\n")
    with pytest.raises(ConfigError) as error:
        profiles.resolve("x", [])
    assert error.value.lines() == ["vectraguard: profile 'x' extends itself in a cycle", "  x -> y -> x"]
    (user_profiles / "z.yaml").write_text("extends: nowhere\n")
    with pytest.raises(ConfigError) as error:
        profiles.resolve("z", [])
    assert error.value.message == "vectraguard: unknown profile 'nowhere' (extended by profile 'z')"


def test_extends_depth_is_bounded(user_profiles: Path) -> None:
    for i in range(20):
        (user_profiles / f"p{i}.yaml").write_text(f"extends: p{i + 1}\n" if i < 19 else "extends: default\n")
    with pytest.raises(ConfigError) as error:
        profiles.resolve("p0", [])
    assert "more than 16 levels of extends" in error.value.message


def test_invalid_values_are_located(user_profiles: Path) -> None:
    bad = user_profiles / "bad.yaml"
    bad.write_text("extends: default\nlimits:\n  memory: 12x\n  timeout: 0s\n")
    with pytest.raises(ConfigError) as error:
        profiles.resolve("bad", [])
    assert error.value.details == (
        f"{bad}:3: limits.memory: '12x' is not a size (expected e.g. 512Mi, 2G or a byte count)",
        f"{bad}:4: limits.timeout: duration must be greater than zero, got '0s'",
    )


def test_validated_files_are_cached_and_bad_ones_are_not(user_profiles: Path, tmp_path: Path) -> None:
    good = user_profiles / "good.yaml"
    good.write_text("extends: default\n")
    load_file(good, "profile")
    entries = list((tmp_path / "cache" / "vectraguard" / "validated").glob("*.json"))
    assert len(entries) == 1
    bad = user_profiles / "bad.yaml"
    bad.write_text("nope: 1\n")
    with pytest.raises(ConfigError):
        load_file(bad, "profile")
    assert len(list((tmp_path / "cache" / "vectraguard" / "validated").glob("*.json"))) == 1


def test_cache_in_a_shared_directory_is_ignored(user_profiles: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "vectraguard" / "validated"
    cache.mkdir(parents=True)
    os.chmod(cache, 0o777)
    good = user_profiles / "good.yaml"
    good.write_text("extends: default\n")
    load_file(good, "profile")
    assert list(cache.glob("*.json")) == []


def test_merge_keeps_the_last_writer() -> None:
    a = Layer("a.yaml", {"limits": {"cpus": 1, "pids": 5}}, {"limits.cpus": 2})
    b = Layer("b.yaml", {"limits": {"cpus": 2}}, {"limits.cpus": 7})
    merged = merge([a, b])
    assert merged.data == {"limits": {"cpus": 2, "pids": 5}}
    assert str(merged.provenance["limits.cpus"]) == "b.yaml:7"
    assert str(merged.provenance["limits.pids"]) == "a.yaml"


@pytest.mark.parametrize("path", sorted((Path(resources.profiles_dir()) / "fragments").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_shipped_fragment_is_valid_and_named_by_intent(path: Path, user_profiles: Path) -> None:
    # Switches are named by intent; the one data fragment (the risk rules) by what it holds.
    assert path.stem.split("-")[0] in ("allow", "deny") or path.stem == "risk-rules", \
        "fragments are named allow-* or deny-*"
    assert path.read_text().startswith(f"# {path.stem} — ")
    layer = load_file(path, "profile")
    assert "extends" not in layer.data and "include" not in layer.data
    (user_profiles / "uses.yaml").write_text(f"extends: untrusted\ninclude: [{path.stem}]\n")
    profiles.resolve("uses", [])


def test_fragments_merge_after_the_parent_and_before_the_profile(user_profiles: Path) -> None:
    mine = user_profiles / "mine.yaml"
    mine.write_text("extends: untrusted\ninclude: [allow-workspace-write, deny-exec-in-tmp]\n"
                    "filesystem:\n  tmp_size: 1Gi\n")
    profile = profiles.resolve("mine", [])
    assert (profile.workspace_mode, profile.noexec_tmpfs, profile.tmp_size) == ("rw", True, 1 << 30)
    assert profile.provenance["filesystem.workspace.mode"].source.endswith("fragments/allow-workspace-write.yaml")
    assert str(profile.provenance["filesystem.tmp_size"]) == f"{mine}:4"
    mine.write_text("extends: untrusted\ninclude: [allow-workspace-write]\nfilesystem:\n  workspace:\n    mode: ro\n")
    assert profiles.resolve("mine", []).workspace_mode == "ro"  # the profile's own keys win


def test_unknown_or_misbehaving_fragments_are_errors(user_profiles: Path, tmp_path: Path) -> None:
    (user_profiles / "mine.yaml").write_text("include: [nowhere]\n")
    with pytest.raises(ConfigError) as error:
        profiles.resolve("mine", [])
    assert error.value.message == f"vectraguard: unknown fragment 'nowhere' (included by {user_profiles}/mine.yaml)"
    fragments = tmp_path / "config" / "vectraguard" / "fragments"
    fragments.mkdir()
    (fragments / "sneaky.yaml").write_text("extends: default\n")
    (user_profiles / "mine.yaml").write_text("include: [sneaky]\n")
    with pytest.raises(ConfigError) as error:
        profiles.resolve("mine", [])
    assert error.value.message == f"vectraguard: {fragments}/sneaky.yaml: a fragment may not use extends or include"
