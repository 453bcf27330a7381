"""The network.* egress settings and the allow-* registry fragments, through the real CLI.

Each test gets a config home of its own (a user profile written there) and a
data directory of its own (trust store, audit store).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import TEST_IMAGE, Caller
from vectraguard.config import upstream

# What each shipped fragment must add, exactly (the hosts its comment cites).
FRAGMENTS = {
    "allow-pypi": ["pypi.org:443", "files.pythonhosted.org:443"],
    "allow-npm": ["registry.npmjs.org:443"],
    "allow-debian": ["deb.debian.org", "security.debian.org"],
    "allow-github": ["github.com:443", "api.github.com:443", "codeload.github.com:443",
                     "objects.githubusercontent.com:443", "release-assets.githubusercontent.com:443",
                     "raw.githubusercontent.com:443"],
    "allow-crates": ["index.crates.io:443", "static.crates.io:443", "crates.io:443"],
    "allow-go-proxy": ["proxy.golang.org:443", "sum.golang.org:443"],
}


@pytest.fixture
def caller() -> Iterator[Caller]:
    base = Path(tempfile.mkdtemp(prefix="vg-egress-"))
    (base / "vectraguard" / "profiles.d").mkdir(parents=True)
    yield Caller(None, base)
    shutil.rmtree(base, ignore_errors=True)


def _profile(caller: Caller, name: str, text: str) -> Path:
    path = caller.config_home / "vectraguard" / "profiles.d" / f"{name}.yaml"
    path.write_text(text)
    return path


def _show(caller: Caller, name: str, cwd: Path, data_dir: Path) -> dict[str, object]:
    shown = caller.run(["profile", "show", name, "--json"], cwd=cwd, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert shown.returncode == 0, shown.stderr.decode()
    network = json.loads(shown.stdout)["network"]
    assert isinstance(network, dict)
    return network


def test_the_defaults_resolve(caller: Caller, workspace: Path, data_dir: Path) -> None:
    assert _show(caller, "default", workspace, data_dir) == {
        "mode": "none", "allow": [], "max_connections": 256, "upstream_proxy": None, "no_proxy": [],
        "trust_host_ca": False, "hosts_file": None}


@pytest.mark.parametrize("fragment", sorted(FRAGMENTS))
def test_each_fragment_adds_exactly_its_hosts(caller: Caller, workspace: Path, data_dir: Path,
                                              fragment: str) -> None:
    _profile(caller, "mine", f"include: [{fragment}]\n")
    network = _show(caller, "mine", workspace, data_dir)
    assert network["allow"] == FRAGMENTS[fragment]
    assert network["mode"] == "allowlist"


def test_fragments_add_up_with_each_other_and_the_profiles_own_list(caller: Caller, workspace: Path,
                                                                    data_dir: Path) -> None:
    _profile(caller, "mine", "include: [allow-pypi, allow-npm, allow-pypi]\n"
                             "network:\n  allow: [example.com:443, pypi.org:443]\n")
    network = _show(caller, "mine", workspace, data_dir)
    # The profile's own entries first, then each fragment's, each entry once.
    assert network["allow"] == ["example.com:443", "pypi.org:443", "files.pythonhosted.org:443",
                                "registry.npmjs.org:443"]


def test_a_profile_can_still_switch_the_network_off_over_a_fragment(caller: Caller, workspace: Path,
                                                                      data_dir: Path) -> None:
    _profile(caller, "mine", "include: [allow-github]\nnetwork:\n  mode: none\n")
    network = _show(caller, "mine", workspace, data_dir)
    assert network["mode"] == "none" and network["allow"] == FRAGMENTS["allow-github"]


def test_an_unknown_fragment_is_refused_by_name(caller: Caller, workspace: Path, data_dir: Path) -> None:
    path = _profile(caller, "mine", "include: [allow-pypy]\n")
    shown = caller.run(["profile", "show", "mine"], cwd=workspace, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert shown.returncode == 125
    assert shown.stderr.decode().startswith(
        f"vectraguard: unknown fragment 'allow-pypy' (included by {path}); available fragments: "
        "allow-best-effort-limits, allow-crates, allow-debian, allow-github, allow-go-proxy, allow-npm, allow-pypi, "
        "allow-workspace-overlay, allow-workspace-write, deny-exec-in-tmp, deny-workspace, risk-rules (in ")


def test_settings_resolve_and_the_proxy_password_is_never_shown(caller: Caller, workspace: Path,
                                                                data_dir: Path) -> None:
    _profile(caller, "mine", "network:\n  max_connections: 12\n"
                             "  upstream_proxy: http://alice:s3cret-pw@proxy.internal:3129\n"
                             "  no_proxy: [corp.example, 10.0.0.0/8]\n  hosts_file: /etc/vg-hosts\n"
                             "  trust_host_ca: true\n")
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    network = _show(caller, "mine", workspace, data_dir)
    assert network == {"mode": "none", "allow": [], "max_connections": 12,
                       "upstream_proxy": "http://alice:***@proxy.internal:3129",
                       "no_proxy": ["corp.example", "10.0.0.0/8"], "trust_host_ca": True, "hosts_file": "/etc/vg-hosts"}
    for view in (["profile", "show", "mine"], ["profile", "show", "mine", "--explain"]):
        out = caller.run(view, cwd=workspace, extra_env=env)
        assert out.returncode == 0 and b"s3cret-pw" not in out.stdout + out.stderr
    # The audit record keeps the resolved profile: without the password.
    ran = caller.run(["run", "-p", "mine", "--image", TEST_IMAGE, "--", "true"], cwd=workspace, extra_env=env)
    assert ran.returncode == 0, ran.stderr.decode()
    record = json.dumps(caller.last_session(workspace, env))
    assert "alice:***@proxy.internal:3129" in record and "s3cret-pw" not in record
    assert b"s3cret-pw" not in (data_dir / "audit.db").read_bytes()
    # Nor is the profile file copied, parsed, to the validation cache.
    cache = caller.config_home / "cache"
    assert caller.run(["profile", "show", "mine"], cwd=workspace,
                      extra_env={**env, "XDG_CACHE_HOME": str(cache)}).returncode == 0
    assert cache.is_dir() and not [path for path in cache.rglob("*") if path.is_file() and b"s3cret-pw" in path.read_bytes()]


def test_a_proxy_password_given_on_the_command_line_is_stored_nowhere(caller: Caller, workspace: Path,
                                                                      data_dir: Path, tmp_path: Path) -> None:
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir), "XDG_CACHE_HOME": str(tmp_path)}
    ran = caller.run(["run", "-p", "default", "--image", TEST_IMAGE, "--set",
                      "network.upstream_proxy=http://bob:pw-on-argv@proxy.internal:3129", "--", "true"],
                     cwd=workspace, extra_env=env)
    assert ran.returncode == 0, ran.stderr.decode()
    stored = [path for path in [*tmp_path.rglob("*"), *data_dir.rglob("*")]
              if path.is_file() and b"pw-on-argv" in path.read_bytes()]
    assert stored == []
    assert "bob:***@proxy.internal:3129" in json.dumps(caller.last_session(workspace, env))


BAD = [
    ("upstream_proxy: https://proxy.internal:3129",
     ("network.upstream_proxy: the URL 'https://proxy.internal:3129': only http:// proxies are supported "
      "(not https; write http://host:port)")),
    ("upstream_proxy: http://proxy.internal",
     "network.upstream_proxy: expected `environment` or http://[user:password@]host:port: the port is required"),
    ("upstream_proxy: http://proxy.internal:3129/path",
     ("network.upstream_proxy: the URL 'http://proxy.internal:3129/path': a proxy URL has no path "
      "(write http://host:port)")),
    ("upstream_proxy: http://proxy.internal:99999",
     ("network.upstream_proxy: the URL 'http://proxy.internal:99999': the port must be a number "
      "from 1 to 65535")),
    ("upstream_proxy: http://u:pw-in-error@proxy.internal:99999",
     ("network.upstream_proxy: the URL 'http://u:***@proxy.internal:99999': the port must be a number "
      "from 1 to 65535")),
    ("upstream_proxy: environment\n  no_proxy: [corp.example]",
     "network.no_proxy: only applies with an upstream_proxy URL (`environment` uses the host's no_proxy)"),
    ("upstream_proxy: http://p:1\n  no_proxy: [-bad-]",
     "network.no_proxy: '-bad-' is neither a host name suffix (example.com) nor a CIDR (10.0.0.0/8)"),
]


@pytest.mark.parametrize(("lines", "message"), BAD)
def test_bad_values_are_located(caller: Caller, workspace: Path, data_dir: Path, lines: str, message: str) -> None:
    path = _profile(caller, "mine", f"network:\n  {lines}\n")
    shown = caller.run(["profile", "show", "mine"], cwd=workspace, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert shown.returncode == 125
    line = 3 if message.startswith("network.no_proxy") else 2
    assert f"  {path}:{line}: {message}\n" in shown.stderr.decode()


@pytest.mark.parametrize(("lines", "key"), [("max_connections: 0", "max_connections"),
                                            ("max_connections: 4097", "max_connections"),
                                            ("hosts_file: relative/hosts", "hosts_file"),
                                            ("trust_host_ca: yes-please", "trust_host_ca")])
def test_the_schema_bounds_them(caller: Caller, workspace: Path, data_dir: Path, lines: str, key: str) -> None:
    path = _profile(caller, "mine", f"network:\n  {lines}\n")
    shown = caller.run(["profile", "show", "mine"], cwd=workspace, extra_env={"VECTRAGUARD_DATA_DIR": str(data_dir)})
    assert shown.returncode == 125
    assert f"  {path}:2: network.{key}: " in shown.stderr.decode()


@pytest.mark.parametrize("key", ["upstream_proxy: http://p:1", "hosts_file: /etc/hosts", "no_proxy: [a.example]"])
def test_a_project_file_that_sets_the_host_only_keys_cannot_be_trusted(caller: Caller, workspace: Path,
                                                                        data_dir: Path, key: str) -> None:
    (workspace / ".git").mkdir()
    project = workspace / ".vectraguard.yaml"
    project.write_text(f"version: 1\nprofiles:\n  team:\n    network:\n      {key}\n")
    project.chmod(0o644)
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    shown = caller.run(["trust"], cwd=workspace, extra_env=env)
    assert shown.returncode == 125
    name = key.partition(":")[0]
    assert shown.stderr.decode().startswith(
        f"vectraguard: cannot use {project}\n  {project}:5: profiles.team.network.{name}: not accepted from a "
        "project file; set it in your own profile ($XDG_CONFIG_HOME/vectraguard/profiles.d/) or the system's\n")


def test_a_project_file_may_set_the_others(caller: Caller, workspace: Path, data_dir: Path) -> None:
    (workspace / ".git").mkdir()
    project = workspace / ".vectraguard.yaml"
    project.write_text("version: 1\nprofiles:\n  team:\n    include: [allow-npm]\n"
                       "    network:\n      max_connections: 8\n      trust_host_ca: true\n")
    project.chmod(0o644)
    env = {"VECTRAGUARD_DATA_DIR": str(data_dir)}
    assert caller.run(["trust"], cwd=workspace, extra_env=env).returncode == 0
    network = _show(caller, "team", workspace, data_dir)
    assert (network["max_connections"], network["trust_host_ca"], network["allow"]) == (8, True, FRAGMENTS["allow-npm"])


def test_the_system_policy_caps_max_connections(caller: Caller, workspace: Path, data_dir: Path) -> None:
    system = Path(tempfile.mkdtemp(prefix="vg-etc-"))
    try:
        policy = system / "policy.yaml"
        policy.write_text("version: 1\nnetwork:\n  max_connections: 64\n")
        path = _profile(caller, "mine", f"image: {TEST_IMAGE}\nnetwork:\n  max_connections: 100\n")
        env = {"VECTRAGUARD_DATA_DIR": str(data_dir), "VECTRAGUARD_SYSTEM_DIR": str(system)}
        result = caller.run(["run", "-p", "mine", "--", "true"], cwd=workspace, extra_env=env)
        assert result.returncode == 125
        assert result.stderr.decode().splitlines() == [
            "vectraguard: the system policy refuses this run",
            (f"  {path}:3: network.max_connections: 100 is above the maximum 64; refused by policy rule "
             f"network.max_connections ({policy}:3)")]
        within = caller.run(["run", "-p", "mine", "--set", "network.max_connections=64", "--", "true"],
                            cwd=workspace, extra_env=env)
        assert within.returncode == 0, within.stderr.decode()
    finally:
        shutil.rmtree(system, ignore_errors=True)


@pytest.mark.parametrize(("url", "shown"), [
    ("http://alice:pw@proxy:3128", "http://alice:***@proxy:3128"),
    ("http://alice:p%40ss@proxy:3128/", "http://alice:***@proxy:3128"),
    ("http://alice@proxy:3128", "http://alice:***@proxy:3128"),  # one form whether or not a password is set
    ("http://proxy:3128", "http://proxy:3128"),
    ("environment", "environment"),
    (None, None),
])
def test_redaction(url: str | None, shown: str | None) -> None:
    assert upstream.redact(url) == shown
