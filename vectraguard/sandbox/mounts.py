"""One canonicalizer for every host path that becomes a mount.

Sources are taken literally — no `~`, `$VAR` or `$(...)` expansion, ever —
made absolute against the working directory, resolved to their real path
(so a symlink cannot smuggle in another directory) and checked against the
built-in deny rules. Targets must be absolute, normalized and outside the
paths the runtime itself owns.

What the deny rules refuse, and why. A mount of a directory that contains a
denied path exposes it too, so it is refused as well.

- The host's kernel interfaces: /proc, /sys and /dev, and anything under
  them (/sys/fs/cgroup, /dev/shm, /dev/mqueue, /proc/PID/root, ...).
- Doors into host processes, wherever they are: a socket, a FIFO or a device
  node as the source, or a directory with one among its direct entries (an
  SSH agent's /tmp/ssh-XXXX/). Only direct entries are listed: listing a
  whole tree on every run would cost too much. A socket may be mounted only
  when the mount names that socket itself and the system policy allows it
  (filesystem.allowed_sockets). FIFOs and device nodes never can.
- Container runtimes: their sockets, runtime directories and stores, rootful
  and rootless, for every user (/run/libpod, /tmp/podman-run-*,
  /run/user/*/podman, ...), and the runroot and graphroot named by every
  storage.conf Podman would read. The files are read, not `podman info`,
  which would cost a process per run.
- Every login home (uid 0, and 1000-65533, in the passwd database): the home
  itself (a project inside it is fine) and, in each, the credential stores:
  keys, forge, registry and package-manager tokens, cloud logins, password
  managers, keyrings, browser profiles (saved passwords, session cookies)
  and AI agents' logins.
- In each home, what the host runs later: shell startup files, the PATH
  directories ~/bin and ~/.local/bin, systemd user units, autostart entries
  and git's global configuration. These are refused read-write only. Reading
  them is harmless and often wanted (git's identity). Writing them lets a
  sandbox run code outside it.
- Host secrets outside homes: /etc/shadow and its relatives, sudoers, SSH
  host keys, TLS private keys, the Kerberos keytab and saved network
  passwords. Also /boot, the kernel and initramfs the host boots.
- Vectra Guard's own state, both where this run keeps it and where it would
  by default (vectraguard.paths.own_state). Its shipped code and data are
  refused read-write: a sandbox must not rewrite the program or the profiles
  that the next run uses.
- The system policy's filesystem.denied_paths.

Each rule's path is matched both as written and resolved, against the
source's resolved path. So a secret reached through a symbolic link
(~/.ssh -> dotfiles/ssh, GNU Stow style) is refused like the real directory.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import pwd
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vectraguard.config.problems import Origin
from vectraguard.errors import PolicyError
from vectraguard.records import record, replace

# Inside the sandbox these belong to the kernel or the runtime.
FORBIDDEN_TARGETS = ("/", "/proc", "/sys", "/dev", "/run", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/var", "/boot")

# Kernel interfaces: nothing below them may be a mount target in the
# sandbox, nor a mount source from the host.
KERNEL_TREES = ("/proc", "/sys", "/dev")

# Relative to each home: credentials, whose harm is being read.
HOME_SECRETS = (
    ".ssh", ".aws", ".gnupg", ".kube", ".docker", ".config/containers", ".config/gcloud", ".config/gh",
    ".netrc", ".password-store", ".local/share/containers",
    # rootless Docker's store and daemon settings (dockerd-rootless: $XDG_DATA_HOME/docker, ~/.config/docker)
    ".local/share/docker", ".config/docker",
    # forges, registries and package managers
    ".git-credentials", ".config/git/credentials", ".config/hub", ".config/glab-cli", ".npmrc", ".yarnrc.yml",
    ".pypirc", ".config/pypoetry/auth.toml", ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials",
    ".m2/settings.xml", ".m2/settings-security.xml", ".gradle/gradle.properties", ".config/helm",
    # clouds, infrastructure, databases
    ".azure", ".terraform.d", ".config/doctl", ".oci", ".s3cfg", ".boto", ".config/rclone", ".vault-token",
    ".minikube", ".pgpass", ".my.cnf",
    # password managers, keyrings, certificate stores
    ".config/op", ".op", ".local/share/keyrings", ".pki",
    # browser profiles: saved passwords and session cookies (.var/app: Flatpak apps' data, browsers included)
    ".mozilla", ".config/google-chrome", ".config/chromium", ".config/BraveSoftware", ".config/microsoft-edge",
    ".var/app",
    # AI agents' logins
    ".claude", ".claude.json", ".codex",
)

# Relative to each home: what the host runs later. Reading is fine; writing is a way out.
HOME_CODE = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zshenv",
             ".zprofile", ".zlogin", ".config/fish", "bin", ".local/bin", ".config/systemd", ".config/autostart",
             ".config/environment.d", ".gitconfig", ".config/git", "go/bin")

# Relative to each home: Vectra Guard's own default state (paths.own_state has the caller's actual one).
HOME_OWN_STATE = (".config/vectraguard", ".local/share/vectraguard", ".cache/vectraguard")

# Rootful runtimes' sockets, runtime directories and stores.
RUNTIME_SOCKETS = ("/run/podman", "/var/run/podman", "/run/docker.sock", "/var/run/docker.sock", "/run/docker",
                   "/run/containerd", "/var/lib/containers", "/run/containers", "/run/libpod", "/var/lib/docker",
                   "/var/lib/containerd", "/run/user")

# Rootless Podman, any user: runtime directories without XDG_RUNTIME_DIR (in
# $TMPDIR, else /tmp), and what it keeps in each user's runtime directory.
ROOTLESS_RUNTIME = ("podman-run-*", "containers-user-*", "storage-run-*", "libpod")
USER_RUNTIME = ("podman", "libpod", "containers", "docker.sock", "docker", "vectraguard",
                # the user's systemd and session bus start programs on the host
                "systemd", "bus")

# Outside homes: secrets of the host itself.
HOST_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
                "/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd", "/etc/krb5.keytab",
                "/etc/NetworkManager/system-connections", "/var/lib/sss")

# storage.conf files Podman reads, rootful then rootless (containers-storage.conf(5)).
STORAGE_CONFS = ("/usr/share/containers/storage.conf", "/etc/containers/storage.conf")
# Docker Engine's daemon settings, rootful (dockerd(8) --config-file default); rootless: ~/.config/docker/.
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"

# passwd entries with homes of people (login.defs' default UID_MIN..UID_MAX, and root).
LOGIN_UIDS = range(1000, 65534)


@record
class Mount:
    """A checked bind mount: a real host path at a normalized sandbox path."""

    source: str  # real path on the host
    target: str  # normalized absolute path in the sandbox
    read_only: bool
    # The source is the read-only lower layer of an overlay: the sandbox
    # writes into a layer of its own (vectraguard/workspace/), never here.
    overlay: bool = False


def _check_characters(path: str, what: str, origin: Origin) -> None:
    # ':' and ',' separate fields and options in mount syntaxes; refusing them
    # outright means no path can ever smuggle an option in.
    bad = sorted({c for c in path if c in ":,\0\n"})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise PolicyError(f"vectraguard: {origin}: mount {what} {path!r} contains {shown}")
    if ".." in path.split("/"):
        raise PolicyError(f"vectraguard: {origin}: mount {what} {path!r} must not contain '..'")


def canonical_target(target: str, origin: Origin) -> str:
    _check_characters(target, "target", origin)
    if not target.startswith("/"):
        raise PolicyError(f"vectraguard: {origin}: mount target {target!r} must be an absolute path")
    normalized = "/" + posixpath.normpath(target).lstrip("/")
    if normalized in FORBIDDEN_TARGETS or any(_within(normalized, k) for k in KERNEL_TREES):
        raise PolicyError(f"vectraguard: {origin}: mount target {normalized} is reserved for the sandbox runtime")
    return normalized


def canonical_source(source: str, cwd: str, origin: Origin) -> str:
    if source.startswith("~") or "$" in source or "`" in source:
        raise PolicyError(
            f"vectraguard: {origin}: mount source {source!r} would need shell expansion",
            hint="write the absolute path; Vectra Guard never expands ~, $VAR or $(...)",
        )
    _check_characters(source, "source", origin)
    absolute = source if source.startswith("/") else os.path.join(cwd, source)
    try:
        real = os.path.realpath(absolute, strict=True)
    except OSError as exc:
        raise PolicyError(f"vectraguard: {origin}: mount source {source!r} does not exist or cannot be resolved ({exc.strerror})") from None
    if not os.access(real, os.R_OK):
        raise PolicyError(f"vectraguard: {origin}: mount source {real} is not readable")
    return real


# In a read-write workspace these stay read-only: they make a program run on
# the host later (git hooks, git's config with its core.hooksPath/aliases,
# direnv, editor tasks) — the classic way out of a sandboxed checkout. They
# cannot cover what does not exist yet, nor a renamed parent: `overlay` mode
# is the answer to that class; `rw` keeps what a bind can.
# Read-only over a read-write workspace where they exist: what the host runs later from
# the project (git's hooks and config, direnv, editor tasks, hook managers) and what AI
# coding tools on the host load and run (their settings' hooks, MCP servers) — a sandboxed
# agent shell (profile agent-shell) must not plant a hook its own host session then runs.
PROTECTED_IN_WORKSPACE = (".git/hooks", ".git/config", ".envrc", ".vscode/tasks.json", ".idea/workspace.xml",
                          ".claude", ".mcp.json", ".cursor", ".codex", ".gemini", ".aider.conf.yml",
                          ".pre-commit-config.yaml", ".husky")


def protected_mounts(workspace: Mount, *, git_writable: bool) -> tuple[Mount, ...]:
    """Read-only mounts over the sensitive paths that exist in a rw workspace;
    the whole `.git` (directory or `gitdir:` file) unless `git_writable` — a
    mount point cannot be renamed away, replaced or written.

    What such a path stands for is protected too, when it lies in the same
    workspace: the target of a symbolic link (`.envrc -> envrc.real`, `.git ->
    gitstore`) and the directory a `gitdir:` file names. Found by a blind
    attack: with `.git` a link or a `gitdir:` file, the real git directory
    stayed writable, and the sandbox set `core.fsmonitor` there for the
    host's next `git status` to run. (The link itself is not a mount point
    and can still be replaced: the end-of-run list names it.)"""
    if workspace.read_only or workspace.overlay:
        return ()
    found: dict[str, Mount] = {}
    relatives = PROTECTED_IN_WORKSPACE if git_writable else (
        ".git", *(r for r in PROTECTED_IN_WORKSPACE if not r.startswith(".git/")))
    for relative in relatives:
        path = os.path.join(workspace.source, relative)
        if not os.path.lexists(path):
            continue
        if not os.path.islink(path):
            found.setdefault(path, Mount(path, posixpath.join(workspace.target, relative), True))
        for real in _stands_for(path, relative, workspace.source):
            inside = posixpath.relpath(real, workspace.source)
            found.setdefault(real, Mount(real, posixpath.join(workspace.target, inside), True))
    return tuple(found.values())


def _stands_for(path: str, relative: str, top: str) -> list[str]:
    """What a protected path makes the host read instead, inside `top`
    (resolved, existing): a link's target; for `.git`, also the directory its
    `gitdir:` line names (gitrepository-layout(5))."""
    found = []
    if os.path.islink(path):
        found.append(os.path.realpath(path))
    if relative == ".git" and os.path.isfile(path):
        try:
            with open(path, "rb") as gitfile:
                first = gitfile.read(4096).split(b"\n", 1)[0].strip()
        except OSError:
            first = b""
        if first.startswith(b"gitdir:"):
            named = os.fsdecode(first[len(b"gitdir:"):].strip())
            found.append(os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(path)), named)))
    return [real for real in found if real != top and real.startswith(top.rstrip("/") + "/") and os.path.exists(real)]


@record
class DenyRule:
    """A host path no mount may expose."""

    path: str  # absolute; with `glob`, components may be fnmatch patterns (`*` stays within a component)
    reason: str
    subtree: bool  # True: nothing inside it either; False: only it and its ancestors
    shown: str = ""  # the path as written, when `path` is its resolved form: named in the refusal
    glob: bool = False
    writable_only: bool = False  # refused read-write only: what the host runs later
    socket_waivable: bool = False  # a socket the system policy allows may lie inside (/run/user)


@record
class DenyList:
    """The deny rules of one run, and the sockets the system policy allows."""

    rules: tuple[DenyRule, ...]
    allowed_sockets: tuple[str, ...] = ()  # absolute, resolved; components may be fnmatch patterns


def denied_sources(home: str, extra: tuple[str, ...] = (), policy_denied: tuple[str, ...] = (), *,
                   allowed_sockets: tuple[str, ...] = ()) -> DenyList:
    """Paths no mount may expose, for a caller whose (real) home is `home`.

    `extra`: Vectra Guard's own state (paths.own_state()); `policy_denied`:
    the system policy's filesystem.denied_paths; `allowed_sockets`: its
    filesystem.allowed_sockets. Every rule is kept as written and resolved.
    """
    from vectraguard.sandbox import deny_cache

    homes = _login_homes(home)
    # Everything the rules are made of, for the cache's key (sandbox/deny_cache.py).
    entry_key = deny_cache.key({"home": home, "homes": homes, "extra": list(extra), "policy": list(policy_denied),
                                "sockets": list(allowed_sockets), "user": _user_name(), "shipped": _shipped()},
                               engine_settings_files(home))
    cached = deny_cache.lookup(entry_key)
    if cached is not None:
        try:
            return DenyList(tuple(DenyRule(*fields) for fields in cached[0]), tuple(map(str, cached[1])))
        except TypeError:
            pass  # not rules this code wrote: built afresh below
    rules = [*_home_rules(homes), *_runtime_rules(home), *_host_rules(), *_own_rules(extra), *_hidden_rules(homes),
             *(DenyRule(path, "denied by the system policy", True) for path in policy_denied)]
    realpath = _RealPaths()
    resolved = [both for rule in rules for both in _as_written_and_resolved(rule, realpath)]
    result = DenyList(tuple(dict.fromkeys(resolved)), tuple(_resolve_pattern(p, realpath) for p in allowed_sockets))
    deny_cache.store(entry_key, realpath.checked, [[r.path, r.reason, r.subtree, r.shown, r.glob, r.writable_only,
                                                    r.socket_waivable] for r in result.rules],
                     list(result.allowed_sockets))
    return result


def _user_name() -> str:
    """The effective user's name (storage.conf's $USER), "" when it has none."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return ""


def _login_homes(caller_home: str) -> dict[str, str]:
    """Home directory -> how a refusal names it: the caller's, root's and every login user's."""
    homes = {caller_home: "your home directory itself"} if caller_home and caller_home != "/" else {}
    for entry in pwd.getpwall():
        home = os.path.normpath(entry.pw_dir) if entry.pw_dir.startswith("/") else "/"
        if (entry.pw_uid == 0 or entry.pw_uid in LOGIN_UIDS) and home != "/":
            homes.setdefault(os.path.realpath(home), f"the home directory of {entry.pw_name}")
    return homes


def _hidden_rules(homes: dict[str, str]) -> list[DenyRule]:
    """Read-write, every hidden file and directory at the top of a home: that
    is where programs on the host keep what they read and run
    (~/.local/lib/python*/site-packages/*.pth, editor and shell start-up
    files, ~/.cargo/bin, ~/.config/*): no list of them can be complete.
    Last, so that a more specific rule names what a mount exposes."""
    return [DenyRule(os.path.join(home, ".*"), "configuration or tools the host reads and runs later",
                     True, writable_only=True, glob=True) for home in homes]


def _home_rules(homes: dict[str, str]) -> list[DenyRule]:
    """`homes`: _login_homes()."""
    rules = []
    for home, reason in homes.items():
        # A project inside a home directory is fine; the home directory as a
        # whole (dotfiles, every other project) is not.
        rules.append(DenyRule(home, reason, subtree=False))
        rules += [DenyRule(os.path.join(home, s), "credentials or container configuration", True) for s in HOME_SECRETS]
        rules += [DenyRule(os.path.join(home, s), "Vectra Guard's own state", True) for s in HOME_OWN_STATE]
        rules += [DenyRule(os.path.join(home, s), "the host runs it later", True, writable_only=True) for s in HOME_CODE]
    return rules


def _runtime_rules(home: str) -> list[DenyRule]:
    rules = [DenyRule(path, "a container runtime socket or store", True, socket_waivable=path == "/run/user")
             for path in RUNTIME_SOCKETS]
    tmpdir = os.environ.get("TMPDIR", "")
    for tmp in dict.fromkeys(("/tmp", tmpdir if tmpdir.startswith("/") else "/tmp")):
        rules += [DenyRule(os.path.join(tmp, name), "a rootless Podman runtime directory", True, glob=True)
                  for name in ROOTLESS_RUNTIME]
    runtime_dirs = [("/run/user/*", True)]
    xdg_runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg_runtime.startswith("/"):
        runtime_dirs.append((xdg_runtime, False))
    rules += [DenyRule(os.path.join(base, name), "a container runtime's or the user session's control socket",
                       True, glob=glob) for base, glob in runtime_dirs for name in USER_RUNTIME]
    xdg_data = os.environ.get("XDG_DATA_HOME", "")
    stores = [*_storage_conf_dirs(home), *([os.path.join(xdg_data, "containers")] if xdg_data.startswith("/") else [])]
    rules += [DenyRule(path, "a container store (storage.conf)", True) for path in stores]
    rules += [DenyRule(path, "Docker Engine's store (daemon.json)", True) for path in _docker_daemon_dirs(home)]
    return rules


def engine_settings_files(home: str) -> list[str]:
    """The container engines' settings files the rules read (storage.conf, daemon.json), present or not:
    what the deny list's cache key holds by identity (sandbox/deny_cache.py)."""
    return [*_storage_conf_files(home), *_docker_daemon_files(home)]


def _docker_daemon_files(home: str) -> list[str]:
    """The daemon.json files of a rootful and of this user's rootless Docker Engine, present or not."""
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    rootless = os.path.join(config_home if config_home.startswith("/") else os.path.join(home, ".config"),
                            "docker", "daemon.json")
    return [DOCKER_DAEMON_JSON, rootless]


def _docker_daemon_dirs(home: str) -> list[str]:
    """The data-root and exec-root those daemon.json files move Docker's store and state to (the defaults,
    /var/lib/docker and /run/docker, and rootless Docker's in the home, are denied whatever they say)."""
    import json

    found: list[str] = []
    for name in _docker_daemon_files(home):
        try:
            with open(name, "rb") as stream:
                settings = json.load(stream)
        except (OSError, ValueError):
            continue  # absent is usual; a broken file dockerd refuses itself
        if isinstance(settings, dict):
            found += [value for key in ("data-root", "exec-root") if isinstance(value := settings.get(key), str)]
    return [path for path in found if path.startswith("/") and os.path.normpath(path) != "/"]


def _storage_conf_dirs(home: str) -> list[str]:
    """runroot, graphroot, rootless_storage_path and image stores named by every
    storage.conf Podman would read, rootful or rootless (containers-storage.conf(5))."""
    found: list[str] = []
    for name in _storage_conf_files(home):
        storage = _read_toml(name).get("storage")
        if not isinstance(storage, dict):
            continue
        options = storage.get("options")
        stores = options.get("additionalimagestores") if isinstance(options, dict) else None
        values = [storage.get(key) for key in ("runroot", "graphroot", "rootless_storage_path", "imagestore")]
        values += stores if isinstance(stores, list) else []
        found += [_expand_storage_path(v, home) for v in values if isinstance(v, str)]
    # "/" would be every path: a value that resolves to it is a broken file, not a store.
    return [path for path in found if path.startswith("/") and os.path.normpath(path) != "/"]


def _storage_conf_files(home: str) -> list[str]:
    """Every storage.conf Podman would read, rootful or rootless, present or not."""
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    files = [*STORAGE_CONFS, os.environ.get("CONTAINERS_STORAGE_CONF", ""),
             os.path.join(config_home if config_home.startswith("/") else os.path.join(home, ".config"),
                          "containers", "storage.conf")]
    return list(filter(None, files))


def _read_toml(name: str) -> dict[str, Any]:
    try:
        with open(name, "rb") as stream:
            import tomllib  # only when such a file exists: ~2 ms of every run's start otherwise

            return tomllib.load(stream)
    except (OSError, ValueError):
        # Absent is usual; a broken file Podman refuses itself, and the
        # default stores are denied whatever the files say.
        return {}


def _expand_storage_path(value: str, home: str) -> str:
    # The variables containers-storage.conf(5) documents for rootless_storage_path.
    user = pwd.getpwuid(os.geteuid()).pw_name if "$USER" in value else ""
    return value.replace("$HOME", home).replace("$UID", str(os.geteuid())).replace("$USER", user)


def _host_rules() -> list[DenyRule]:
    return [*(DenyRule(path, "the host's kernel interfaces", True) for path in KERNEL_TREES),
            *(DenyRule(path, "secrets of the host", True) for path in HOST_SECRETS),
            DenyRule("/boot", "the kernel and initramfs the host boots", True)]


def _own_rules(own_state: tuple[str, ...]) -> list[DenyRule]:
    return [*(DenyRule(path, "Vectra Guard's own state", True) for path in own_state),
            # every user's runtime directory without XDG_RUNTIME_DIR (paths.runtime_dir)
            DenyRule("/tmp/vectraguard-*", "Vectra Guard's own state", True, glob=True),
            *(DenyRule(path, "Vectra Guard's own code and shipped profiles", True, writable_only=True)
              for path in _shipped())]


def _shipped() -> list[str]:
    """Vectra Guard's code, shipped profiles and schemas, and its own virtual environment."""
    import vectraguard
    from vectraguard import resources

    shipped = [os.path.dirname(os.path.abspath(vectraguard.__file__)), str(resources.profiles_dir()),
               str(resources.schema_path("policy").parent)]
    if sys.prefix != sys.base_prefix:  # a virtual environment of Vectra Guard's own (pipx, /opt/vectraguard)
        shipped.append(sys.prefix)
    return shipped


def _as_written_and_resolved(rule: DenyRule, realpath: _RealPaths) -> list[DenyRule]:
    written = os.path.abspath(rule.path)
    resolved = _resolve_pattern(written, realpath) if rule.glob else realpath(written)
    rules = [replace(rule, path=written)]
    if resolved != written:
        rules.append(replace(rule, path=resolved, shown=written))
    return rules


def _resolve_pattern(pattern: str, realpath: Callable[[str], str] = os.path.realpath) -> str:
    """`pattern` with the part before its first wildcard resolved."""
    parts = _parts(pattern)
    fixed = next((i for i, part in enumerate(parts) if _is_pattern(part)), len(parts))
    return posixpath.join(realpath("/" + "/".join(parts[:fixed])), *parts[fixed:])


class _RealPaths:
    """os.path.realpath for the ~350 deny rules of one run, each directory
    resolved once: they share parents (every home's, /run, /var/lib), and
    realpath alone would lstat each parent again for each rule (~1,000
    lstat calls, ~2 ms of every run's start).

    realpath(D/NAME) is realpath(realpath(D)/NAME): with D resolved, only
    NAME remains to look at. Not a symbolic link (or absent, as realpath
    takes an absent name as it stands): D/NAME as it is; a link: realpath
    itself, from there. Paths given must be absolute and normalised (no
    `.` or `..`: os.path.abspath's), as the rules are."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {"/": "/"}
        self.checked: list[list[Any]] = []  # [path lstat'ed, a link?, resolved], parents first (deny_cache.py)

    def __call__(self, path: str) -> str:
        known = self.known.get(path)
        if known is not None:
            return known
        parent, name = posixpath.split(path)
        if name in ("", ".", "..") or not parent.startswith("/"):  # not as the rules are: realpath's own way
            self.checked.append([path, None, ""])  # what a cache could not check again: none is kept
            return os.path.realpath(path)
        candidate = posixpath.join(self(parent), name)
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except OSError:
            is_link = False
        resolved = os.path.realpath(candidate) if is_link else candidate
        self.known[path] = resolved
        self.checked.append([candidate, is_link, resolved])
        return resolved


def _is_pattern(part: str) -> bool:
    return any(c in part for c in "*?[")


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _exposed(rule: DenyRule, real: str) -> str | None:
    """What of `rule` a mount of `real` exposes, as the refusal names it; None: nothing."""
    want, have = _parts(rule.path), _parts(real)
    same = fnmatch.fnmatchcase if rule.glob else str.__eq__
    if not all(same(h, w) for h, w in zip(have, want)):
        return None
    if len(have) < len(want):  # an ancestor of it
        return rule.shown or rule.path
    if len(have) > len(want) and not rule.subtree:
        return None
    # The path itself, or inside it: a pattern is named by what matched it.
    return rule.shown or "/" + "/".join(have[:len(want)])


def check_source_allowed(real: str, denied: DenyList | tuple[DenyRule, ...], origin: Origin, *,
                         writable: bool = True) -> None:
    """Refuse (PolicyError, one located line) a resolved source that exposes
    what `denied` names, or a door into a host process (socket, FIFO, device
    node; or a directory with one among its direct entries). `writable`: the
    mount is read-write (the default, being the stricter)."""
    rules = denied if isinstance(denied, DenyList) else DenyList(denied)
    if real == "/":
        raise PolicyError(f"vectraguard: {origin}: refusing to mount / (the whole host filesystem)")
    socket = _is_allowed_socket(real, rules.allowed_sockets)
    for rule in rules.rules:
        if (rule.writable_only and not writable) or (socket and rule.socket_waivable):
            continue
        exposed = _exposed(rule, real)
        if exposed is not None:
            how = " read-write" if rule.writable_only else ""
            raise PolicyError(
                f"vectraguard: {origin}: refusing to mount {real}{how}: it exposes {exposed} ({rule.reason})",
                hint="mount it read-only" if rule.writable_only else "mount a project directory instead",
            )
    if not socket:
        _check_special_files(real, origin)


_SOCKET_HINT = ("a socket is mounted only when the mount names it and the system policy allows it "
                "(filesystem.allowed_sockets, see man vectraguard-profile)")


def _special_kind(mode: int) -> str | None:
    if stat.S_ISSOCK(mode):
        return "a socket (a door into the host process listening on it, e.g. an SSH agent)"
    if stat.S_ISFIFO(mode):
        return "a FIFO (a channel to host processes)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node (the host's hardware or kernel)"
    return None


def _check_special_files(real: str, origin: Origin) -> None:
    try:
        mode = os.stat(real).st_mode
        kind = _special_kind(mode)
        found = _special_entry(real) if kind is None and stat.S_ISDIR(mode) else None
    except OSError as exc:
        raise PolicyError(f"vectraguard: {origin}: cannot check mount source {real} for sockets "
                          f"({exc.strerror})") from None
    if kind is not None:
        raise PolicyError(f"vectraguard: {origin}: refusing to mount {real}: it is {kind}",
                          hint=_SOCKET_HINT if kind.startswith("a socket") else "mount a project directory instead")
    if found is not None:
        path, what = found
        raise PolicyError(f"vectraguard: {origin}: refusing to mount {real}: it holds {path}, {what}",
                          hint=_SOCKET_HINT if what.startswith("a socket") else "mount a directory without it")


def _special_entry(directory: str) -> tuple[str, str] | None:
    """The first direct entry of `directory` that is a socket, FIFO or device node."""
    with os.scandir(directory) as entries:
        for entry in entries:
            # d_type answers these without a system call; only the rest is stat'ed.
            if entry.is_symlink() or entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                continue
            kind = _special_kind(entry.stat(follow_symlinks=False).st_mode)
            if kind is not None:
                return entry.path, kind
    return None


def _is_allowed_socket(real: str, patterns: tuple[str, ...]) -> bool:
    if not patterns:
        return False
    try:
        if not stat.S_ISSOCK(os.stat(real).st_mode):
            return False
    except OSError:
        return False
    have = _parts(real)
    return any(len(want) == len(have) and all(map(fnmatch.fnmatchcase, have, want))
               for want in map(_parts, patterns))


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def make_mount(source: str, target: str, mode: str, *, cwd: str, origin: Origin,
               denied: DenyList | tuple[DenyRule, ...]) -> Mount:
    real = canonical_source(source, cwd, origin)
    check_source_allowed(real, denied, origin, writable=mode == "rw")
    return Mount(real, canonical_target(target, origin), mode not in ("rw", "overlay"), overlay=mode == "overlay")


def real_home() -> str:
    try:
        return os.path.realpath(str(Path.home()))
    except (RuntimeError, OSError):
        return ""
