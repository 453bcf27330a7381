"""One canonicalizer for every host path that becomes a mount.

Sources are taken literally — no `~`, `$VAR` or `$(...)` expansion, ever —
made absolute against the working directory, resolved to their real path
(so a symlink cannot smuggle in another directory) and checked against the
built-in deny rules. Targets must be absolute, normalized and outside the
paths the runtime itself owns.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from vectraguard.config.problems import Origin
from vectraguard.errors import PolicyError

# Inside the sandbox these belong to the kernel or the runtime.
FORBIDDEN_TARGETS = ("/", "/proc", "/sys", "/dev", "/run", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/var", "/boot")

# Kernel interfaces: nothing may be mounted anywhere below them.
KERNEL_TREES = ("/proc", "/sys", "/dev")

# Relative to the caller's home: credentials and container configuration.
HOME_SECRETS = (".ssh", ".aws", ".gnupg", ".kube", ".docker", ".config/containers", ".config/gcloud",
                ".config/gh", ".netrc", ".password-store", ".local/share/containers")

RUNTIME_SOCKETS = ("/run/podman", "/var/run/podman", "/run/docker.sock", "/var/run/docker.sock",
                   "/run/containerd", "/var/lib/containers", "/run/containers", "/run/user")


@dataclass(frozen=True)
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
PROTECTED_IN_WORKSPACE = (".git/hooks", ".git/config", ".envrc", ".vscode/tasks.json", ".idea/workspace.xml")


def protected_mounts(workspace: Mount, *, git_writable: bool) -> tuple[Mount, ...]:
    """Read-only mounts over the sensitive paths that exist in a rw workspace;
    the whole `.git` (directory or `gitdir:` file) unless `git_writable` — a
    mount point cannot be renamed away, replaced or written."""
    if workspace.read_only or workspace.overlay:
        return ()
    found = []
    relatives = PROTECTED_IN_WORKSPACE if git_writable else (
        ".git", *(r for r in PROTECTED_IN_WORKSPACE if not r.startswith(".git/")))
    for relative in relatives:
        path = os.path.join(workspace.source, relative)
        # Only real files and directories of the workspace itself (no symlink games).
        if os.path.lexists(path) and not os.path.islink(path):
            found.append(Mount(path, posixpath.join(workspace.target, relative), True))
    return tuple(found)


@dataclass(frozen=True)
class DenyRule:
    """A host path no mount may expose."""

    path: str
    reason: str
    subtree: bool  # True: nothing inside it either; False: only it and its ancestors


def denied_sources(home: str, extra: tuple[str, ...] = (), policy_denied: tuple[str, ...] = ()) -> tuple[DenyRule, ...]:
    """Paths no mount may expose. A mount of an ancestor exposes them too."""
    rules: list[DenyRule] = []
    if home and home != "/":
        # A project inside the home directory is fine; the home directory
        # as a whole (dotfiles, every other project) is not.
        rules.append(DenyRule(home, "your home directory itself", subtree=False))
        rules += [DenyRule(os.path.join(home, s), "credentials or container configuration", True) for s in HOME_SECRETS]
    rules += [DenyRule(sock, "a container runtime socket or store", True) for sock in RUNTIME_SOCKETS]
    rules += [DenyRule(path, "Vectra Guard's own state", True) for path in extra]
    rules += [DenyRule(path, "denied by the system policy", True) for path in policy_denied]
    return tuple(rules)


def check_source_allowed(real: str, denied: tuple[DenyRule, ...], origin: Origin) -> None:
    if real == "/":
        raise PolicyError(f"vectraguard: {origin}: refusing to mount / (the whole host filesystem)")
    for rule in denied:
        if _within(rule.path, real) or (rule.subtree and _within(real, rule.path)):
            raise PolicyError(
                f"vectraguard: {origin}: refusing to mount {real}: it exposes {rule.path} ({rule.reason})",
                hint="mount a project directory instead",
            )


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def make_mount(source: str, target: str, mode: str, *, cwd: str, origin: Origin,
               denied: tuple[DenyRule, ...]) -> Mount:
    real = canonical_source(source, cwd, origin)
    check_source_allowed(real, denied, origin)
    return Mount(real, canonical_target(target, origin), mode not in ("rw", "overlay"), overlay=mode == "overlay")


def real_home() -> str:
    try:
        return os.path.realpath(str(Path.home()))
    except (RuntimeError, OSError):
        return ""
