"""The rules a run is judged by: its profile's (`risk.patterns`, `risk.rules`)
and the system policy's, which no user, project or flag can change.

Every regular expression of a rule set is checked once — a broken rule is a
configuration error before anything runs — and the check is remembered in
the validation cache (config/cache.py, keyed by a digest of the rule set), so
later runs compile only the expressions they reach.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from vectraguard.config import cache, profiles
from vectraguard.config.policy import Policy
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.errors import ConfigError
from vectraguard.risk.rules import Rule, RuleError, compile_rules

_CHECKED = b"risk rules: every regular expression compiles"


def rules_of(profile: ResolvedProfile, policy: Policy | None = None) -> tuple[Rule, ...]:
    """The profile's rules, then the policy's (a policy rule with a profile
    rule's id is judged as well, so a layer cannot switch it off by redefining it)."""
    own = _checked(profile.risk or {}, lambda exc: broken(profile, exc))
    if policy is None or not policy.get("risk.rules"):
        return own
    origin = policy.layer.origin("risk.rules")
    imposed = _checked(policy.get("risk") or {}, lambda exc: ConfigError(f"vectraguard: {origin}: risk.rules: {exc}"))
    return own + imposed


def _checked(risk: Mapping[str, Any], error: Callable[[RuleError], ConfigError]) -> tuple[Rule, ...]:
    try:
        rules = compile_rules(risk.get("rules", []), risk.get("patterns", {}))
        key = cache.cache_key(_CHECKED, json.dumps([risk.get("rules"), risk.get("patterns")], sort_keys=True).encode())
        if cache.lookup(key) is None:
            for rule in rules:
                for regexes in rule.regexes():
                    regexes.compile_all()
            cache.store(key, True, {})
    except RuleError as exc:
        raise error(exc) from None
    return rules


def broken(profile: ResolvedProfile, exc: RuleError) -> ConfigError:
    origin = profile.provenance.get("risk.rules", "<profile>")
    return ConfigError(f"vectraguard: {origin}: risk.rules: {exc}")


def shipped_rules() -> tuple[Rule, ...]:
    """The rules of the shipped `default` profile, without any user's layers (for the bench)."""
    sources = profiles.Sources()
    return rules_of(profiles.resolve("default", [], sources))
