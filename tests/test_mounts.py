"""The one canonicalizer for mount paths, and the built-in deny rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vectraguard.config.problems import Origin
from vectraguard.errors import PolicyError
from vectraguard.sandbox import mounts

HERE = Origin("test.yaml", 3)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home" / "alice"
    for sub in (".ssh", ".aws", ".config/containers", "projects/app"):
        (home / sub).mkdir(parents=True)
    return home


def make(source: str, target: str, home: Path, cwd: Path | None = None) -> mounts.Mount:
    denied = mounts.denied_sources(str(home), ("/var/lib/vg-state",))
    return mounts.make_mount(source, target, "ro", cwd=str(cwd or home / "projects"), origin=HERE, denied=denied)


def test_a_project_inside_home_is_fine(home: Path) -> None:
    m = make("app", "/work", home)
    assert m == mounts.Mount(str(home / "projects" / "app"), "/work", True)


@pytest.mark.parametrize(("source", "reason"), [
    ("{home}", "it exposes {home} (your home directory itself)"),
    ("{parent}", "it exposes {home} (your home directory itself)"),
    ("{home}/.ssh", "it exposes {home}/.ssh (credentials or container configuration)"),
    ("{home}/.config", "it exposes {home}/.config/containers (credentials or container configuration)"),
    ("{home}/.aws", "it exposes {home}/.aws (credentials or container configuration)"),
])
def test_home_and_secrets_are_refused(home: Path, source: str, reason: str) -> None:
    with pytest.raises(PolicyError) as error:
        make(source.format(home=home, parent=home.parent), "/x", home)
    real = os.path.realpath(source.format(home=home, parent=home.parent))
    assert error.value.message == f"vectraguard: test.yaml:3: refusing to mount {real}: {reason.format(home=home)}"


def test_a_symlink_cannot_smuggle_in_a_secret(home: Path) -> None:
    (home / "projects" / "innocent").symlink_to(home / ".ssh")
    with pytest.raises(PolicyError) as error:
        make("innocent", "/x", home)
    assert f"it exposes {home}/.ssh" in error.value.message


def test_root_and_runtime_sockets_are_refused(home: Path) -> None:
    with pytest.raises(PolicyError, match=r"refusing to mount / \(the whole host filesystem\)"):
        make("/", "/host", home)
    if os.path.exists("/run"):
        with pytest.raises(PolicyError, match="container runtime socket"):
            make("/run", "/r", home)


@pytest.mark.parametrize("source", ["~/x", "~alice/x", "$HOME/x", "$(id)", "`id`", "a\0b", "app,ro=false",
                                    "app:/etc", "../projects/app", "app/../app"])
def test_no_expansion_ever(home: Path, source: str) -> None:
    with pytest.raises(PolicyError):
        make(source, "/x", home)


@pytest.mark.parametrize(("target", "accepted"), [
    ("/data", "/data"), ("/data/", "/data"), ("//data//x", "/data/x"),
])
def test_targets_are_normalized(home: Path, target: str, accepted: str) -> None:
    assert make("app", target, home).target == accepted


@pytest.mark.parametrize("target", ["relative", "/", "/proc", "/proc/self", "/sys/fs", "/dev/shm", "/etc",
                                    "/data/../etc", "", "/data,exec", "/data:rw", "/da\nta"])
def test_forbidden_targets(home: Path, target: str) -> None:
    with pytest.raises(PolicyError):
        make("app", target, home)


def test_the_deny_rules_resolve_paths_exactly_as_realpath_does(tmp_path: Path) -> None:
    """The rules' resolver looks at each directory once; what it gives must be realpath's answer."""
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "real" / "file").write_text("")
    links = {"to-real": "real", "abs-to-deep": str(tmp_path / "real" / "deep"), "chain": "to-real",
             "up": "real/deep/..", "dangling": "nowhere/at/all", "loop-a": "loop-b", "loop-b": "loop-a",
             "real/deep/back": "../../to-real", "to-file": "real/file", "self": "."}
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    names = [*links, "real", "real/deep", "real/file", "absent", "real/file/under-a-file"]
    paths = [str(tmp_path / name / tail) for name in names for tail in ("", "x", "deep", "deep/x", "back/deep")]
    paths += ["/", "/proc/self/root", "/proc/self/cwd/x", str(tmp_path) + "/up/../file", str(tmp_path) + "/./real"]
    resolve = mounts._RealPaths()
    for _ in range(2):  # and the second time, from what it remembers
        assert {path: resolve(os.path.abspath(path)) for path in paths} == \
               {path: os.path.realpath(os.path.abspath(path)) for path in paths}
