"""`vectraguard run` (= `sandbox run`): one command in a fresh sandbox."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vectraguard import approval, diag, errors, paths, resources, units
from vectraguard.audit import record
from vectraguard.audit.capture import OutputCapture
from vectraguard.audit.run_audit import RunAudit
from vectraguard.config import policy, profiles
from vectraguard.config.layers import Layer, validated_layer
from vectraguard.config.problems import Origin, raise_if_any
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.runtime import host as host_facts
from vectraguard.runtime import service
from vectraguard.runtime.attach import usable_stdin, write_to_fds
from vectraguard.runtime.owner import current_owner
from vectraguard.runtime.session import run_session
from vectraguard.sandbox import mounts as mount_rules
from vectraguard.sandbox.compile import PROXY_VARIABLES, Compiled, compile_spec
from vectraguard.sandbox.request import RunRequest

COMMAND_LINE = "command line"
DEFAULT_IMAGE_PREFIX = "localhost/vectraguard/"


@dataclass(frozen=True)
class Prepared:
    """Everything decided before anything runs."""

    profile: ResolvedProfile
    facts: host_facts.HostFacts
    mounts: tuple[mount_rules.Mount, ...]
    image_ref: str
    compiled: Compiled
    allowlist: Any  # network.allowlist.Allowlist in allowlist mode, else None
    approvals: tuple[dict[str, str], ...]


def main(args: argparse.Namespace) -> int:
    if not args.command:
        raise errors.UsageError("vectraguard: no command given", hint="vectraguard run [OPTIONS] -- CMD [ARG...]")
    return launch(args, interactive=False)


def launch(args: argparse.Namespace, *, interactive: bool) -> int:
    """Record, prepare and run one sandbox session; interactive sessions get the
    terminal (a pseudo-terminal inside) and are recorded as asciicast."""
    cwd = _working_directory()
    session_id, owner = new_session_id(), current_owner()
    agent = args.agent or os.environ.get("VECTRAGUARD_AGENT") or None
    audit = RunAudit.open(session_id, agent, list(args.command), cwd, owner)
    try:
        prepared = prepare(args, cwd, session_id, owner, terminal=interactive)
    except errors.VGError as exc:
        # Refusals are attempts too: they go on the record.
        audit.refused(getattr(exc, "profile", None) or args.profile, " ".join(exc.lines()))
        exc.recorded = True  # type: ignore[attr-defined]
        raise
    recording = None
    if interactive:
        from vectraguard.audit.recording import AsciicastWriter

        columns, rows = os.get_terminal_size(0)
        recording = AsciicastWriter(session_id, columns, rows, shlex.join(args.command))
    return execute(prepared, audit, recording)


def prepare(args: argparse.Namespace, cwd: str, session_id: str, owner: str, *, terminal: bool = False) -> Prepared:
    """Resolve, check and compile: every refusal happens here, before any record says `started`."""
    if args.workdir is not None and (not args.workdir.startswith("/") or "\0" in args.workdir):
        raise errors.UsageError(f"vectraguard: --workdir {args.workdir!r}: must be an absolute path inside the sandbox")
    sources = profiles.Sources.for_directory(cwd, ignore_project=args.ignore_project)
    request = RunRequest(
        argv=tuple(args.command),
        profile=args.profile or sources.default_name(),
        cwd=cwd,
        host_env=tuple(os.environ.items()),
        session_id=session_id,
        owner=owner,
        image_override=args.image,
        workdir_override=args.workdir,
        terminal=terminal,
    )
    profile = profiles.resolve(request.profile, [flags_layer(args)], sources)
    system_policy = policy.load()
    raise_if_any(policy.check_profile(profile, system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    approvals: tuple[dict[str, str], ...] = ()
    if profile.network_mode == "full":
        origin = profile.provenance.get("network.mode", Origin("?"))
        approvals = (approval.require(f"the full network for `{shlex.join(args.command)[:120]}` (set by {origin})",
                                      yes=args.yes, at=record.now()),)
    allowlist = _allowlist(profile) if profile.network_mode == "allowlist" else None
    facts = host_facts.detect()
    sandbox_mounts = resolve_mounts(profile, request, system_policy, rootless=facts.rootless)
    image_ref = request.image_override or profile.image
    compiled = compile_spec(profile, request, facts, image=image_ref, mounts=sandbox_mounts,
                            seccomp_profile_path=str(resources.seccomp_path(profile.seccomp)))
    return Prepared(profile, facts, sandbox_mounts, image_ref, compiled, allowlist, approvals)


def _allowlist(profile: ResolvedProfile) -> Any:
    from vectraguard.network.allowlist import Allowlist

    try:
        return Allowlist.parse(profile.network_allow)
    except ValueError as exc:
        origin = profile.provenance.get("network.allow", Origin("<profile>"))
        raise errors.PolicyError(f"vectraguard: {origin}: network.allow: {exc}") from None


def execute(prepared: Prepared, audit: RunAudit, recording: Any = None) -> int:
    """Run the prepared sandbox; with a `recording` (an AsciicastWriter) it is
    an interactive session on this terminal (stdin is the terminal)."""
    profile, spec = prepared.profile, prepared.compiled.spec
    for notice in prepared.compiled.notices:
        print(f"vectraguard: warning: {notice}", file=sys.stderr)
    audit.started(profile, prepared.mounts, dict(spec.env), prepared.image_ref)
    capture = OutputCapture()
    passthrough = write_to_fds({1: 1, 2: 2})

    def sink(stream: int, data: bytes) -> None:
        passthrough(stream, data)
        capture.feed(stream, data)
        if recording is not None:
            recording.feed(stream, data)

    egress = Egress(prepared.allowlist, prepared.facts.rootless)
    try:
        client = service.connect()
        with _raw_terminal(0 if spec.terminal else None):
            result = run_session(client, spec, timeout=profile.limits.timeout, kill_grace=profile.limits.kill_grace,
                                 stdin_fd=usable_stdin(0), sink=sink, cgroup_mode=prepared.facts.cgroup_mode,
                                 before_start=egress.plant if prepared.allowlist is not None else None,
                                 tty_fd=0 if spec.terminal else None)
    except errors.VGError as exc:
        if isinstance(exc, errors.ImageNotFound):
            exc.hint = _image_hint(prepared.image_ref)
        audit.finished("failed", exc.exit_status, " ".join(exc.lines()), "", capture, egress.close(),
                       prepared.approvals, recording.close() if recording is not None else None)
        raise
    status = record.status_for(result.reason, result.exit_status)
    audit.finished(status, result.exit_status, result.reason, result.image_id, capture, egress.close(),
                   prepared.approvals, recording.close() if recording is not None else None)
    diag.info(f"session {audit.session_id}: profile {profile.name}, image {prepared.image_ref} = {result.image_id}")
    _report(result.reason, result.exit_status, profile)
    return result.exit_status


@contextlib.contextmanager
def _raw_terminal(fd: int | None) -> Iterator[None]:
    """Keystrokes (Ctrl-C included) go to the sandboxed program, not to us;
    the terminal's settings come back whatever happens."""
    if fd is None:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Egress:
    """The allowlist proxy of one session: planted before the command starts,
    closed when the session ends, whatever way it ends."""

    def __init__(self, allowlist: Any, rootless: bool) -> None:
        self.allowlist = allowlist
        self.rootless = rootless
        self.servers: list[Any] = []
        self.log: Any = None

    def plant(self, pid: int) -> None:
        from vectraguard.network.allowlist import forwarded_hosts
        from vectraguard.network.dial import ConnectionLog
        from vectraguard.network.forward import Forwarder
        from vectraguard.network.plant import listen_in, listen_in_rootless
        from vectraguard.network.proxy import ProxyServer
        from vectraguard.sandbox.compile import PROXY_ADDRESS, PROXY_PORT

        forwards = [(name, address, port) for name, address, ports in forwarded_hosts(self.allowlist.entries)
                    for port in ports]
        try:
            plant = listen_in_rootless if self.rootless else listen_in
            listeners = plant(pid, [(PROXY_ADDRESS, PROXY_PORT), *((a, p) for _, a, p in forwards)])
        except OSError as exc:
            raise errors.RuntimeUnavailable(
                f"vectraguard: could not install the egress proxy in the sandbox ({exc.strerror}); nothing ran",
                hint="see `vectraguard doctor`; rootless, `podman unshare` must work for you") from None
        self.log = ConnectionLog()
        self.servers.append(ProxyServer(listeners[0], self.allowlist, self.log))
        self.servers += [Forwarder(listener, name, port, self.allowlist, self.log)
                         for listener, (name, _, port) in zip(listeners[1:], forwards)]
        for server in self.servers:
            server.start()

    def close(self) -> list[dict[str, Any]] | None:
        for server in self.servers:
            server.close()
        return self.log.snapshot() if self.log is not None else None


def new_session_id() -> str:
    return record.new_session_id()


def _working_directory() -> str:
    try:
        return os.path.realpath(os.getcwd())
    except OSError as exc:
        raise errors.UsageError(f"vectraguard: the current directory is not accessible: {exc.strerror}") from None


def flags_layer(args: argparse.Namespace) -> Layer:
    """Per-run flags become the last, highest layer, validated like a file."""
    data: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    for flag, path in (("cpus", "limits.cpus"), ("memory", "limits.memory"), ("timeout", "limits.timeout"),
                       ("network", "network.mode"), ("workspace", "filesystem.workspace.mode")):
        if getattr(args, flag) is not None:
            put(path, getattr(args, flag))
    if args.pids is not None:
        put("limits.pids", int(args.pids))
    if args.mount:
        put("filesystem.mounts", [parse_mount_flag(m) for m in args.mount])
    if args.allow and args.network is None:
        put("network.mode", "allowlist")  # --allow alone means: this, and nothing else
    env_set = parse_env_flags(args.env, os.environ)
    if env_set:
        put("env.set", env_set)
    appends: list[tuple[str, tuple[Any, ...]]] = []
    if args.allow:
        # --allow adds to the profile's allowlist rather than replacing it.
        appends.append(("network.allow", tuple(args.allow)))
    for item in args.set:
        key, value, append = parse_set_flag(item)
        if key in ("extends", "include"):
            raise errors.UsageError(f"vectraguard: --set {key}: choose the profile with -p; "
                                    "extends and include belong in profile files")
        if append:
            appends.append((key, tuple(value if isinstance(value, list) else [value])))
        else:
            put(key, value)
    layer = validated_layer(COMMAND_LINE, data, "profile")
    if appends:
        # What is appended must be valid where it lands: validate it as a list there.
        check: dict[str, Any] = {}
        for key, values in appends:
            node = check
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node.setdefault(leaf, []).extend(values)
        validated_layer(COMMAND_LINE, check, "profile")
    return Layer(layer.source, layer.data, layer.lines, layer.kind, tuple(appends))


def parse_set_flag(text: str) -> tuple[str, Any, bool]:
    """`key=value` or `key+=value`; the value is JSON when it parses as JSON
    (numbers, true/false, ["lists"]), else the plain string."""
    key, sep, raw = text.partition("=")
    append = key.endswith("+")
    key = key.removesuffix("+")
    if not sep or not key or not all(part.replace("_", "a").isalnum() for part in key.split(".")):
        raise errors.UsageError(f"vectraguard: --set {text!r}: expected KEY=VALUE or KEY+=VALUE, "
                                "with KEY a dotted profile key such as limits.memory")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value, append


def parse_mount_flag(text: str) -> dict[str, str]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise errors.UsageError(
            f"vectraguard: --mount {text!r}: expected SRC:DST, SRC:DST:ro or SRC:DST:rw",
            hint="paths may not contain ':'",
        )
    return {"source": parts[0], "target": parts[1], "mode": parts[2] if len(parts) == 3 else "ro"}


def parse_env_flags(flags: list[str], host_env: Any) -> dict[str, str]:
    values: dict[str, str] = {}
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise errors.UsageError(f"vectraguard: --env {name!r}: not a valid variable name")
        if sep:
            values[name] = value
        elif name in PROXY_VARIABLES:
            # The network policy decides what is reachable, never an inherited proxy.
            raise errors.UsageError(f"vectraguard: --env {name}: proxy settings are not passed from the host",
                                    hint=f"give a value explicitly (--env {name}=...) if the sandbox needs one")
        elif name in host_env:
            values[name] = host_env[name]
        else:
            print(f"vectraguard: warning: --env {name}: not set here, not passed", file=sys.stderr)
    return values


def resolve_mounts(profile: ResolvedProfile, request: RunRequest, system_policy: policy.Policy | None, *,
                   rootless: bool) -> tuple[mount_rules.Mount, ...]:
    denied = mount_rules.denied_sources(mount_rules.real_home(), paths.own_state(), policy.denied_paths(system_policy))
    result: list[mount_rules.Mount] = []
    if profile.workspace_mode != "none":
        origin = profile.provenance.get("filesystem.workspace.mode", Origin("<profile>"))
        try:
            workspace = mount_rules.make_mount(request.cwd, profile.workspace_target, profile.workspace_mode,
                                               cwd=request.cwd, origin=Origin("working directory"), denied=denied)
        except errors.PolicyError as exc:
            exc.hint = f"cd into a project directory, or run with --workspace none (workspace set by {origin})"
            raise
        result.append(workspace)
    for entry in profile.mounts:
        result.append(mount_rules.make_mount(entry.source, entry.target, entry.mode,
                                             cwd=request.cwd, origin=entry.origin, denied=denied))
    targets = [m.target for m in result]
    for target in targets:
        if targets.count(target) > 1:
            raise errors.PolicyError(f"vectraguard: two mounts have the same target {target}")
    origins = [profile.provenance.get("filesystem.workspace.mode", Origin("working directory"))] * (
        profile.workspace_mode != "none") + [entry.origin for entry in profile.mounts]
    raise_if_any(policy.check_mount_roots(zip((m.source for m in result), origins), system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    if not rootless:
        _check_rootful_writable(result)
    if profile.workspace_mode == "rw":
        result += mount_rules.protected_mounts(result[0])
    return tuple(result)


def _check_rootful_writable(sandbox_mounts: list[mount_rules.Mount]) -> None:
    """Rootful, every sandbox has a user namespace of its own, whose users own
    nothing on the host: a read-write mount would fail on the first write.
    Say so before anything starts."""
    for mount in sandbox_mounts:
        if mount.read_only:
            continue
        info = os.stat(mount.source)
        if not (info.st_mode & 0o002 and os.path.isdir(mount.source)):
            raise errors.PolicyError(
                f"vectraguard: cannot give a rootful sandbox write access to {mount.source} "
                f"(owned by uid {info.st_uid}): each sandbox has a user namespace of its own",
                hint="run vectraguard as a regular user (rootless: the sandbox then writes as you), "
                "or mount it read-only")


def _image_hint(ref: str) -> str:
    if ref.startswith(DEFAULT_IMAGE_PREFIX):
        return "build it with `vectraguard image build`"
    return f"build or load {ref} into Podman first (no registry is contacted)"


def _report(reason: str, status: int, profile: ResolvedProfile) -> None:
    if reason == "timeout":
        print(f"vectraguard: timed out after {profile.limits.timeout:g}s (profile {profile.name}); stopped",
              file=sys.stderr)
    elif reason == "oom":
        print(f"vectraguard: killed: out of memory (limit {units.format_size(profile.limits.memory)})", file=sys.stderr)
    elif reason == "interrupted":
        print("vectraguard: interrupted; sandbox stopped and removed", file=sys.stderr)
