"""What an audit record says: the event bodies, built from a run's facts.

Version 1. Environment *values* are never recorded, only variable names.

What counts as secret: every value of the sandbox's environment (once it is
known, at `started`), and — for a run refused before that — every
environment value the command line gives, through any flag: `--env
NAME=VALUE`, `--env NAME` (the host's value), `--set env.set.NAME=VALUE`,
`--set env.set={...}`, `--set env={...}` (each string in it, and the raw
text given), and the host values of the names `--set env.allow=[...]` passes.
Each is replaced by `[redacted]` wherever a record would repeat it: argv,
the listing index's command column, the reason of a refused or failed run,
and what the risk findings quote — also in the escaped forms an error
message quotes it in (Python repr, JSON). Values shorter than
MIN_SECRET_LENGTH are left alone: redacting `1` or `yes` everywhere would
garble the record without protecting anything. The sandbox's own output is
evidence and is kept as printed (README).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from vectraguard.audit import bounds
from vectraguard.audit.capture import OutputCapture
from vectraguard.audit.store import SCHEMA_VERSION
from vectraguard.errors import EXIT_REFUSED

STATUSES = ("started", "ok", "failed", "timeout", "oom", "killed", "interrupted", "refused", "incomplete")
CHECKED_STATUSES = ("checked/allow", "checked/ask", "checked/deny")  # decisions of `vectraguard check`


def new_session_id() -> str:
    """Time-sortable and unique: milliseconds since the epoch, then randomness."""
    return f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


COMMAND_COLUMN = 200  # characters of the command kept in the listing index
REDACTED = "[redacted]"
# Fixed, non-secret values of every sandbox; too short or too common to redact.
NOT_SECRET = frozenset({"PATH", "HOME", "TERM", "LANG"})
MIN_SECRET_LENGTH = 6
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def redact(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """`argv` (or any texts) with each secret value of `env` replaced by REDACTED."""
    secrets = sorted({form for name, value in env.items() if name not in NOT_SECRET
                      and len(value) >= MIN_SECRET_LENGTH for form in _quoted_forms(value)},
                     key=len, reverse=True)
    redacted = []
    for arg in argv:
        for secret in secrets:
            arg = arg.replace(secret, REDACTED)
        for secret in secrets:
            arg = _redact_cut(arg, secret)
        redacted.append(arg)
    return redacted


CUT_PREFIX = 8  # a secret's leading characters that mark where a message cut it off


def _redact_cut(text: str, secret: str) -> str:
    """A secret cut short by a message's length limit (`[:200]`) leaves its
    beginning: the longest such prefix, of CUT_PREFIX characters or more, goes too."""
    for length in range(len(secret) - 1, CUT_PREFIX - 1, -1):
        if secret[:length] in text:
            return text.replace(secret[:length], REDACTED)
    return text


def _quoted_forms(value: str) -> set[str]:
    """The value as given and as error messages quote it (repr, JSON)."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def env_of_flags(flags: Sequence[str], host_env: Mapping[str, str],
                 set_flags: Sequence[str] = ()) -> dict[str, str]:
    """What `--env NAME=VALUE` / `--env NAME` and `--set env...=` would put in
    the sandbox: the values a refused run's record must not keep either (it
    never reached the point where the sandbox's whole environment is
    known), and a run's, whose later flags may override earlier values.
    Keys name the flag (and variable) each value came from."""
    values = {}
    for flag in flags:
        # Keyed by the flag, not the bare name: a value given for PATH, HOME,
        # TERM or LANG is the caller's, not the sandbox's fixed one (NOT_SECRET).
        name, sep, value = flag.partition("=")
        if sep:
            values[f"--env {name}"] = value
        elif name in host_env:
            values[f"--env {name}"] = host_env[name]
    for flag in set_flags:
        values.update(_env_of_set_flag(flag, host_env))
    return values


def _env_of_set_flag(flag: str, host_env: Mapping[str, str]) -> dict[str, str]:
    key, _, raw = flag.partition("=")
    key = key.removesuffix("+")
    if key != "env" and not key.startswith("env."):
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = raw  # as flags.parse_set_flag reads it
    names: object = []  # env.allow lists variable names (kept); their host values are secret
    if key == "env.allow":
        names, value = value, None
    elif key == "env" and isinstance(value, dict):
        names, value = value.get("allow", []), {k: v for k, v in value.items() if k != "allow"}
    found = {} if key == "env.allow" else {f"--set {key}": raw}
    found.update({f"--set {key}[{index}]": text for index, text in enumerate(_values_in(value))})
    for name in names if isinstance(names, list) else [names]:
        if isinstance(name, str) and name in host_env:
            found[name] = host_env[name]
    return found


def _values_in(value: object) -> list[str]:
    """Every string and number in a JSON value (not the keys: those are
    variable names, which records keep), as text."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _values_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in _values_in(item)]
    return [] if value is None or isinstance(value, bool) else [value if isinstance(value, str) else json.dumps(value)]


def env_of_options(options: Sequence[str], host_env: Mapping[str, str]) -> dict[str, str]:
    """`env_of_flags` for raw option words that did not parse: `--env V`,
    `--env=V`, `--set V`, `--set=V`, the abbreviations argparse accepts
    (`--en`, `--se`) — and, since a misspelt flag (`--sett`) is why options
    fail to parse, any bare `NAME=VALUE` or `env...=VALUE` word among them."""
    env_flags: list[str] = []
    set_flags: list[str] = []
    for index, word in enumerate(options):
        option, sep, inline = word.partition("=")
        target = env_flags if _abbreviates(option, "--env") else set_flags if _abbreviates(option, "--set") else None
        if target is not None:
            if sep:
                target.append(inline)
            elif index + 1 < len(options):
                target.append(options[index + 1])
        elif sep and (option == "env" or option.removesuffix("+").startswith("env.")):
            set_flags.append(word)
        elif sep and _VARIABLE.fullmatch(option):
            env_flags.append(word)
    return env_of_flags(env_flags, host_env, set_flags)


def _abbreviates(word: str, option: str) -> bool:
    return len(word) >= 4 and option.startswith(word)


def now() -> str:
    """UTC, millisecond precision, sortable as text."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def who() -> tuple[str, str]:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return user, socket.gethostname()


def status_for(reason: str, exit_status: int) -> str:
    if reason in ("timeout", "oom", "interrupted"):
        return reason
    if reason == "exited" and exit_status > 128:
        return "killed"
    return "ok" if exit_status == 0 else "failed"


def started(session: str, *, agent: str | None, profile: str, profile_digest: str, argv: list[str], cwd: str,
            mounts: list[dict[str, Any]], network: dict[str, Any], env_names: list[str], image: str,
            owner: str, at: str, approvals: list[dict[str, Any]] | None = None,
            isolation: str = "container", forkserver: bool = False,
            sandbox: dict[str, Any] | None = None, engine: str = "podman") -> dict[str, Any]:
    """`isolation`: the level the sandbox ran at (vectraguard/isolation/levels.py);
    `engine`: the container engine that ran it ("podman", "docker"; "none" at isolation lite);
    `forkserver`: whether this user's fork server's process ran it for the
    `vectraguard` named as `owner` (vectraguard/forkserver/), not that process itself;
    `sandbox`: the resolved profile and container spec (sessions/snapshot.py), for `inspect`."""
    user, host = who()
    return {"version": SCHEMA_VERSION, "session": session, "status": "started", "at": at, "agent": agent,
            "user": user, "host": host, "profile": profile, "profile_digest": profile_digest, "argv": argv,
            "cwd": cwd, "mounts": mounts, "network": network, "env_names": env_names, "image": image,
            "owner": owner, "approvals": bounds.approvals(approvals or []), "isolation": isolation,
            "forkserver": forkserver, "engine": engine, **({"sandbox": sandbox} if sandbox is not None else {})}


def finished(session: str, *, status: str, exit_status: int, reason: str, image_id: str, started_at: str,
             at: str, duration_ms: int, capture: OutputCapture | None,
             network: dict[str, Any] | None = None,
             approvals: list[dict[str, Any]] | None = None,
             recording: dict[str, Any] | None = None,
             workspace: dict[str, Any] | None = None,
             undelivered: dict[str, dict[str, Any]] | None = None,
             container: dict[str, Any] | None = None) -> dict[str, Any]:
    """`container`: {"id": the container's ID, "pooled": whether it came from the
    pool (vectraguard/pool/)}, when one ran. `network`: the keys network/attempts.py gives (`network`, `network_attempts`
    and the counts per destination), already bounded; None for a run without egress.
    Lists and texts others can grow are capped here (audit/bounds.py).
    `undelivered`: per stream (stdout, stderr) whose writing to the caller
    failed, {"error": "ENOSPC: No space left on device", "delivered_bytes": N};
    it goes into that stream's output summary as `delivery_failed`."""
    output = {name: capture.streams[fd].summary() for name, fd in (("stdout", 1), ("stderr", 2))} if capture else {}
    for name, failure in (undelivered or {}).items():
        if name in output:
            output[name]["delivery_failed"] = failure
    return {"version": SCHEMA_VERSION, "session": session, "status": status, "exit_status": exit_status,
            "reason": bounds.cut(reason, bounds.REASON_BYTES), "image_id": image_id, "started_at": started_at,
            "at": at, "duration_ms": duration_ms, "output": output, "approvals": bounds.approvals(approvals or []),
            **(network or {"network": [], "network_attempts": 0}), "recording": recording,
            **({"workspace": _workspace(workspace)} if workspace is not None else {}),
            **({"container": container} if container is not None else {})}


def _workspace(summary: dict[str, Any]) -> dict[str, Any]:
    """An `rw` run's changed protected paths are the sandbox's to multiply; an error's text is cut."""
    bounded = {key: bounds.cut(value, bounds.REASON_BYTES) if key == "error" and isinstance(value, str) else value
               for key, value in summary.items() if key != "protected_changed"}
    if "protected_changed" in summary:
        bounded.update(bounds.protected_changed(summary["protected_changed"]))
    return bounded


def checked(session: str, *, agent: str | None, hook_session: str | None, profile: str, profile_digest: str,
            command: str | list[str], cwd: str, decision: str, exit_status: int, findings: list[dict[str, Any]],
            remembered: dict[str, Any] | None, reason: str, at: str) -> dict[str, Any]:
    """A `vectraguard check` decision (an agent's hook asking): nothing ran. `command`
    is a command line (text) or an argv (list), as check was given it; status
    `checked/DECISION`, so the listing tells decisions from runs."""
    user, host = who()
    return {"version": SCHEMA_VERSION, "session": session, "status": f"checked/{decision}", "at": at,
            "agent": agent, "hook_session": hook_session, "user": user, "host": host, "profile": profile,
            "profile_digest": profile_digest, "command": command, "cwd": cwd, "decision": decision,
            "exit_status": exit_status, **bounds.findings(findings), "remembered": remembered,
            "reason": bounds.cut(reason, bounds.REASON_BYTES)}


def refused(session: str, *, agent: str | None, profile: str | None, argv: list[str], cwd: str, reason: str,
            at: str, approvals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    user, host = who()
    # exit_status: what the caller got (125), under the name a finished record uses.
    return {"version": SCHEMA_VERSION, "session": session, "status": "refused", "exit_status": EXIT_REFUSED,
            "at": at, "agent": agent, "user": user, "host": host, "profile": profile, "argv": argv, "cwd": cwd,
            "reason": bounds.cut(reason, bounds.REASON_BYTES), "approvals": bounds.approvals(approvals or [])}
