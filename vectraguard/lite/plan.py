"""What a `lite` run needs beyond its ContainerSpec, found before anything
starts (commands/run.py prepare: every refusal happens there).

- the image's root filesystem, unpacked by `vectraguard image build`
  (images/unpacked.py), and its top-level entries: the sandbox's `/` is a
  tmpfs bubblewrap makes read-only once every mount is in place, with each
  top-level directory of the image bound read-only on it (so a mount target
  directly below `/` needs no directory in the image);
- the shipped seccomp profile compiled to BPF (seccomp_bpf.py), cached;
- rootful, the host user bubblewrap runs as (support.SANDBOX_USER).
"""

from __future__ import annotations

import os
import posixpath
import stat

from vectraguard import errors
from vectraguard.lite import support
from vectraguard.records import record
from vectraguard.sandbox.entry import ENTRY_TARGET
from vectraguard.sandbox.spec import ContainerSpec

# Made by the runtime on the sandbox's root, never taken from the image:
# /run holds only the init (ENTRY_TARGET); /proc and /dev are bubblewrap's;
# there is no /sys (the init's comment in contrib/lite says why).
OWN_TOP_LEVEL = frozenset({"proc", "dev", "run", "sys"})


@record
class RootEntry:
    """A top-level entry of the unpacked image."""

    name: str
    kind: str  # "dir" | "file" | "symlink"
    link: str = ""  # a symlink's target, as written


@record
class LitePlan:
    root: str  # the unpacked tree (images/unpacked.py)
    image_id: str  # "sha256:<hex>": the Podman image it was unpacked from
    entries: tuple[RootEntry, ...]  # bound on the sandbox's root, minus what a mount target replaces
    bpf_path: str  # the seccomp filter, classic BPF (seccomp_bpf.py)
    init_path: str  # vectraguard-lite-init on the host
    run_as: tuple[int, int] | None  # rootful: the host uid and gid bubblewrap runs as; None: the caller


def prepare(spec: ContainerSpec, rootless: bool) -> LitePlan:
    """IsolationUnavailable (nothing runs) when the image is not unpacked, a
    mount target cannot be made in it, or the sandbox user is missing;
    ConfigError when the seccomp profile cannot be compiled."""
    from vectraguard.images import unpacked_root as unpacked

    if support.landlock_abi() < 1:
        raise errors.IsolationUnavailable(f"vectraguard: isolation lite cannot be given here: {support.NO_LANDLOCK}",
                                          hint="`vectraguard doctor` says which isolation levels this host supports")
    found = unpacked.lookup(spec.image)
    if found is None:
        raise errors.IsolationUnavailable(
            f"vectraguard: isolation lite runs the image's files without Podman, and {spec.image} has not been "
            "unpacked for it",
            hint="`vectraguard image build` unpacks the images it builds; `vectraguard image unpack REF` one "
                 "loaded into Podman some other way")
    root = str(found.path)
    targets = (*spec.mount_targets(), "/etc/hosts", ENTRY_TARGET)
    entries = _entries(root, {_top(target) for target in targets if _top(target) == target.strip("/")})
    for target in targets:
        _check_target(root, target, entries)
    from vectraguard.isolation.files import check_reachable

    check_reachable("lite", rootless, [root])  # the mount sources: commands/run.py, for every level
    return LitePlan(root, found.image_id, entries, _bpf(spec.seccomp_profile_path), support.init_path(),
                    None if rootless else sandbox_user())


def _top(target: str) -> str:
    return target.strip("/").split("/", 1)[0]


def _entries(root: str, replaced: set[str]) -> tuple[RootEntry, ...]:
    found = []
    for name in sorted(os.listdir(root)):
        if name in OWN_TOP_LEVEL or name in replaced:
            continue
        info = os.lstat(os.path.join(root, name))
        if stat.S_ISLNK(info.st_mode):
            found.append(RootEntry(name, "symlink", os.readlink(os.path.join(root, name))))
        elif stat.S_ISDIR(info.st_mode):
            found.append(RootEntry(name, "dir"))
        elif stat.S_ISREG(info.st_mode):
            found.append(RootEntry(name, "file"))
    return tuple(found)


def _check_target(root: str, target: str, entries: tuple[RootEntry, ...]) -> None:
    """A target below a directory taken from the image must exist in the image
    (that directory is read-only: bubblewrap cannot make the mount point)."""
    top = _top(target)
    if top in OWN_TOP_LEVEL or not any(e.name == top and e.kind == "dir" for e in entries):
        return
    path = root
    for part in target.strip("/").split("/"):
        path = posixpath.join(path, part)
        try:
            info = os.lstat(path)
        except OSError:
            info = None
        if info is None or stat.S_ISLNK(info.st_mode):
            raise errors.IsolationUnavailable(
                f"vectraguard: isolation lite cannot mount at {target}: the image has no "
                f"{'directory' if info is None else 'plain path'} there, and its {posixpath.join('/', top)} is "
                "read-only in the sandbox",
                hint="mount at a path the image has, or directly below / (e.g. /data), or use isolation container")


def _bpf(profile_path: str) -> str:
    from vectraguard.lite import seccomp_cache as seccomp_bpf
    from vectraguard.paths import ensure_private_dir, runtime_dir

    directory = runtime_dir() / "seccomp"
    ensure_private_dir(directory)
    try:
        return str(seccomp_bpf.cached_bpf(profile_path, directory))
    except (ValueError, OSError) as exc:
        raise errors.ConfigError(f"vectraguard: cannot compile the seccomp profile {profile_path} for isolation "
                                 f"lite: {exc}", hint="reinstall Vectra Guard (see README.md)") from None


def sandbox_user() -> tuple[int, int]:
    """The host uid and gid a rootful sandbox runs as; IsolationUnavailable when there is no such user."""
    import pwd

    try:
        entry = pwd.getpwnam(support.SANDBOX_USER)
    except KeyError:
        raise errors.IsolationUnavailable(
            f"vectraguard: isolation lite runs a rootful sandbox as the system user {support.SANDBOX_USER}, "
            "and there is none", hint="rerun contrib/install.sh (it creates it)") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise errors.IsolationUnavailable(
            f"vectraguard: the system user {support.SANDBOX_USER} has uid or gid 0: it must own nothing",
            hint=f"userdel {support.SANDBOX_USER} and rerun contrib/install.sh")
    return entry.pw_uid, entry.pw_gid
