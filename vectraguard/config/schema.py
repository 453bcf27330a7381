"""Validating parsed layers against the JSON Schemas in schemas/.

The schemas are the single source of truth for what a file may contain; this
module only turns jsonschema's errors into located, readable Problems.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from vectraguard import resources
from vectraguard.config.problems import Origin, Problem, dotted

SCHEMAS = ("profile", "project", "policy")


@cache
def schema_bytes(name: str) -> bytes:
    return resources.schema_path(name).read_bytes()


@cache
def fingerprint() -> bytes:
    """All schemas together: one file's validity can depend on another's ($ref)."""
    return b"\0".join(schema_bytes(name) for name in SCHEMAS)


@cache
def _validator(name: str) -> Any:
    # jsonschema costs ~90 ms to import; it is only needed when a layer is
    # not already in the validated-layer cache.
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    # The project schema refers to the profile schema by its $id.
    resources = [Resource.from_contents(json.loads(schema_bytes(other))) for other in SCHEMAS]
    registry = Registry().with_resources((str(r.id()), r) for r in resources)
    schema = json.loads(schema_bytes(name))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def validate(name: str, data: Any, lines: dict[str, int], source: str) -> list[Problem]:
    problems = []
    for error in _validator(name).iter_errors(data):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            # Each unknown key at its own line (not the section's, nor the first unknown key's).
            allowed = sorted(error.schema.get("properties", {}))
            unknown = sorted(set(error.instance) - set(allowed), key=lambda key: (_line_for([*path, key], lines), key))
            problems += [Problem(Origin(source, _line_for([*path, key], lines)), dotted(path), _unknown(key, allowed))
                         for key in unknown]
            continue
        problems.append(Problem(Origin(source, _line_for(path, lines)), dotted(path), _message(error)))
    return problems


def _line_for(path: list[Any], lines: dict[str, int]) -> int:
    for end in range(len(path), -1, -1):
        line = lines.get(dotted(path[:end]))
        if line:
            return line
    return 0


def _unknown(key: str, allowed: list[str]) -> str:
    from vectraguard.suggest import did_you_mean

    return f"unknown key {key!r}{did_you_mean(str(key), allowed)} — allowed: {', '.join(allowed)}"


def _message(error: Any) -> str:
    if error.validator == "enum":
        from vectraguard.suggest import did_you_mean

        choices = [str(choice) for choice in error.validator_value]
        meant = did_you_mean(error.instance, choices) if isinstance(error.instance, str) else ""
        return f"{error.instance!r} is not one of {', '.join(choices)}{meant}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {type(error.instance).__name__} {error.instance!r}"
    described = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    if error.validator == "pattern" and described.startswith(("A ", "An ")):
        # What the value should be, in words (the schema says it), rather than the regular expression.
        return f"{error.instance!r} is not {described[0].lower()}{described[1:].rstrip('.')}"
    return str(error.message)
