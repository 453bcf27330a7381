"""The cache of resolved profiles (config/resolved_cache.py): a repeated
resolution is served from it, and whatever the resolution rests on — a
layer file edited, added or removed, a fragment, the trusted project file,
the command line's values — makes it a miss. A corrupt, foreign or shared
cache is no cache; what may hold a secret is never written.

Everything is real: profile files in private configuration and system
directories, the trust store, the cache directory. A hit is seen by
`resolved_cache.lookup` answering (what `profiles.resolve` asks first);
every test also checks the values a resolution gives. Files written by a
test changed "just now" (private_cache.RACY_S): the tests that want an
entry kept set that margin to 0; one test keeps it and sees no entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import file_clock
from vectraguard import private_cache
from vectraguard.config import profiles, resolved_cache, trust
from vectraguard.config.flags import COMMAND_LINE
from vectraguard.config.layers import Layer
from vectraguard.config.resolved import digest

NAME = "t-cached"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    found = {"user": tmp_path / "config" / "vectraguard" / "profiles.d",
             "fragments": tmp_path / "config" / "vectraguard" / "fragments",
             "system": tmp_path / "etc" / "profiles.d", "cache": tmp_path / "cache", "data": tmp_path / "data"}
    for key in ("user", "fragments", "system"):
        found[key].mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(found["cache"]))
    monkeypatch.setenv("VECTRAGUARD_SYSTEM_DIR", str(tmp_path / "etc"))
    monkeypatch.setenv("VECTRAGUARD_DATA_DIR", str(found["data"]))
    monkeypatch.setattr(private_cache, "RACY_S", 0.0)
    monkeypatch.setattr(profiles, "_last_chain", None)
    resolved_cache.forget()
    yield found
    resolved_cache.forget()


def resolve(overrides: list[Layer] | None = None, sources: profiles.Sources | None = None) -> object:
    """A run's resolution: a new Sources object each time, as each run has."""
    return profiles.resolve(NAME, overrides or [], sources or profiles.Sources())


def cached(overrides: list[Layer] | None = None, sources: profiles.Sources | None = None) -> object:
    resolved_cache.forget()
    return resolved_cache.lookup(NAME, overrides or [], sources or profiles.Sources())


def entries(dirs: dict[str, Path]) -> list[Path]:
    where = dirs["cache"] / "vectraguard" / "resolved"
    return sorted(where.glob("*.json")) if where.is_dir() else []


def write(path: Path, text: str) -> None:
    """Write a layer, after the file clock's tick: an edit made within the
    tick of the last resolution could not show in the file's times."""
    file_clock.tick(path.parent)
    path.write_text(text)


def test_a_repeated_resolution_is_served_from_the_cache_and_equal(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\nlimits:\n  memory: 1g\n")
    assert cached() is None
    fresh = resolve()
    hit = cached()
    assert hit is not None and hit == fresh and digest(hit) == digest(fresh)  # type: ignore[arg-type]
    assert hit.limits.memory == 1 << 30  # type: ignore[attr-defined]
    [entry] = entries(dirs)
    assert entry.stat().st_mode & 0o777 == 0o600 and entry.parent.stat().st_mode & 0o777 == 0o700


def test_an_edited_layer_is_a_miss_even_at_the_same_size(dirs: dict[str, Path]) -> None:
    layer = dirs["user"] / f"{NAME}.yaml"
    write(layer, "extends: untrusted\nlimits:\n  memory: 1g\n")
    resolve()
    write(layer, "extends: untrusted\nlimits:\n  memory: 2g\n")
    assert cached() is None
    assert resolve().limits.memory == 2 << 30  # type: ignore[attr-defined]
    assert cached() is not None


def test_a_new_file_in_a_higher_layer_and_its_removal_are_misses(dirs: dict[str, Path]) -> None:
    write(dirs["system"] / f"{NAME}.yaml", "extends: untrusted\nlimits:\n  pids: 100\n")
    assert resolve().limits.pids == 100  # type: ignore[attr-defined]
    user = dirs["user"] / f"{NAME}.yaml"
    write(user, "limits:\n  pids: 50\n")
    assert cached() is None
    assert resolve().limits.pids == 50  # type: ignore[attr-defined]
    user.unlink()
    assert cached() is None
    assert resolve().limits.pids == 100  # type: ignore[attr-defined]


def test_an_edited_fragment_is_a_miss(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\ninclude: [t-frag]\n")
    fragment = dirs["fragments"] / "t-frag.yaml"
    write(fragment, "limits:\n  pids: 64\n")
    assert resolve().limits.pids == 64  # type: ignore[attr-defined]
    write(fragment, "limits:\n  pids: 65\n")
    assert cached() is None
    assert resolve().limits.pids == 65  # type: ignore[attr-defined]


def test_a_replaced_parent_profile_is_a_miss(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: t-parent\n")
    parent = dirs["user"] / "t-parent.yaml"
    write(parent, "extends: untrusted\nlimits:\n  pids: 70\n")
    resolve()
    replacement = dirs["user"] / "t-parent.new"
    write(replacement, "extends: untrusted\nlimits:\n  pids: 71\n")
    os.replace(replacement, parent)
    assert cached() is None
    assert resolve().limits.pids == 71  # type: ignore[attr-defined]


def test_trusting_a_new_version_of_the_project_file_is_a_miss(dirs: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    path = project / ".vectraguard.yaml"
    first = f"version: 1\nprofiles:\n  {NAME}:\n    extends: untrusted\n    limits:\n      pids: 80\n".encode()
    path.write_bytes(first)
    trust.trust(path, first)
    sources = profiles.Sources.for_directory(str(project), ignore_project=False)
    assert resolve(sources=sources).limits.pids == 80  # type: ignore[attr-defined]
    assert cached(sources=profiles.Sources.for_directory(str(project), ignore_project=False)) is not None
    second = first.replace(b"80", b"81")
    file_clock.tick(project)
    path.write_bytes(second)
    trust.trust(path, second)
    again = profiles.Sources.for_directory(str(project), ignore_project=False)
    assert cached(sources=again) is None
    assert resolve(sources=again).limits.pids == 81  # type: ignore[attr-defined]


def test_the_command_lines_values_are_part_of_the_key(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\n")
    flags = [Layer(COMMAND_LINE, {"limits": {"pids": 33}}, {})]
    assert resolve(flags).limits.pids == 33  # type: ignore[attr-defined]
    assert cached(flags) is not None
    assert cached([Layer(COMMAND_LINE, {"limits": {"pids": 34}}, {})]) is None
    assert resolve().limits.pids != 33  # type: ignore[attr-defined]


def test_environment_values_and_proxy_urls_are_never_written(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\n")
    resolve([Layer(COMMAND_LINE, {"env": {"set": {"TOKEN": "s3cret"}}}, {})])
    assert entries(dirs) == []
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\nnetwork:\n  upstream_proxy: http://u:pw@proxy.test:3128\n")
    resolve()
    assert entries(dirs) == []


def test_a_layer_changed_just_now_is_not_kept(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private_cache, "RACY_S", 2.0)
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\n")
    resolve()
    assert entries(dirs) == [] and cached() is None


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not-json", "empty"])
def test_a_corrupt_entry_is_ignored(dirs: dict[str, Path], damage: str) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\nlimits:\n  pids: 90\n")
    resolve()
    [entry] = entries(dirs)
    data = entry.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "flipped": data.replace(b'"pids":90', b'"pids":91'),
               "not-json": data[:65] + b"{", "empty": b""}[damage]
    assert damaged != data
    entry.write_bytes(damaged)
    assert cached() is None
    assert resolve().limits.pids == 90  # type: ignore[attr-defined]
    assert cached() is not None  # written again, whole


def test_an_entry_open_to_others_or_in_a_shared_directory_is_ignored(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\n")
    resolve()
    [entry] = entries(dirs)
    entry.chmod(0o644)
    assert cached() is None
    entry.chmod(0o600)
    assert cached() is not None
    entry.parent.chmod(0o755)
    assert cached() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_entry_owned_by_another_user_is_ignored(dirs: dict[str, Path]) -> None:
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\n")
    resolve()
    [entry] = entries(dirs)
    os.chown(entry, 65534, 65534)
    assert cached() is None
    os.chown(entry, 0, 0)
    os.chown(entry.parent, 65534, 65534)
    assert cached() is None


def test_an_entry_for_another_key_is_not_taken(dirs: dict[str, Path]) -> None:
    """An entry copied under another entry's name (same user, valid checksum) is refused by its key."""
    write(dirs["user"] / f"{NAME}.yaml", "extends: untrusted\nlimits:\n  pids: 40\n")
    resolve()
    write(dirs["user"] / "t-other.yaml", "extends: untrusted\nlimits:\n  pids: 41\n")
    profiles.resolve("t-other", [], profiles.Sources())
    mine = resolved_cache.key(NAME, [], profiles.Sources())
    other = resolved_cache.key("t-other", [], profiles.Sources())
    where = dirs["cache"] / "vectraguard" / "resolved"
    (where / f"{mine}.json").write_bytes((where / f"{other}.json").read_bytes())
    assert cached() is None
    assert resolve().limits.pids == 40  # type: ignore[attr-defined]


def test_the_second_resolution_of_a_run_rests_on_the_same_files(dirs: dict[str, Path]) -> None:
    """A run resolves with its command line, then without it (the gate): when
    the first came from the cache and a file changed in between, the second
    refuses rather than judge other layers than the run uses."""
    layer = dirs["user"] / f"{NAME}.yaml"
    write(layer, "extends: untrusted\nlimits:\n  pids: 20\n")
    flags = [Layer(COMMAND_LINE, {"limits": {"memory": "1g"}}, {})]
    profiles.resolve(NAME, flags, profiles.Sources())
    profiles._last_chain = None
    resolved_cache.forget()
    sources = profiles.Sources()
    assert profiles.resolve(NAME, flags, sources).limits.pids == 20  # type: ignore[attr-defined]  # a hit
    write(layer, "extends: untrusted\nlimits:\n  pids: 21\n")
    from vectraguard.errors import ConfigError

    with pytest.raises(ConfigError, match="changed while this run was being prepared"):
        profiles.resolve(NAME, [], sources)
