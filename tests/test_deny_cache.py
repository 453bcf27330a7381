"""The cache of the mount deny list (sandbox/deny_cache.py): a repeated run
gets the very list a fresh resolution gives, and any change to what the
list was resolved from — a symbolic link made, retargeted or removed on a
rule's path, the system policy's denied paths or sockets, the environment
the rules read, a storage.conf — gives the fresh list. A corrupt or
foreign entry is no entry.

Real directories and links in a temporary home; the cache directory is
private to the test. "Fresh" is the list built with caching off (a cache
directory that is not private: private_cache ignores it), compared whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import file_clock
from vectraguard import private_cache
from vectraguard.sandbox import mounts
from vectraguard.sandbox.mounts import DenyList


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    place = tmp_path / "home"
    place.mkdir()
    (tmp_path / "cache").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(private_cache, "RACY_S", 0.0)
    yield place


def tick() -> None:
    file_clock.tick(Path(os.environ["XDG_CACHE_HOME"]).parent)


def denied(home: Path, policy: tuple[str, ...] = (), sockets: tuple[str, ...] = ()) -> DenyList:
    return mounts.denied_sources(str(home), (), policy, allowed_sockets=sockets)


def fresh(home: Path, monkeypatch: pytest.MonkeyPatch, policy: tuple[str, ...] = (),
          sockets: tuple[str, ...] = ()) -> DenyList:
    with monkeypatch.context() as patch:
        shared = Path(os.environ["XDG_CACHE_HOME"]).parent / "shared-cache"
        shared.mkdir(mode=0o777, exist_ok=True)
        shared.chmod(0o777)
        patch.setenv("XDG_CACHE_HOME", str(shared))
        return denied(home, policy, sockets)


def entries() -> list[Path]:
    where = Path(os.environ["XDG_CACHE_HOME"]) / "vectraguard" / "denied"
    return sorted(where.glob("*.json")) if where.is_dir() else []


def served(home: Path, policy: tuple[str, ...] = (), sockets: tuple[str, ...] = ()) -> bool:
    """Whether the cache answers for these inputs now."""
    from vectraguard.sandbox import deny_cache

    parts = {"home": str(home), "homes": mounts._login_homes(str(home)), "extra": [], "policy": list(policy),
             "sockets": list(sockets), "user": mounts._user_name(), "shipped": mounts._shipped()}
    return deny_cache.lookup(deny_cache.key(parts, mounts.engine_settings_files(str(home)))) is not None


def paths_of(listed: DenyList) -> set[str]:
    return {rule.path for rule in listed.rules}


def test_a_repeated_list_is_served_from_the_cache_and_equal(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = denied(home)
    assert served(home) and len(entries()) == 1
    assert denied(home) == first == fresh(home, monkeypatch)
    assert entries()[0].stat().st_mode & 0o777 == 0o600


def test_a_link_made_retargeted_or_removed_on_a_rules_path_is_a_miss(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere, other = tmp_path / "keys", tmp_path / "other-keys"
    elsewhere.mkdir()
    other.mkdir()
    denied(home)
    tick()
    (home / ".ssh").symlink_to(elsewhere)
    assert not served(home)
    now = denied(home)
    assert str(elsewhere) in paths_of(now) and now == fresh(home, monkeypatch)
    tick()
    (home / ".ssh").unlink()
    (home / ".ssh").symlink_to(other)
    assert not served(home)
    now = denied(home)
    assert str(other) in paths_of(now) and str(elsewhere) not in paths_of(now)
    tick()
    (home / ".ssh").unlink()
    assert not served(home)
    assert str(other) not in paths_of(denied(home))


def test_a_link_above_a_rules_path_is_a_miss(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """~/.config/containers is a rule: ~/.config becoming a link moves it."""
    real_config = tmp_path / "real-config"
    (real_config / "containers").mkdir(parents=True)
    denied(home)
    tick()
    (home / ".config").symlink_to(real_config)
    assert not served(home)
    assert str(real_config / "containers") in paths_of(denied(home))
    assert denied(home) == fresh(home, monkeypatch)


def test_the_policys_denied_paths_and_sockets_are_part_of_the_key(home: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    denied(home)
    secret = str(tmp_path / "policy-secret")
    assert not served(home, (secret,))
    assert secret in paths_of(denied(home, (secret,)))
    assert secret not in paths_of(denied(home))
    sockets = (str(tmp_path / "agent.sock"),)
    assert denied(home, sockets=sockets).allowed_sockets == sockets
    assert denied(home).allowed_sockets == ()
    assert denied(home, (secret,), sockets) == fresh(home, monkeypatch, (secret,), sockets)


def test_the_environment_the_rules_read_is_part_of_the_key(home: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    denied(home)
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert not served(home)
    assert any(path.startswith(str(runtime) + "/") for path in paths_of(denied(home)))


def test_an_edited_storage_conf_is_a_miss(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text('[storage]\ngraphroot = "/srv/store-one"\n')
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    assert "/srv/store-one" in paths_of(denied(home))
    assert served(home)
    tick()
    conf.write_text('[storage]\ngraphroot = "/srv/store-two"\n')
    assert not served(home)
    now = denied(home)
    assert "/srv/store-two" in paths_of(now) and "/srv/store-one" not in paths_of(now)


def test_a_storage_conf_changed_just_now_is_not_kept(home: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private_cache, "RACY_S", 2.0)
    conf = tmp_path / "storage.conf"
    conf.write_text('[storage]\ngraphroot = "/srv/store-one"\n')
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    assert "/srv/store-one" in paths_of(denied(home))
    assert entries() == []


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty"])
def test_a_corrupt_entry_is_ignored(home: Path, damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = denied(home)
    [entry] = entries()
    data = entry.read_bytes()
    target = f'"{home}/.ssh"'.encode()
    damaged = {"truncated": data[: len(data) // 2], "flipped": data.replace(target, f'"{home}/.ssx"'.encode()),
               "empty": b""}[damage]
    assert damaged != data
    entry.write_bytes(damaged)
    assert not served(home)
    assert denied(home) == first == fresh(home, monkeypatch)


def test_an_entry_open_to_others_is_ignored(home: Path) -> None:
    denied(home)
    [entry] = entries()
    entry.chmod(0o640)
    assert not served(home)
    entry.chmod(0o600)
    assert served(home)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_entry_owned_by_another_user_is_ignored(home: Path) -> None:
    denied(home)
    [entry] = entries()
    os.chown(entry, 65534, 65534)
    assert not served(home)


def test_only_directories_that_can_vouch_for_their_entries_are_trusted(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel file systems keep no timestamp of their entries; a directory changed just now could change
    again unseen: the entries of both are lstat'ed on every use."""
    from vectraguard.sandbox import deny_cache

    found = deny_cache._directories([["/proc/sys/kernel", False, "/proc/sys/kernel"], ["/sys/fs", False, "/sys/fs"],
                                     [str(home / ".ssh"), False, str(home / ".ssh")], ["/etc/shadow", False, "/etc/shadow"]])
    assert found["/proc/sys"] is None and found["/sys"] is None
    assert found[str(home)] is not None and found["/etc"] is not None
    monkeypatch.setattr(private_cache, "RACY_S", 2.0)
    (home / "new").touch()
    assert deny_cache._directories([[str(home / ".ssh"), False, str(home / ".ssh")]])[str(home)] is None
