"""What an audit record says: the event bodies, built from a run's facts.

Version 1. Environment *values* are never recorded, only variable names;
argv is recorded as given, except that a value of the sandbox's environment
appearing in it is redacted (secrets belong in --env, not in argv).
"""

from __future__ import annotations

import os
import pwd
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from vectraguard.audit.capture import OutputCapture
from vectraguard.audit.store import SCHEMA_VERSION

STATUSES = ("started", "ok", "failed", "timeout", "oom", "killed", "interrupted", "refused", "incomplete")


def new_session_id() -> str:
    """Time-sortable and unique: milliseconds since the epoch, then randomness."""
    return f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


REDACTED = "[redacted]"
# Fixed, non-secret values of every sandbox; too short or too common to redact.
NOT_SECRET = frozenset({"PATH", "HOME", "TERM", "LANG"})
MIN_SECRET_LENGTH = 6


def redact(argv: list[str], env: dict[str, str]) -> list[str]:
    secrets = sorted((v for k, v in env.items() if k not in NOT_SECRET and len(v) >= MIN_SECRET_LENGTH),
                     key=len, reverse=True)
    redacted = []
    for arg in argv:
        for secret in secrets:
            arg = arg.replace(secret, REDACTED)
        redacted.append(arg)
    return redacted


def env_of_flags(flags: Sequence[str], host_env: Mapping[str, str]) -> dict[str, str]:
    """What `--env NAME=VALUE` / `--env NAME` would put in the sandbox: the
    values a refused run's record must not keep either (it never reached
    the point where the sandbox's whole environment is known)."""
    values = {}
    for flag in flags:
        name, sep, value = flag.partition("=")
        if sep:
            values[name] = value
        elif name in host_env:
            values[name] = host_env[name]
    return values


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
            owner: str, at: str, approvals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    user, host = who()
    return {"version": SCHEMA_VERSION, "session": session, "status": "started", "at": at, "agent": agent,
            "user": user, "host": host, "profile": profile, "profile_digest": profile_digest, "argv": argv,
            "cwd": cwd, "mounts": mounts, "network": network, "env_names": env_names, "image": image,
            "owner": owner, "approvals": approvals or []}


def finished(session: str, *, status: str, exit_status: int, reason: str, image_id: str, started_at: str,
             at: str, duration_ms: int, capture: OutputCapture | None,
             network: list[dict[str, Any]] | None = None,
             approvals: list[dict[str, Any]] | None = None,
             recording: dict[str, Any] | None = None,
             workspace: dict[str, Any] | None = None) -> dict[str, Any]:
    output = {name: capture.streams[fd].summary() for name, fd in (("stdout", 1), ("stderr", 2))} if capture else {}
    return {"version": SCHEMA_VERSION, "session": session, "status": status, "exit_status": exit_status,
            "reason": reason, "image_id": image_id, "started_at": started_at, "at": at,
            "duration_ms": duration_ms, "output": output, "approvals": approvals or [], "network": network or [], "recording": recording,
            **({"workspace": workspace} if workspace is not None else {})}


def refused(session: str, *, agent: str | None, profile: str | None, argv: list[str], cwd: str, reason: str,
            at: str, approvals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    user, host = who()
    return {"version": SCHEMA_VERSION, "session": session, "status": "refused", "at": at, "agent": agent,
            "user": user, "host": host, "profile": profile, "argv": argv, "cwd": cwd, "reason": reason,
            "approvals": approvals or []}
