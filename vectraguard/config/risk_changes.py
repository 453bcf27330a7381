"""What changed in a profile's `risk` section, and which changes loosen it.

Part of config/widening.py's comparison (see there). The risk section is
judged by what it does to a verdict (risk/decide.py, risk/rules.py):

- rules are compared by id with every `@NAME` replaced by the list
  `risk.patterns.NAME`, so a rule replaced under a shipped id, a rule moved
  to another class and a pattern set emptied or edited all show as the rule
  changes they make. Only a rule with a new id is provably narrowing (it can
  add findings, never remove one); a removed or changed rule, and a removed
  or changed pattern set, widen;
- decisions are compared as every rule's *effective* verdict (its own
  `risk.decisions.ID`, else its class's, else ask), so a rule-level
  decision that loosens what its class decides is shown as widening;
- `remember_for` widens when an approval is remembered longer;
- any other key of the section widens on any change, until someone
  classifies it here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vectraguard import units
from vectraguard.approvals.gate import DEFAULT_REMEMBER_FOR
from vectraguard.config.widening import Change
from vectraguard.risk.names import (
    CLASSES,
    NETWORK_FULL,
    NETWORK_PUBLISH,
    NETWORK_WIDENED,
    OPAQUE_RULES,
)

VERDICTS = ("deny", "ask", "allow")  # wider later
DEFAULT_VERDICT = "ask"  # risk/decide.py: a class with no decision is asked about
# Findings about the run rather than its command: decided like rules of these classes.
PSEUDO_RULES = {NETWORK_FULL: "network", NETWORK_WIDENED: "network", NETWORK_PUBLISH: "network",
                **dict.fromkeys(OPAQUE_RULES, "opaque")}
# The rule keys that are not conditions (risk/rules.py `_compile`).
_NOT_CONDITIONS = ("id", "class", "reason")


def compare(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Change]:
    """The changes between two resolved `risk` sections (None: no section)."""
    was, now = old or {}, new or {}
    changes = [*_patterns(was, now), *_rules(was, now), *_decisions(was, now), *_remember_for(was, now)]
    for key in sorted({*was, *now} - {"patterns", "rules", "decisions", "remember_for"}):
        if was.get(key) != now.get(key):
            changes.append(Change(f"risk.{key}", f"risk.{key}: {_json(was.get(key))} -> {_json(now.get(key))}", True))
    return changes


def _patterns(was: Mapping[str, Any], now: Mapping[str, Any]) -> list[Change]:
    before: Mapping[str, Any] = was.get("patterns") or {}
    after: Mapping[str, Any] = now.get("patterns") or {}
    removed = [name for name in before if name not in after]
    changed = [name for name in before if name in after and before[name] != after[name]]
    added = [name for name in after if name not in before]
    # A set only matters through the rules naming it (shown below, expanded), but
    # entries removed from a set a rule matches on widen, and entries added to one
    # named by `unless_args` widen too: any change to an existing set is marked.
    return [Change("risk.patterns", f"risk.patterns: {what}: {', '.join(names)}", widens)
            for names, what, widens in ((removed, "sets removed", True), (changed, "sets changed", True),
                                        (added, "sets added", False)) if names]


def _rules(was: Mapping[str, Any], now: Mapping[str, Any]) -> list[Change]:
    before, after = expanded_rules(was), expanded_rules(now)
    removed = [rule_id for rule_id in before if rule_id not in after]
    changed = [_what_changed(rule_id, before[rule_id], after[rule_id])
               for rule_id in before if rule_id in after and before[rule_id] != after[rule_id]]
    added = [rule_id for rule_id in after if rule_id not in before]
    return [Change("risk.rules", f"risk.rules: {what}: {', '.join(items)}", widens)
            for items, what, widens in ((removed, "removed", True), (changed, "changed", True),
                                        (added, "added", False)) if items]


def _what_changed(rule_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    keys = [key for key in dict.fromkeys([*before, *after]) if before.get(key) != after.get(key)]
    if before.get("class") != after.get("class"):
        return f"{rule_id} (class {before.get('class')} -> {after.get('class')}; {', '.join(keys)})"
    return f"{rule_id} ({', '.join(keys)})"


def expanded_rules(risk: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rule id -> the rule with each `@NAME` item replaced by the list
    `risk.patterns.NAME` (kept as `@NAME` where there is no such set: the
    run refuses such a rule, see risk/rules.py)."""
    patterns: Mapping[str, Any] = risk.get("patterns") or {}
    rules = {}
    for rule in risk.get("rules") or []:
        if isinstance(rule, Mapping):
            rules[str(rule.get("id"))] = {key: value if key in _NOT_CONDITIONS else _expand(value, patterns)
                                          for key, value in rule.items()}
    return rules


def _expand(value: Any, patterns: Mapping[str, Any]) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return value
    expanded: list[Any] = []
    for item in items:
        if isinstance(item, str) and item.startswith("@") and len(item) > 1 and isinstance(patterns.get(item[1:]), list):
            expanded += patterns[item[1:]]
        else:
            expanded.append(item)
    return expanded


def _decisions(was: Mapping[str, Any], now: Mapping[str, Any]) -> list[Change]:
    before: Mapping[str, Any] = was.get("decisions") or {}
    after: Mapping[str, Any] = now.get("decisions") or {}
    changes = []
    for cls in dict.fromkeys([*CLASSES, *(k for k in [*before, *after] if k in CLASSES)]):
        changes += _verdict_change(cls, _class_verdict(before, cls), _class_verdict(after, cls))
    rules_before, rules_after = _classes(was), _classes(now)
    for rule_id in sorted(set(rules_before) & set(rules_after)):
        old_cls, new_cls = rules_before[rule_id], rules_after[rule_id]
        own = rule_id in before or rule_id in after
        if not own and old_cls == new_cls:
            continue  # decided by its class both times: the class's line says it
        changes += _verdict_change(rule_id, _rule_verdict(before, rule_id, old_cls),
                                   _rule_verdict(after, rule_id, new_cls))
    # Decisions for ids that are no rule on one side (its rule was removed or added): listed.
    for key in sorted({*before, *after} - set(CLASSES) - (set(rules_before) & set(rules_after))):
        if before.get(key) != after.get(key):
            changes.append(Change(f"risk.decisions.{key}", f"risk.decisions.{key}: {_shown(before, key)} -> "
                                  f"{_shown(after, key)}", False))
    return changes


def _classes(risk: Mapping[str, Any]) -> dict[str, str]:
    """Every id a decision can name that is not a class -> its class."""
    return {**PSEUDO_RULES, **{rule_id: str(rule.get("class")) for rule_id, rule in expanded_rules(risk).items()}}


def _class_verdict(decisions: Mapping[str, Any], cls: str) -> tuple[str, str]:
    """(the verdict the class's findings get, as shown)."""
    if cls in decisions:
        return str(decisions[cls]), str(decisions[cls])
    return DEFAULT_VERDICT, f"(unset: {DEFAULT_VERDICT})"


def _rule_verdict(decisions: Mapping[str, Any], rule_id: str, cls: str) -> tuple[str, str]:
    """(the verdict a finding of this rule gets, and which setting gives it)."""
    if rule_id in decisions:
        return str(decisions[rule_id]), f"{decisions[rule_id]} (its own)"
    if cls in decisions:
        return str(decisions[cls]), f"{decisions[cls]} (class {cls})"
    return DEFAULT_VERDICT, f"{DEFAULT_VERDICT} (class {cls}, which has no decision)"


def _shown(decisions: Mapping[str, Any], key: str) -> str:
    return str(decisions[key]) if key in decisions else "(unset)"


def _verdict_change(key: str, before: tuple[str, str], after: tuple[str, str]) -> list[Change]:
    """A line when the verdict or the setting that gives it changed; widening when the verdict loosened."""
    (was, was_shown), (now, now_shown) = before, after
    if was_shown == now_shown:
        return []
    widens = now != was and (was not in VERDICTS or now not in VERDICTS or VERDICTS.index(now) > VERDICTS.index(was))
    return [Change(f"risk.decisions.{key}", f"risk.decisions.{key}: {was_shown} -> {now_shown}", widens)]


def _remember_for(was: Mapping[str, Any], now: Mapping[str, Any]) -> list[Change]:
    before, after = was.get("remember_for"), now.get("remember_for")
    if before == after:
        return []
    old_s, new_s = _seconds(before), _seconds(after)
    widens = old_s is None or new_s is None or new_s > old_s
    return [Change("risk.remember_for", f"risk.remember_for: {_json(before)} -> {_json(after)}", widens)]


def _seconds(value: Any) -> float | None:
    """How long an approval is remembered (0: not at all); None if it does not parse."""
    if value is None:
        value = DEFAULT_REMEMBER_FOR  # as approvals/gate.py reads an unset one
    if value is False:
        return 0.0
    try:
        return units.parse_duration(value)
    except (ValueError, TypeError):
        return None


def _json(value: Any) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
