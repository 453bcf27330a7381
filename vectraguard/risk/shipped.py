"""The rules a profile carries, compiled (`risk.patterns` and `risk.rules`)."""

from __future__ import annotations

from typing import Any

from vectraguard.config import profiles
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.errors import ConfigError
from vectraguard.risk.rules import Rule, RuleError, compile_rules


def rules_of(profile: ResolvedProfile) -> tuple[Rule, ...]:
    risk: dict[str, Any] = dict(profile.risk or {})
    try:
        return compile_rules(risk.get("rules", []), risk.get("patterns", {}))
    except RuleError as exc:
        origin = profile.provenance.get("risk.rules", "<profile>")
        raise ConfigError(f"vectraguard: {origin}: risk.rules: {exc}") from None


def shipped_rules() -> tuple[Rule, ...]:
    """The rules of the shipped `default` profile, without any user's layers (for the bench)."""
    sources = profiles.Sources()
    return rules_of(profiles.resolve("default", [], sources))
