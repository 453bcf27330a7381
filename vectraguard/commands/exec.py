"""`vectraguard exec ID [--yes] -- CMD`: a command in a running sandbox, judged and recorded.

CMD is judged by the approval gate as a run's command is (approvals/
cached_gate.py): under the session's profile as it resolves now in the
session's directory (its project file trusted or not, the system policy),
with the session's read-write mounts; refused, asked on the terminal, or
allowed; `--yes` as for run. Every attempt is recorded in the session's own
audit record: an `exec` event (its own id, who, the argv with the
sandbox's environment values redacted, the decision; `refused` with the
reason and 125), committed before anything runs, and an `exec-finished`
event with the exit status. The process itself: sessions/enter.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from vectraguard import errors
from vectraguard.audit import bounds, record
from vectraguard.audit.store import SCHEMA_VERSION, AuditStore, open_store
from vectraguard.sandbox import entry
from vectraguard.sessions import enter
from vectraguard.sessions.running import RunningSession, one_running


def main(args: argparse.Namespace) -> int:
    if not args.command:
        raise errors.UsageError("vectraguard: no command given", hint="vectraguard exec ID [--yes] -- CMD [ARG...]")
    store = open_store()
    try:
        session = one_running(store, args.id)
        return _exec(store, session, list(args.command), args.yes)
    finally:
        store.close()


def _exec(store: AuditStore, session: RunningSession, argv: list[str], yes: bool) -> int:
    exec_id = record.new_session_id()
    secrets: dict[str, str] = {}
    try:
        control, cid, user, run_dir = _container(session)
        enter.require_argument_protocol(session.started)
        command = enter.session_command(run_dir)
        secrets = command.env
        approvals = _judged(session, argv, yes)
    except errors.VGError as exc:
        _record(store, session, exec_id, argv, secrets, "refused", getattr(exc, "approvals", ()),
                reason=" ".join(exc.lines()), exit_status=errors.EXIT_REFUSED)
        raise
    _record(store, session, exec_id, argv, secrets, "allowed", approvals)
    began = time.monotonic()
    passthrough = ((session.started.get("sandbox") or {}).get("profile") or {}).get("output", {}).get("passthrough")
    passthrough = passthrough if passthrough in ("filtered", "raw") else "filtered"  # unknown: the stricter
    try:
        status, source = _run(control, cid, user, enter.ExecFile(run_dir, argv, command), passthrough)
    except errors.VGError as exc:
        status, source = errors.EXIT_REFUSED, f"unknown: {exc.message.removeprefix('vectraguard: ')}"
        _finished(store, session, exec_id, status, source, began)
        raise
    _finished(store, session, exec_id, status, source, began)
    if source == "interrupted":
        print("vectraguard: interrupted; the command in the sandbox was sent SIGTERM", file=sys.stderr)
    return status


def _finished(store: AuditStore, session: RunningSession, exec_id: str, status: int, source: str,
              began: float) -> None:
    """The `exec-finished` event: the exit status and where it came from (the engine: podman, docker; entry,
    interrupted, unknown: ...)."""
    store.append(session.id, "exec-finished", {
        "version": SCHEMA_VERSION, "session": session.id, "exec": exec_id, "at": record.now(),
        "exit_status": status, "exit_status_from": bounds.cut(source, bounds.REASON_BYTES),
        "duration_ms": int((time.monotonic() - began) * 1000)}, index={}, known_session=True)


def _container(session: RunningSession) -> tuple[Any, str, str, Any]:
    """(the engine's control, container ID, its user, its command directory); refusals for what cannot be
    entered alike. The engine is the one the session's record names (runtime/control.py)."""
    if session.isolation != "container":
        raise errors.UsageError(
            f"vectraguard: session {session.id} runs at isolation {session.isolation!r}: exec enters only "
            "`container` sandboxes, where the engine gives the process the sandbox's own restrictions (verified); "
            + ("a lite sandbox has no engine to enter it with its seccomp filter and Landlock domain"
               if session.isolation == "lite" else "under gVisor that is not verified yet"),
            hint="start a new session for the command: vectraguard run -- CMD")
    from vectraguard.runtime.control import engine_of, for_engine
    from vectraguard.sessions.containers import by_session

    control = for_engine(engine_of(session.started))
    found = by_session(control, [session]).get(session.id)
    if found is None:
        raise errors.UsageError(f"vectraguard: session {session.id} has no running sandbox (it is starting or "
                                "ending)", hint="`vectraguard ps` lists the running sessions")
    cid = str(found["Id"])
    try:
        inspect = control.inspect(cid)
    except errors.UsageError as exc:
        raise errors.UsageError(exc.message.replace("the sandbox", f"the sandbox of session {session.id}", 1)) \
            from None
    return control, cid, str((inspect.get("Config") or {}).get("User") or ""), enter.run_dir_of(inspect)


def _judged(session: RunningSession, argv: list[str], yes: bool) -> tuple[dict[str, Any], ...]:
    """The gate's audit entries for `argv` in this session, or the PolicyError
    that refuses it: under the session's profile resolved as its run resolved
    it — the run's own options (--set, --ignore-project, --network ... as
    recorded in its `started` record, secrets redacted) applied again, the
    shipped defaults lowered to the policy's ceilings as the run lowered them."""
    from vectraguard import cli
    from vectraguard.approvals import cached_gate
    from vectraguard.commands.run import within_policy
    from vectraguard.config import flags, policy, profiles

    recorded = (session.started.get("sandbox") or {}).get("options")
    if not isinstance(recorded, list) or not all(isinstance(word, str) for word in recorded):
        raise errors.UsageError(f"vectraguard: session {session.id}'s record does not keep the options it was "
                                "started with, so CMD cannot be judged as a run of it would be: exec is refused",
                                hint="start the command with `vectraguard run` instead")
    try:
        options = cli.parser_for(None).parse_args(recorded)
    except errors.VGError as exc:
        raise errors.UsageError(f"vectraguard: the options session {session.id} was started with cannot be read "
                                f"again ({exc.message}): exec is refused") from None
    sources = profiles.Sources.for_directory(session.cwd, ignore_project=bool(getattr(options, "ignore_project", False)))
    profile = profiles.resolve(session.profile, [flags.flags_layer(options)], sources)
    system_policy = policy.load()
    profile = within_policy(profile, system_policy)
    writable = tuple(f"{m['source']} -> {m['target']}" for m in session.started.get("mounts") or []
                     if not m.get("read_only") and not m.get("overlay"))
    options.command, options.yes = argv, yes
    # The session's own options (its network, published ports) were settled when its run started, and an exec
    # changes none of them: only CMD is judged (asking again for `publish 8080:3000` on every `exec ID -- id`).
    return cached_gate.settle(tuple(argv), session.cwd, profile, sources, system_policy, writable,
                              yes=yes, args=options, within_session=True)


class _Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP while the exec ran: its status as a shell would give it."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _run(control: Any, cid: str, user: str, command: enter.ExecFile,
         passthrough: str) -> tuple[int, str]:
    """Run it; (exit status, where the status came from: podman | docker | entry | interrupted)."""
    import signal

    from vectraguard.runtime.attach import usable_stdin, write_to_fds
    from vectraguard.terminal.relay import TerminalRelay

    stdin_fd = usable_stdin(0)
    stdin_fd = None if stdin_fd is not None and os.isatty(stdin_fd) else stdin_fd  # no terminal inside: see --help
    # The sandbox's output reaches a terminal through the run's own filter (terminal/relay.py).
    relay = TerminalRelay(write_to_fds({1: 1, 2: 2}), {1: 1, 2: 2}, passthrough, interactive=False)

    def interrupted(signum: int, _frame: Any) -> None:
        raise _Interrupted(128 + signum)

    previous = {signum: signal.signal(signum, interrupted) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with relay.until_end():
            exec_id, sock, initial = enter.start(control, cid, user, [entry.ENTRY_TARGET, command.name],
                                                 stdin_fd is not None)
            pump = enter.Pump(sock, initial, stdin_fd, relay)
            try:
                state = enter.ExecState(control, exec_id)
                ended = False
                while not ended:
                    state.poll()  # the exit code, while the engine still reports it (ExecState)
                    command.read_report()
                    ended = pump.for_a_while(state.interval())
            finally:
                pump.close()
        return enter.final_exit_code(state, command)
    except _Interrupted as stop:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        enter.end_group(control, cid, user, command)
        return stop.status, "interrupted"
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        command.remove()


def _record(store: AuditStore, session: RunningSession, exec_id: str, argv: list[str], secrets: dict[str, str],
            decision: str, approvals: tuple[dict[str, Any], ...] | list[dict[str, Any]], *, reason: str = "",
            exit_status: int | None = None) -> None:
    """The `exec` event: committed before anything runs (fail closed: no record, no exec)."""
    user, _ = record.who()
    [reason] = record.redact([reason], secrets)
    body: dict[str, Any] = {
        "version": SCHEMA_VERSION, "session": session.id, "exec": exec_id, "at": record.now(), "user": user,
        "uid": os.getuid(), "pid": os.getpid(), "argv": record.redact(argv, secrets), "decision": decision,
        "approvals": bounds.approvals(list(approvals))}
    if exit_status is not None:
        body.update(exit_status=exit_status, reason=bounds.cut(reason, bounds.REASON_BYTES))
    store.append(session.id, "exec", body, index={}, known_session=True)
