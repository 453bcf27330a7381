"""`vectraguard run` (= `sandbox run`): one command in a fresh sandbox."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vectraguard import diag, errors, records, startup, units
from vectraguard.audit import record
from vectraguard.audit.capture import OutputCapture
from vectraguard.audit.run_audit import RunAudit
from vectraguard.config import flags, policy, profiles
from vectraguard.config.problems import Origin, raise_if_any
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.isolation import files as isolation_files
from vectraguard.network.egress import Egress
from vectraguard.runtime import host as host_facts
from vectraguard.runtime.attach import Delivery, usable_stdin, write_to_fds
from vectraguard.runtime.interface import SandboxRuntime, SandboxView, SessionRequest
from vectraguard.runtime.owner import current_owner
from vectraguard.sandbox import held, mount_plan
from vectraguard.sandbox import mounts as mount_rules
from vectraguard.sandbox.compile import Compiled, compile_spec, runs_as_caller
from vectraguard.sandbox.request import RunRequest
from vectraguard.terminal.relay import TerminalRelay

DEFAULT_IMAGE_PREFIX = "localhost/vectraguard/"


@records.record
class Session:
    """What kind of session `launch` runs."""

    terminal: bool = False  # the caller's terminal, a pseudo-terminal inside
    recorded: bool = False  # an asciicast of the output, linked from the audit record
    # An agent definition: the command is the profile's agent.command plus
    # the arguments; the workspace is the repository; $HOME persists.
    agent: bool = False


ONE_OFF = Session()
SHELL = Session(terminal=True, recorded=True)
AGENT_VOLUME_PREFIX = "vectraguard-agent-"


@records.record
class Prepared:
    """Everything decided before anything runs."""

    profile: ResolvedProfile
    facts: host_facts.HostFacts
    argv: tuple[str, ...]
    mounts: tuple[mount_rules.Mount, ...]
    image_ref: str
    compiled: Compiled
    egress: Any  # network.egress.EgressSettings in allowlist mode, else None
    approvals: tuple[dict[str, Any], ...]
    expected_mounts: tuple[held.Expected, ...]  # what the sandbox must have at each bind target
    workspace: Any = None  # workspace.modes.WorkspaceMode for overlay and rw, else None
    lite: Any = None  # lite.plan.LitePlan at isolation lite, else None
    publisher: Any = None  # network.publish.Publisher, its host ports bound, when the profile publishes ports
    engine: str = "podman"  # the container engine (runtime/engine.py): "podman", "docker"; "" at isolation lite
    admitted: Any = None  # what the engine learnt before the record (runtime/engine.py admit): Docker's plan


def main(args: argparse.Namespace) -> int:
    if not args.command:
        raise errors.UsageError("vectraguard: no command given", hint="vectraguard run [OPTIONS] -- CMD [ARG...]")
    return launch(args, ONE_OFF)


def launch(args: argparse.Namespace, session: Session) -> int:
    """Record, prepare and run one sandbox session."""
    cwd = working_directory()
    session_id, owner = new_session_id(), current_owner()
    agent = args.agent or os.environ.get("VECTRAGUARD_AGENT") or None
    audit = RunAudit.open(session_id, agent, list(args.command), cwd, owner)
    try:
        audit.check_reserve()
        prepared = prepare(args, cwd, session_id, owner, session)
        if prepared.profile.workspace_mode == "overlay":
            audit.check_reserve(_layer_bytes_beside(audit.store.path, prepared.profile.limits.workspace_writes))
    except errors.VGError as exc:
        # Refusals are attempts too: they go on the record.
        audit.refused(getattr(exc, "profile", None) or args.profile, " ".join(exc.lines()),
                      getattr(exc, "approvals", ()), record.env_of_flags(args.env, os.environ, args.set))
        exc.recorded = True  # type: ignore[attr-defined]
        raise
    audit.argv = list(prepared.argv)
    # Every value the command line gave, not only those the sandbox ends up with
    # (a later flag may override an earlier one: the earlier value is a secret too).
    audit.secrets.update(record.env_of_flags(args.env, os.environ, args.set))
    audit.options = list(getattr(args, "option_words", ()))
    recording = None
    if session.recorded:
        from vectraguard.audit.recording import AsciicastWriter

        columns, rows = os.get_terminal_size(0) if session.terminal else (80, 24)
        recording = AsciicastWriter(session_id, columns, rows, shlex.join(prepared.argv),
                                    tty_fd=0 if session.terminal else None)
    return execute(prepared, audit, recording)


def _layer_bytes_beside(store: Path, cap: int) -> int:
    """`cap` when overlay layers are kept on the audit store's file system (the default: both in the data directory), else 0."""
    from vectraguard.workspace import store as layers

    where = layers.root()
    while not where.exists():
        where = where.parent
    return cap if os.stat(where).st_dev == os.stat(store.parent).st_dev else 0


def prepare(args: argparse.Namespace, cwd: str, session_id: str, owner: str, session: Session = ONE_OFF) -> Prepared:
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
        terminal=session.terminal,
    )
    if session.agent:  # an unknown name is looked for among the agents (commands/agent.py)
        from vectraguard.commands.agent import refuse_unknown

        refuse_unknown(request.profile, sources)
    profile = profiles.resolve(request.profile, [flags.flags_layer(args)], sources)
    if session.agent:
        request = _agent_request(request, profile)
    system_policy = policy.load()
    profile = within_policy(profile, system_policy)
    if profile.network_publish:
        from vectraguard.network import publish_rules

        raise_if_any(publish_rules.problems(profile, system_policy),
                     "vectraguard: these ports cannot be published", error=errors.PolicyError)
    egress = _egress(profile) if profile.network_mode == "allowlist" else None
    from vectraguard.runtime import engine as engines

    engine = engines.choose(profile, system_policy)
    facts = host_facts.detect()
    sandbox_mounts = mount_plan.resolve_mounts(profile, request, system_policy)
    # Held open from here on: what the sandbox gets is checked to be these (before_start).
    held_sources = mount_plan.hold_mounts(sandbox_mounts, keep_id=runs_as_caller(facts, sandbox_mounts, profile.isolation),
                                          rootless=facts.rootless, workspace_first=profile.workspace_mode != "none")
    # Rootful gvisor and lite open the sources as an id that owns nothing (isolation/files.py).
    isolation_files.check_reachable(profile.isolation, facts.rootless, [source.path for source in held_sources])
    image_ref = request.image_override or profile.image
    workspace = None
    if profile.workspace_mode in ("overlay", "rw"):  # the workspace mount is the first
        from vectraguard.workspace import modes

        workspace = modes.for_run(profile.workspace_mode, session_id, held_sources[0], profile, facts.rootless, owner)
    compiled = compile_spec(profile, request, facts, image=image_ref, mounts=sandbox_mounts,
                            seccomp_profile_path=isolation_files.seccomp_path(profile),
                            overlay_source=workspace.source if workspace is not None else "")
    _refuse_unless_exact(compiled)
    if profile.image_packages and image_ref == profile.image:
        # Built on first use (images/first_use.py), before lite looks for its unpacked tree.
        from vectraguard.images import first_use

        first_use.ensure_variant(profile, quiet=not diag.notices_shown(), unpack=profile.isolation == "lite",
                                 engine=engine or "podman", ahead=build_ahead(args, profile, engine))
    lite = None
    if profile.isolation == "lite":
        from vectraguard.lite import plan as lite_plan

        lite = lite_plan.prepare(compiled.spec, facts.rootless)
    # What the engine cannot give is refused here, before anything is recorded or created (Docker: admit.py).
    admitted = engines.admit(engine, profile, compiled.spec)
    # Last, once everything else is known and valid: a person is asked only about a run that can start.
    from vectraguard.approvals import cached_gate  # here: the gate is this step's alone

    # A decision judged before, with nothing it rests on changed, is reused (approvals/cached_gate.py).
    writable = tuple(f"{m.source} -> {m.target}" for m in sandbox_mounts if not m.read_only and not m.overlay)
    # Bound before the question: a port in use refuses the run before anyone is asked.
    publisher = _publisher(profile) if profile.network_publish else None
    try:
        approvals = cached_gate.settle(request.argv, cwd, profile, sources, system_policy, writable,
                                       yes=args.yes, args=args)
    except BaseException:
        if publisher is not None:
            publisher.close()
        raise
    startup.end()  # what a session allocates from here is collected as usual
    return Prepared(profile, facts, request.argv, sandbox_mounts, image_ref, compiled, egress, approvals,
                    mount_plan.expectations(sandbox_mounts, held_sources), workspace, lite, publisher, engine, admitted)


def _publisher(profile: ResolvedProfile) -> Any:
    """The profile's published ports, listening on the host (network/publish.py); refused if one cannot be bound."""
    from vectraguard.network import publish, publish_rules

    publisher = publish.Publisher(publish_rules.published(profile))
    try:
        publisher.bind_all()
    except publish.PortInUse as exc:
        port = exc.port  # type: ignore[attr-defined]
        origin = profile.provenance.get("network.publish", Origin("<profile>"))
        raise errors.UsageError(
            f"vectraguard: {origin}: network.publish: {port.text()}: cannot listen on "
            f"{port.host_address}:{port.host_port} ({exc.strerror}); nothing ran",
            hint="choose another host port (e.g. --publish "
                 f"{port.host_port + 1 if port.host_port < 65535 else 1024}:{port.port}), or stop what uses it") from None
    return publisher


def within_policy(profile: ResolvedProfile, system_policy: policy.Policy | None) -> ResolvedProfile:
    """The profile as a run gets it (and as `exec` judges under it): shipped defaults
    above the policy's maxima lowered, with one notice line (config/ceilings.py);
    PolicyError if the policy refuses what is left."""
    if system_policy is not None:
        from vectraguard.config import ceilings

        profile, lowered = ceilings.lower_shipped(profile, system_policy)
        if lowered:
            diag.notice(ceilings.notice(lowered))  # -q leaves it out (diag.py)
    raise_if_any(policy.check_profile(profile, system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    return profile


def _refuse_unless_exact(compiled: Compiled) -> None:
    """Bytes that are not UTF-8 cannot cross Podman's JSON API unchanged: rather
    than run a different command from the one judged and recorded, refuse
    (the refusal records the exact bytes). A wrapper decoding them inside the
    sandbox would need a decoder in every image and would run something else
    than the argv recorded; refusing is the plain, closed answer."""
    problems = compiled.spec.not_exact()
    if problems:
        raise errors.UsageError(
            "vectraguard: this run cannot reach the sandbox exactly: Podman takes only UTF-8 text, and bytes that "
            "are not UTF-8 would arrive as U+FFFD, a different command from the one judged; nothing ran",
            details=[f"not UTF-8: {problem}" for problem in problems],
            hint="rename what it names to UTF-8, or let a shell in the sandbox match it (sh -c 'ls caf?.txt')")


def _agent_request(request: RunRequest, profile: ResolvedProfile) -> RunRequest:
    if profile.agent is None:
        raise errors.ConfigError(f"vectraguard: profile {profile.name!r} is not an agent definition (it has no "
                                 "`agent` section)", hint="`vectraguard agent list` lists the agents")
    argv = (*profile.agent.command, *request.argv)
    if not argv:
        raise errors.UsageError(f"vectraguard: agent {profile.name!r} names no command: give it after --",
                                hint=f"vectraguard agent start {profile.name} -- PROGRAM [ARG...]")
    from vectraguard.config.project import repository_root

    repository = repository_root(Path(request.cwd))
    return records.replace(
        request, argv=argv, workspace=str(repository) if repository else None,
        home_volume=AGENT_VOLUME_PREFIX + profile.name if profile.agent.home == "volume" else None)


def _egress(profile: ResolvedProfile) -> Any:
    from vectraguard.network.allowlist import Allowlist
    from vectraguard.network.egress import EgressSettings

    try:
        allowlist = Allowlist.parse(profile.network_allow)
    except ValueError as exc:
        origin = profile.provenance.get("network.allow", Origin("<profile>"))
        raise errors.PolicyError(f"vectraguard: {origin}: network.allow: {exc}") from None
    return EgressSettings.from_profile(profile, allowlist)


def execute(prepared: Prepared, audit: RunAudit, recording: Any = None) -> int:
    """Run the prepared sandbox; with a `recording` (an AsciicastWriter) it is
    an interactive session on this terminal (stdin is the terminal).

    Once `started` is recorded, the run ends with a record of how it ended
    (or `incomplete`, if the store filled up meanwhile) and, when it ran,
    with the command's exit status — whatever happens to our stdout and
    stderr (a full disk, a closed pipe: the output is still captured)."""
    profile, spec = prepared.profile, prepared.compiled.spec
    for notice in prepared.compiled.notices if diag.notices_shown() else ():  # -q: errors only
        _say(f"vectraguard: warning: {notice}")
    from vectraguard.runtime.engine import described

    audit.started(profile, prepared.mounts, dict(spec.env), prepared.image_ref, prepared.approvals, spec,
                  engine=prepared.engine or "none", sent=described(prepared.admitted, spec))
    capture = OutputCapture()
    delivery = write_to_fds({1: 1, 2: 2})
    # Only what reaches a terminal is filtered (terminal/relay.py); capture and recording get every byte.
    passthrough = TerminalRelay(delivery, {1: 1, 2: 2}, profile.output_passthrough, interactive=spec.terminal)

    def sink(stream: int, data: bytes) -> None:
        passthrough(stream, data)
        capture.feed(stream, data)
        if recording is not None:
            recording.feed(stream, data)

    egress = Egress(prepared.egress, prepared.facts.rootless)
    egress.preload()
    workspace = prepared.workspace

    def finish(status: str, exit_status: int, reason: str, image_id: str,
               workspace_record: dict[str, Any] | None, container: dict[str, Any] | None = None) -> None:
        warning = audit.finished(status, exit_status, reason, image_id, capture,
                                 _network_section(egress, prepared.publisher),
                                 recording.close() if recording is not None else None, workspace_record,
                                 _undelivered(delivery), container)
        for line in [*_delivery_notes(delivery, audit.session_id), *([warning] if warning else [])]:
            _say(line)

    runtime = _runtime(prepared, audit.owner, audit.cwd)
    try:
        if workspace is not None:
            workspace.open()
        # The relay ends after the terminal's settings are back: what we say next starts on a clean line.
        with passthrough.until_end(), _raw_terminal(0 if spec.terminal else None):
            result = runtime.run(SessionRequest(
                spec, timeout=profile.limits.timeout, kill_grace=profile.limits.kill_grace,
                stdin_fd=usable_stdin(0), sink=sink, tty_fd=0 if spec.terminal else None,
                before_start=_before_start(prepared, egress), listen=egress.endpoints(),
                after_create=workspace.after_create if workspace is not None else None))
    except errors.VGError as exc:
        if isinstance(exc, errors.ImageNotFound):
            exc.hint = _image_hint(prepared.image_ref, profile)
        finish("failed", exc.exit_status, " ".join(exc.lines()), "", _close_workspace(workspace))
        exc.recorded = True  # type: ignore[attr-defined]  # as failed: not again as a refusal
        raise
    except Exception as exc:  # a bug: the session must not stay `started` for it
        finish("failed", errors.EXIT_REFUSED, f"internal error: {exc.__class__.__name__}: {exc}", "",
               _close_workspace(workspace))
        raise
    status = record.status_for(result.reason, result.exit_status)
    reason = result.reason
    if reason == "interrupted":  # by `vectraguard stop`? Then the record says who asked.
        from vectraguard.sessions.stop import stopped_by

        reason = stopped_by(audit.store, audit.session_id) or reason
    finish(status, result.exit_status, reason, result.image_id, _close_workspace(workspace),
           {"id": result.container_id, "pooled": result.pooled} if result.container_id else None)
    diag.info(f"session {audit.session_id}: profile {profile.name}, image {prepared.image_ref} = {result.image_id}")
    _report(result.reason, result.exit_status, profile)
    if egress.section is not None:
        from vectraguard.network.summary import refused_summary

        for line in refused_summary(egress.section, audit.session_id):
            _say(line)
    for line in workspace.report() if workspace is not None else ():
        _say(f"vectraguard: {line}")
    audit.store.close()  # before the fork: a SQLite connection must not cross one
    runtime.release(result, audit.session_id)
    startup.done()  # everything this run wrote is closed: it may exit without finalisation
    return result.exit_status


def _runtime(prepared: Prepared, owner: str, cwd: str) -> SandboxRuntime:
    """The runtime for the profile's isolation level and engine (runtime/interface.py)."""
    profile, spec = prepared.profile, prepared.compiled.spec
    if profile.isolation == "lite":
        from vectraguard.lite.runtime import LiteRuntime

        return LiteRuntime(prepared.facts, prepared.lite, prepared.expected_mounts)
    from vectraguard.runtime import engine

    def pooled() -> Any:  # the pool's plan for this run (Podman keeps pools: vectraguard/pool/)
        if spec.entry_path is None:
            return None
        from vectraguard.pool import plan

        return plan.plan(profile.name, profile.pool, profile.pool_idle, cwd, spec, prepared.expected_mounts,
                         profile.workspace_mode)

    return engine.runtime(prepared.engine, profile, prepared.facts, owner, pooled, prepared.admitted)


STREAM_NAMES = {1: "stdout", 2: "stderr"}


def _undelivered(delivery: Delivery) -> dict[str, dict[str, Any]]:
    """The streams our caller did not get whole, for the record."""
    return {STREAM_NAMES[stream]: {"error": error, "delivered_bytes": delivery.delivered.get(stream, 0)}
            for stream, error in delivery.failures.items() if stream in STREAM_NAMES}


def _delivery_notes(delivery: Delivery, session_id: str) -> list[str]:
    return [f"vectraguard: the sandbox's {STREAM_NAMES[stream]} could not be written here after "
            f"{delivery.delivered.get(stream, 0)} bytes ({error}); the run went on, its output was captured: "
            f"vectraguard logs show {session_id}" for stream, error in delivery.failures.items() if stream in STREAM_NAMES]


def _say(line: str) -> None:
    """A message on our stderr, which may itself be the stream that failed (a full
    disk, a closed pipe): then it is lost, and the run's outcome stands."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        # What stays buffered would fail again at exit, and Python would then
        # exit 120 instead of with the command's status: stderr goes nowhere now.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())


def _network_section(egress: Egress, publisher: Any) -> dict[str, Any] | None:
    """The record's network keys: the egress log's, and the published ports' connections
    (network/publish_log.py). Closing both here ends every listener and connection of the run."""
    section = egress.close()
    published = publisher.close() if publisher is not None else None
    if published is None:
        return section
    return {**(section or {"network": [], "network_attempts": 0}), **published}


def _before_start(prepared: Prepared, egress: Egress) -> Callable[[SandboxView], None]:
    """The checks between the sandbox's set-up and its command's start, then the egress listeners."""
    spec = prepared.compiled.spec

    def check(view: SandboxView) -> None:
        held.verify(view.mount_pid, prepared.expected_mounts, spec.mount_targets(),
                    check_options=view.checked_options)
        if prepared.egress is not None:
            egress.serve(list(view.listeners))
        if prepared.publisher is not None:
            _publish(prepared, view)

    return check


def _publish(prepared: Prepared, view: SandboxView) -> None:
    """Serve the published ports into the sandbox's network namespace, before its command starts."""
    if not view.netns_pid:
        raise errors.RuntimeUnavailable("vectraguard: this runtime gives no network namespace to publish ports "
                                        "into; nothing ran", hint="use --isolation container")
    try:
        prepared.publisher.start(view.netns_pid, prepared.facts.rootless)
    except OSError as exc:
        raise errors.RuntimeUnavailable(
            f"vectraguard: could not publish ports into the sandbox ({exc.strerror or exc}); nothing ran",
            hint="see `vectraguard doctor`; rootless, `podman unshare` must work for you") from None


def _close_workspace(workspace: Any) -> dict[str, Any] | None:
    """The workspace's audit entry; a failure to read the layer is said, and
    recorded, but does not hide the run's own outcome."""
    if workspace is None:
        return None
    try:
        return workspace.close()  # type: ignore[no-any-return]
    except errors.VGError as exc:
        _say(" ".join(exc.lines()))
        return {"error": " ".join(exc.lines())}


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
        with contextlib.suppress(termios.error):  # hung up: no terminal left to restore
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def new_session_id() -> str:
    return record.new_session_id()


def working_directory() -> str:
    try:
        return os.path.realpath(os.getcwd())
    except OSError as exc:
        raise errors.UsageError(f"vectraguard: the current directory is not accessible: {exc.strerror}") from None


def build_ahead(args: argparse.Namespace, profile: ResolvedProfile, engine: str) -> str:
    """The `image build` command that builds the variant this run uses: its profile, and the run's options
    that shape the image (--set image...=, --ignore-project, --engine docker), not `--profile NAME` alone
    (a variant without what --set added)."""
    from vectraguard.config.flags import parse_set_flag

    words = ["vectraguard", "image", "build", "--profile", profile.name]
    words += ["--ignore-project"] if args.ignore_project else []
    words += ["--engine", engine] if engine and engine != "podman" else []
    for item in args.set:
        if parse_set_flag(item)[0].split(".")[0] == "image":
            words += ["--set", item]
    return shlex.join(words)


def _image_hint(ref: str, profile: ResolvedProfile) -> str:
    from vectraguard.images.recipe import (
        AGENT_REPOSITORY_PREFIX,  # only on this error path
    )

    if profile.agent is not None and ref == profile.image and ref.startswith(AGENT_REPOSITORY_PREFIX):
        return f"build it with `vectraguard image build --agent {profile.name}`"
    if profile.image_packages and ref == profile.image:  # removed since this run built or found it
        return f"build it with `vectraguard image build --profile {profile.name}`"
    if ref.startswith(DEFAULT_IMAGE_PREFIX):
        return "build it with `vectraguard image build`"
    return f"build or load {ref} into Podman first (no registry is contacted)"


def _report(reason: str, status: int, profile: ResolvedProfile) -> None:
    if reason == "timeout":
        _say(f"vectraguard: timed out after {profile.limits.timeout:g}s (profile {profile.name}); stopped")
    elif reason == "oom":
        _say(f"vectraguard: killed: out of memory (limit {units.format_size(profile.limits.memory)})")
    elif reason == "interrupted":
        _say("vectraguard: interrupted; sandbox stopped and removed")
