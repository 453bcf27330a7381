"""The mount deny rules through the real CLI, rootful and rootless (issue 12
item 2): sockets, FIFOs and device nodes; the host's kernel interfaces;
container runtime directories and stores; Vectra Guard's own state wherever
it is configured; home secrets reached through symbolic links, credential
stores, what the host runs later, other users' homes and host secrets.

Each refusal is one located line, exit status 125, no sandbox; for each kind
an ordinary directory next to the refused path still mounts, and what it
holds is seen from inside a real sandbox.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vg import ROOTLESS_USER, Caller, installed_profiles_dir

PROFILE = {"root": "test-untrusted", "rootless": "test-best-effort"}
PROJECT = "mount a project directory instead"
SOCKET = "a socket (a door into the host process listening on it, e.g. an SSH agent)"
SOCKET_HINT = ("a socket is mounted only when the mount names it and the system policy allows it "
               "(filesystem.allowed_sockets, see man vectraguard-profile)")
KERNEL = "the host's kernel interfaces"
CREDENTIALS = "credentials or container configuration"
OWN = "Vectra Guard's own state"


class Who:
    """A caller with its profile and a scratch directory it owns."""

    def __init__(self, name: str, caller: Caller) -> None:
        self.name, self.caller, self.profile = name, caller, PROFILE[name]
        self.user = ROOTLESS_USER if name == "rootless" else None
        self.base = Path(tempfile.mkdtemp(prefix="vg-deny-"))
        self.base.chmod(0o755)
        # Runs start here: the working directory is checked as a mount too.
        self.ws = self.base / "ws"
        self.ws.mkdir(mode=0o755)
        self.give(self.base, self.ws)

    def give(self, *paths: Path) -> None:
        """Hand `paths` to the caller (the rootless user must be able to read and mount them)."""
        for path in paths:
            if self.user:
                os.lchown(path, pwd.getpwnam(self.user).pw_uid, pwd.getpwnam(self.user).pw_gid)

    def can_read(self, path: str) -> bool:
        if self.user is None:
            return os.path.exists(path)
        return subprocess.run(["runuser", "-u", self.user, "--", "test", "-r", path], check=False).returncode == 0

    def home(self) -> Path:
        return Path(pwd.getpwnam(self.user or "root").pw_dir)

    def refusals(self, sources: list[str], *, mode: str = "", cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> list[str]:
        """The one-line refusal of `--mount SOURCE:/m[:mode]`, for each source."""
        suffix = f":{mode}" if mode else ""
        return [refused(self.caller, ["run", "-p", self.profile, "--mount", f"{source}:/m{suffix}", "--", "true"],
                        cwd or self.ws, env) for source in sources]

    def inside(self, source: Path | str, script: str, *, mode: str = "ro", cwd: Path | None = None,
               env: dict[str, str] | None = None, profile: str | None = None) -> str:
        """Run `script` in a real sandbox with `source` mounted at /m; its output."""
        args = ["run", "-p", profile or self.profile, "--yes"]
        args += ["--mount", f"{source}:/m:{mode}"] if source else []
        result = self.caller.run([*args, "--", "sh", "-c", script], cwd=cwd or self.ws, extra_env=env)
        assert result.returncode == 0, (result.returncode, result.stderr.decode(errors="replace"))
        return result.stdout.decode()


def refused(caller: Caller, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    # Exit status 125 with the planner's message: refused before Podman is
    # asked for anything. (Comparing the host's sandboxes before and after
    # would race with other test sessions sharing this Podman.)
    result = caller.run(args, cwd=cwd, extra_env=env)
    message = result.stderr.decode(errors="replace")
    assert result.returncode == 125, (args, result.returncode, message)
    assert result.stdout == b""
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    return message.strip()


def refusal(source: str, exposes: str, reason: str, *, origin: str = "command line", how: str = "",
            hint: str = PROJECT) -> str:
    return f"vectraguard: {origin}: refusing to mount {source}{how}: it exposes {exposes} ({reason}); {hint}"


@pytest.fixture(params=["root", "rootless"])
def who(request: pytest.FixtureRequest) -> Iterator[Who]:
    caller = request.getfixturevalue(request.param)
    made = Who(request.param, caller)
    yield made
    shutil.rmtree(made.base, ignore_errors=True)


@pytest.fixture
def as_root(root: Caller) -> Iterator[Who]:
    made = Who("root", root)
    yield made
    shutil.rmtree(made.base, ignore_errors=True)


@pytest.fixture
def as_rootless(rootless: Caller) -> Iterator[Who]:
    made = Who("rootless", rootless)
    yield made
    shutil.rmtree(made.base, ignore_errors=True)


def ordinary(who: Who, name: str = "data") -> Path:
    """A directory with one ordinary file, next to the refused paths."""
    path = who.base / name
    path.mkdir(parents=True)
    (path / "f").write_text("ordinary\n")
    (path / "f").chmod(0o644)
    who.give(path, path / "f")
    return path


def bind_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))  # the socket file stays after the listener closes


# -- doors into host processes --------------------------------------------------------

def test_sockets_and_directories_holding_one_are_refused(who: Who) -> None:
    agent_dir = who.base / "ssh-XXXXq1w2e3"  # laid out like ssh-agent's $SSH_AUTH_SOCK
    agent_dir.mkdir(mode=0o755)
    agent = agent_dir / "agent.4242"
    bind_socket(agent)
    lone = who.base / "app.sock"
    bind_socket(lone)
    who.give(agent_dir, agent, lone)
    data = ordinary(who)
    assert who.refusals([str(agent), str(agent_dir), str(lone), str(who.base)]) == [
        f"vectraguard: command line: refusing to mount {agent}: it is {SOCKET}; {SOCKET_HINT}",
        f"vectraguard: command line: refusing to mount {agent_dir}: it holds {agent}, {SOCKET}; {SOCKET_HINT}",
        f"vectraguard: command line: refusing to mount {lone}: it is {SOCKET}; {SOCKET_HINT}",
        f"vectraguard: command line: refusing to mount {who.base}: it holds {lone}, {SOCKET}; {SOCKET_HINT}",
    ]
    assert who.inside(data, "cat /m/f") == "ordinary\n"


def test_fifos_and_device_nodes_are_refused(who: Who) -> None:
    fifo = who.base / "fifo"
    os.mkfifo(fifo, 0o644)
    node = who.base / "null"
    os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))  # a character device, like /dev/null
    pipes, devices = who.base / "pipes", who.base / "devices"
    pipes.mkdir(mode=0o755)
    devices.mkdir(mode=0o755)
    os.mkfifo(pipes / "p", 0o644)
    os.mknod(devices / "zero", 0o666 | 0o020000, os.makedev(1, 5))
    who.give(fifo, node, pipes, devices, pipes / "p", devices / "zero")
    data = ordinary(who)
    fifo_kind, device_kind = "a FIFO (a channel to host processes)", "a device node (the host's hardware or kernel)"
    assert who.refusals([str(fifo), str(node), str(pipes), str(devices)]) == [
        f"vectraguard: command line: refusing to mount {fifo}: it is {fifo_kind}; {PROJECT}",
        f"vectraguard: command line: refusing to mount {node}: it is {device_kind}; {PROJECT}",
        (f"vectraguard: command line: refusing to mount {pipes}: it holds {pipes}/p, {fifo_kind}; "
         "mount a directory without it"),
        (f"vectraguard: command line: refusing to mount {devices}: it holds {devices}/zero, {device_kind}; "
         "mount a directory without it"),
    ]
    assert who.inside(data, "cat /m/f") == "ordinary\n"


def test_a_socket_mounts_only_when_named_by_the_profile_and_allowed_by_the_policy(as_root: Who) -> None:
    who = as_root
    agent_dir = who.base / "ssh-XXXXq1w2e3"
    agent_dir.mkdir(mode=0o755)
    agent, other = agent_dir / "agent.4242", who.base / "other.sock"
    bind_socket(agent)
    bind_socket(other)
    profile = who.caller.config_home / "vectraguard" / "profiles.d" / "test-agent-socket.yaml"
    profile.write_text(f"extends: test-untrusted\nfilesystem:\n  mounts:\n"
                       f"    - source: {agent}\n      target: /ssh-agent.sock\n")
    system = who.base / "system"
    system.mkdir()
    allowing = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    try:
        run = ["run", "-p", "test-agent-socket", "--", "true"]
        # No policy: no socket, however it is named.
        assert refused(who.caller, run, who.ws) == (
            f"vectraguard: {profile}:4: refusing to mount {agent}: it is {SOCKET}; {SOCKET_HINT}")
        (system / "policy.yaml").write_text(f"version: 1\nfilesystem:\n  allowed_sockets: [{who.base}/ssh-*/agent.*]\n")
        out = who.inside("", "test -S /ssh-agent.sock && echo socket", env=allowing, profile="test-agent-socket")
        assert out == "socket\n"
        # Allowed by name only: not a directory holding it, not another socket.
        assert who.refusals([str(agent_dir), str(other)], env=allowing) == [
            f"vectraguard: command line: refusing to mount {agent_dir}: it holds {agent}, {SOCKET}; {SOCKET_HINT}",
            f"vectraguard: command line: refusing to mount {other}: it is {SOCKET}; {SOCKET_HINT}",
        ]
    finally:
        profile.unlink()


# -- the host's kernel interfaces ---------------------------------------------------------

def test_proc_sys_and_dev_are_refused(who: Who) -> None:
    sources = [p for p in ("/proc", "/proc/sys/kernel", "/sys", "/sys/fs/cgroup", "/dev", "/dev/shm", "/dev/mqueue",
                           "/dev/null") if os.path.exists(p)]
    tree = {p: "/" + p.split("/")[1] for p in sources}
    assert who.refusals(sources) == [refusal(p, tree[p], KERNEL) for p in sources]
    assert who.inside("/usr/share/common-licenses", "ls /m/GPL-3") == "/m/GPL-3\n"


def test_a_working_directory_with_a_socket_or_under_dev_is_refused(who: Who) -> None:
    project = ordinary(who, "project")
    bind_socket(project / "dev-server.sock")
    who.give(project / "dev-server.sock")
    shm = Path(tempfile.mkdtemp(prefix="vg-deny-", dir="/dev/shm"))
    shm.chmod(0o755)
    who.give(shm)
    try:
        run = ["run", "-p", who.profile, "--", "true"]
        assert refused(who.caller, run, project).startswith(
            f"vectraguard: working directory: refusing to mount {project}: it holds {project}/dev-server.sock, "
            f"{SOCKET}; cd into a project directory")
        assert refused(who.caller, run, shm).startswith(
            f"vectraguard: working directory: refusing to mount {shm}: it exposes /dev ({KERNEL}); cd into")
        assert who.inside("", "cat f", cwd=ordinary(who, "clean")) == "ordinary\n"
    finally:
        shutil.rmtree(shm)


# -- container runtimes -----------------------------------------------------------------

def podman_store(who: Who) -> tuple[str, str, str]:
    """runroot, graphroot and the API socket's directory, as `podman info` says."""
    argv, env = who.caller.argv(["podman", "info", "--format", "json"])
    info = json.loads(subprocess.run(argv, env=env, capture_output=True, check=True, timeout=60).stdout)
    return info["store"]["runRoot"], info["store"]["graphRoot"], os.path.dirname(info["host"]["remoteSocket"]["path"])


def test_podman_runtime_directories_and_stores_are_refused(who: Who) -> None:
    runroot, graphroot, api = podman_store(who)
    store = who.base / "store"
    for sub in ("run", "graph"):
        (store / sub).mkdir(parents=True)
        who.give(store, store / sub)
    conf = who.base / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "overlay"\nrunroot = "{store}/run"\ngraphroot = "{store}/graph"\n')
    if who.user:
        uid = pwd.getpwnam(who.user).pw_uid
        run_dir = f"/tmp/podman-run-{uid}"
        expected = [
            (run_dir, run_dir, "a rootless Podman runtime directory"),
            (api, run_dir, "a rootless Podman runtime directory"),
            (runroot, run_dir, "a rootless Podman runtime directory"),
            (graphroot, f"{who.home()}/.local/share/containers", CREDENTIALS),
            ("/tmp", "/tmp/podman-run-*", "a rootless Podman runtime directory"),
        ]
    else:
        expected = [
            ("/run/libpod", "/run/libpod", "a container runtime socket or store"),
            (api, api, "a container runtime socket or store"),
            (runroot, "/run/containers", "a container runtime socket or store"),
            (graphroot, "/var/lib/containers", "a container runtime socket or store"),
            ("/tmp/podman-run-1001", "/tmp/podman-run-1001", "a rootless Podman runtime directory"),
        ]
    expected = [e for e in expected if os.path.exists(e[0])]
    assert who.refusals([e[0] for e in expected]) == [refusal(*e) for e in expected]
    # A store wherever storage.conf puts it.
    assert who.refusals([f"{store}/graph"], env={"CONTAINERS_STORAGE_CONF": str(conf)}) == [
        refusal(f"{store}/graph", f"{store}/graph", "a container store (storage.conf)")]
    assert who.inside(ordinary(who), "cat /m/f") == "ordinary\n"


def test_docker_engines_stores_are_refused(as_rootless: Who) -> None:
    """Docker's store holds every container's files, logs and environment: rootless Docker's in the home,
    and wherever a daemon.json moves it (data-root, exec-root; found by an outside attack)."""
    who = as_rootless
    home_store = who.home() / ".local" / "share" / "docker"
    config = Path(who.caller.config_home)  # the caller's own XDG_CONFIG_HOME (its test profiles are there)
    moved = who.base / "moved-docker-root"
    moved.mkdir()
    who.give(moved)
    (config / "docker").mkdir(exist_ok=True)
    daemon_json = config / "docker" / "daemon.json"
    daemon_json.write_text(json.dumps({"data-root": str(moved)}))
    who.give(config / "docker", daemon_json)
    env: dict[str, str] = {}
    made_home_store = not home_store.exists()
    if made_home_store:
        home_store.mkdir(parents=True)
        who.give(home_store.parent.parent, home_store.parent, home_store)
    try:
        assert who.refusals([str(home_store)], env=env) == [refusal(str(home_store), str(home_store), CREDENTIALS)]
        assert who.refusals([str(moved)], env=env) == [
            refusal(str(moved), str(moved), "Docker Engine's store (daemon.json)")]
    finally:
        daemon_json.unlink()
        if made_home_store:
            home_store.rmdir()


# -- Vectra Guard's own state -----------------------------------------------------------

def test_own_state_is_refused_where_it_is_and_where_it_would_be_by_default(who: Who) -> None:
    elsewhere = {name: who.base / name for name in ("data", "xdg-data", "xdg-cache", "system")}
    for path in elsewhere.values():
        path.mkdir()
        who.give(path)
    env = {"VECTRAGUARD_DATA_DIR": str(elsewhere["data"]), "XDG_DATA_HOME": str(elsewhere["xdg-data"]),
           "XDG_CACHE_HOME": str(elsewhere["xdg-cache"]), "VECTRAGUARD_SYSTEM_DIR": str(elsewhere["system"])}
    default_data = who.home() / ".local" / "share" / "vectraguard"
    assert default_data.is_dir(), "the caller has run Vectra Guard before (the suite's own runs)"
    sources = [str(default_data), str(elsewhere["data"]), str(elsewhere["system"])]
    assert who.refusals(sources, env=env) == [refusal(s, s, OWN) for s in sources]
    # Shipped profiles: read, yes; rewritten for the next run, no.
    profiles = installed_profiles_dir()
    assert who.refusals([profiles], mode="rw") == [
        refusal(profiles, profiles, "Vectra Guard's own code and shipped profiles", how=" read-write",
                hint="mount it read-only")]
    assert who.inside(profiles, "head -n 1 /m/untrusted.yaml") == (Path(profiles) / "untrusted.yaml").read_text(
    ).splitlines(keepends=True)[0]
    assert who.inside(ordinary(who, "ordinary"), "cat /m/f", env=env) == "ordinary\n"


# -- homes --------------------------------------------------------------------------------

SECRETS = (".git-credentials", ".npmrc", ".pypirc", ".cargo/credentials.toml", ".config/hub/", ".terraform.d/",
           ".azure/", ".config/op/", ".local/share/keyrings/", ".mozilla/", ".claude/", ".vault-token",
           ".docker/")


def test_home_secrets_through_symlinks_and_credential_stores_are_refused(as_root: Who) -> None:
    who = as_root
    home = who.base / "home"
    (home / "dotfiles" / "ssh").mkdir(parents=True)
    (home / "dotfiles" / "ssh" / "id_ed25519").write_text("secret\n")
    (home / ".ssh").symlink_to("dotfiles/ssh")  # GNU Stow style
    for name in SECRETS:
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if name.endswith("/") else path.write_text("token\n")
    project = home / "projects" / "app"
    project.mkdir(parents=True)
    (project / "f").write_text("ordinary\n")
    env = {"HOME": str(home)}
    ssh = [str(home / "dotfiles" / "ssh"), str(home / "dotfiles"), str(home / "dotfiles" / "ssh" / "id_ed25519")]
    assert who.refusals(ssh, env=env) == [refusal(s, f"{home}/.ssh", CREDENTIALS) for s in ssh]
    stores = [str(home / name.rstrip("/")) for name in SECRETS]
    assert who.refusals(stores, env=env) == [refusal(s, s, CREDENTIALS) for s in stores]
    assert who.inside(project, "cat /m/f", env=env) == "ordinary\n"


def test_what_the_host_runs_later_is_refused_read_write(as_rootless: Who) -> None:
    who = as_rootless
    bashrc, profile = who.home() / ".bashrc", who.home() / ".profile"
    assert bashrc.is_file() and profile.is_file()
    assert who.refusals([str(bashrc), str(profile)], mode="rw") == [
        refusal(str(p), str(p), "the host runs it later", how=" read-write", hint="mount it read-only")
        for p in (bashrc, profile)]
    assert who.inside(bashrc, "wc -c < /m", mode="ro").strip() == str(bashrc.stat().st_size)
    assert who.inside(ordinary(who), "echo w > /m/f && cat /m/f", mode="rw") == "w\n"


def test_other_homes_and_host_secrets_are_refused(who: Who) -> None:
    others = sorted(home for home in (e.pw_dir for e in pwd.getpwall()
                                      if (e.pw_uid == 0 or 1000 <= e.pw_uid < 65534) and e.pw_dir != str(who.home()))
                    if who.can_read(home) and os.path.isdir(home))
    assert others, "this host has another login user with a readable home"
    names = {e.pw_dir: e.pw_name for e in pwd.getpwall()}
    expected = [(home, home, f"the home directory of {names[home]}") for home in others]
    expected += [(p, p, "secrets of the host") for p in ("/etc/shadow", "/etc/gshadow", "/etc/ssh")
                 if who.can_read(p)]
    expected += [("/etc", "/etc/shadow", "secrets of the host"),
                 ("/boot", "/boot", "the kernel and initramfs the host boots")]
    assert who.refusals([e[0] for e in expected]) == [refusal(*e) for e in expected]
    assert who.inside("/etc/debian_version", "cat /m") == Path("/etc/debian_version").read_text()


# -- the audit trail ----------------------------------------------------------------------

def test_a_refused_mount_is_recorded(as_root: Who) -> None:
    who = as_root
    env = {"VECTRAGUARD_DATA_DIR": str(who.base / "audit")}
    message = who.refusals(["/dev/shm"], env=env)[0]
    listed = who.caller.run(["logs", "list", "--json", "--status", "refused"], cwd=who.ws, extra_env=env)
    [row] = json.loads(listed.stdout)
    shown = json.loads(who.caller.run(["logs", "show", row["id"], "--json"], cwd=who.ws, extra_env=env).stdout)
    assert message.removeprefix("vectraguard: ").split(";")[0] in shown["events"][0]["reason"]


def test_the_protected_paths_also_protect_what_a_link_or_gitdir_file_names(tmp_path: Path) -> None:
    """A rw workspace's `.git` as a `gitdir:` file or a link, and a linked
    `.envrc`: what they stand for inside the workspace is bound read-only too
    (found by a blind attack); a link leaving the workspace adds nothing."""
    from vectraguard.sandbox.mounts import Mount, protected_mounts

    (tmp_path / "store" / "hooks").mkdir(parents=True)
    (tmp_path / ".git").write_text("gitdir: store\n")
    (tmp_path / "envrc.real").write_text("x")
    (tmp_path / ".envrc").symlink_to("envrc.real")
    (tmp_path / ".mcp.json").symlink_to("/etc/hostname")
    found = {m.target: m for m in protected_mounts(Mount(str(tmp_path), "/workspace", False), git_writable=False)}
    assert set(found) == {"/workspace/.git", "/workspace/store", "/workspace/envrc.real"}
    assert all(m.read_only for m in found.values()) and found["/workspace/store"].source == str(tmp_path / "store")


def test_git_that_never_answers_refuses_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository a sandbox wrote may include a FIFO in its config (found by a
    blind attack: the next rw run hung forever, and a killed vectraguard left git
    waiting): git is killed by timeout(1) and the run is refused."""
    import subprocess

    from vectraguard.workspace import gitguard

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    os.mkfifo(tmp_path / ".git" / "inc")
    subprocess.run(["git", "-C", str(tmp_path), "config", "include.path", "inc"], check=True)
    monkeypatch.setattr(gitguard, "GIT_TIMEOUT_S", 2)
    with pytest.raises(gitguard.GitDidNotAnswer, match="did not answer"):
        gitguard.configured(str(tmp_path))
    left = subprocess.run(["pgrep", "-f", "safe.directory=\\* rev-parse"], capture_output=True, check=False)
    assert left.returncode != 0, left.stdout  # no git left waiting
