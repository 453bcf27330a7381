"""The command line as the highest configuration layer.

Per-run flags (`--memory`, `--mount`, `--env`, `--allow`, `--trust-host-ca`, `--set KEY=VALUE`,
...) are written into a profile-shaped layer and validated by the same
schema as a file, so a flag and a file line mean the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from vectraguard import diag, errors
from vectraguard.config import schema
from vectraguard.config.layers import Layer, validated_layer
from vectraguard.sandbox.compile import PROXY_VARIABLES

COMMAND_LINE = "command line"


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
                       ("network", "network.mode"), ("workspace", "filesystem.workspace.mode"),
                       ("isolation", "isolation"), ("engine", "engine.name")):
        if getattr(args, flag, None) is not None:
            put(path, getattr(args, flag))
    if args.pids is not None:
        put("limits.pids", int(args.pids))
    if args.mount:
        put("filesystem.mounts", [parse_mount_flag(m) for m in args.mount])
    if getattr(args, "trust_host_ca", False):
        put("network.trust_host_ca", True)
    if args.allow and args.network is None:
        put("network.mode", "allowlist")  # --allow alone means: this, and nothing else
    env_set = parse_env_flags(args.env, os.environ)
    if env_set:
        put("env.set", env_set)
    appends: list[tuple[str, tuple[Any, ...]]] = []
    if args.allow:
        # --allow adds to the profile's allowlist rather than replacing it.
        appends.append(("network.allow", tuple(args.allow)))
    if getattr(args, "publish", None):
        # --publish adds to the profile's published ports (network.publish), as --allow does.
        appends.append(("network.publish", tuple(args.publish)))
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
        try:
            validated_layer(COMMAND_LINE, check, "profile")
        except errors.ConfigError as exc:
            scalar = next((key for key, _ in appends if not _is_list_key(key)), None)
            if scalar is not None:
                exc.hint = f"--set {scalar}+= appends to a list, and {scalar} is not one: use --set {scalar}=VALUE"
            raise
    return Layer(layer.source, layer.data, layer.lines, tuple(appends))


def _is_list_key(key: str) -> bool:
    """Whether KEY is a list in the profile schema (an unknown KEY counts as
    one: the schema's own message, with its suggestion, says what is wrong)."""
    node: Any = json.loads(schema.schema_bytes("profile"))
    for part in key.split("."):
        node = node.get("properties", {}).get(part) if isinstance(node, dict) else None
        if node is None:
            return True
    return bool(node.get("type") == "array")


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
        value = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        value = raw
    except RecursionError:
        raise errors.UsageError(f"vectraguard: --set {key}: the value is nested too deeply") from None
    _check_text(f"--set {key}", value)
    return key, value, append


def _no_constant(name: str) -> Any:
    # JSON's NaN and Infinity are not numbers any limit can mean; as text,
    # the schema refuses them where a number is due.
    raise ValueError(name)


def _check_text(flag: str, value: Any) -> None:
    """The strings a flag gives must survive an environment, an argv and
    JSON: no NUL, no lone surrogate (what undecodable argv bytes become)."""
    texts = [value] if isinstance(value, str) else []
    stack = [value]
    while stack:
        node = stack.pop()
        children = list(node.items()) if isinstance(node, dict) else node if isinstance(node, list) else []
        for child in children:
            parts = child if isinstance(child, tuple) else (child,)
            texts += [part for part in parts if isinstance(part, str)]
            stack += [part for part in parts if isinstance(part, (dict, list))]
    for text in texts:
        if "\0" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            raise errors.UsageError(f"vectraguard: {flag}: a NUL character or bytes that are not UTF-8 "
                                    "are not allowed in a value")


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
            _check_text(f"--env {name}", value)
            values[name] = value
        elif name in PROXY_VARIABLES:
            # The network policy decides what is reachable, never an inherited proxy.
            raise errors.UsageError(f"vectraguard: --env {name}: proxy settings are not passed from the host",
                                    hint=f"give a value explicitly (--env {name}=...) if the sandbox needs one")
        elif name in host_env:
            values[name] = host_env[name]
        else:
            diag.notice(f"vectraguard: warning: --env {name}: not set here, not passed")
    return values
