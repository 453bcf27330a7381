"""What a `started` record keeps of a sandbox for `vectraguard inspect`: the
resolved profile and the compiled container spec, as they were at start.

Shape: {"profile": as_dict(profile) with "name", its risk rules and patterns
replaced by their count (they are ~80 KB, the same for every run of a
profile, and the record's profile_digest covers them); "spec": what the
engine was sent — on Podman the libpod SpecGenerator the sandbox was made
with (ContainerSpec.to_specgen), the command left out (the record's argv is
it); on Docker {"create": the create body, "userns": the daemon's user
namespace} (runtime/docker/admit.py) — with the run's environment as names
only ("env_names"); "options": the run's own words before `--`}. Environment values are never kept: `env.set` values and the spec's
values become "[redacted]", and every other string goes through the
record's redaction (audit/record.py) with the run's secrets. A snapshot
larger than bounds.SANDBOX_BYTES (a profile with very many mounts or
protected paths) is replaced by its size and SHA-256 (bounds.whole_or_digest).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from vectraguard.audit import bounds, record
from vectraguard.sandbox.spec import ContainerSpec

HOSTS_FILE = "<the session's hosts file>"
RUN_DIR = "<the session's command directory>"


def snapshot(name: str, canonical: Mapping[str, Any], spec: ContainerSpec, secrets: Mapping[str, str],
             options: list[str] | tuple[str, ...] = (), sent: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `sandbox` field of a `started` record (above). `canonical`: the
    resolved profile's config.resolved.as_dict (the record has it already);
    `options`: the run's words before `--` (`run -p dev --set ...`), which
    `exec` parses again to judge as the run judged (commands/exec.py);
    `sent`: what an engine other than Podman is sent, kept in place of the
    SpecGenerator (its environment, the entry program's, as names too)."""
    shown = {"name": name, **canonical}
    risk = dict(shown.get("risk") or {})
    for key in ("rules", "patterns"):
        if key in risk:  # not hashed again: the record's profile_digest covers them
            risk[key] = {"count": len(risk[key])}
    shown["risk"] = risk
    env = dict(shown.get("env") or {})
    if isinstance(env.get("set"), dict):
        env["set"] = {name: record.REDACTED for name in env["set"]}
    shown["env"] = env
    if sent is not None:
        specgen = dict(sent)
        create = dict(specgen.get("create") or {})
        create["Env"] = sorted(str(item).partition("=")[0] for item in create.get("Env") or ())
        specgen["create"] = create
    else:
        specgen = spec.to_specgen(HOSTS_FILE, RUN_DIR if spec.entry_path else None)
        specgen.pop("command", None)
        specgen["env"] = sorted(specgen.get("env") or {})
    specgen["env_names"] = sorted(spec.env)
    from vectraguard.config.upstream import (
        redact_in,  # a proxy password given with --set
    )

    whole = _redacted({"profile": shown, "spec": specgen, "options": [redact_in(word) for word in options]}, secrets)
    return bounds.whole_or_digest(whole, bounds.SANDBOX_BYTES)


def _redacted(value: Any, secrets: Mapping[str, str]) -> Any:
    """`value` with every string redacted: all of them in one call (it sorts the secrets once)."""
    texts: list[str] = []
    _strings(value, texts)
    redacted = iter(record.redact(texts, secrets))
    return _rebuilt(value, redacted)


def _strings(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, into)
    elif isinstance(value, list):
        for item in value:
            _strings(item, into)


def _rebuilt(value: Any, redacted: Iterator[str]) -> Any:
    if isinstance(value, str):
        return next(redacted)
    if isinstance(value, dict):
        return {key: _rebuilt(item, redacted) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebuilt(item, redacted) for item in value]
    return value
