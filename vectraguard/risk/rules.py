"""Risk rules: data from the profile's `risk` section, compiled for matching.

A rule names the commands it is about and conditions on them; every
condition given must hold, and within one condition any listed item may
match. The rules themselves ship as data (profiles/fragments/risk-rules.yaml)
and are merged by `id` across the layers like any profile key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from vectraguard import records


@records.record
class Command:
    """One command as the judge sees it, after quotes, variables and wrappers."""

    name: str  # basename of argv[0]
    args: tuple[str, ...]
    sources: tuple[tuple[str, str], ...] = ()  # (name, joined args) of what feeds its input
    code: str = ""  # inline program text for interpreters (python -c, perl -e, awk ...)
    redirects: tuple[str, ...] = ()  # files its output is redirected into

    def flags(self) -> tuple[set[str], set[str]]:
        """(short flag letters, long flag names), up to `--`."""
        short: set[str] = set()
        long: set[str] = set()
        for arg in self.args:
            if arg == "--":
                break
            if arg.startswith("--"):
                long.add(arg[2:].split("=", 1)[0])
            elif arg.startswith("-") and len(arg) > 1:
                short.update(arg[1:])
                long.add(arg[1:])  # single-dash long options (find -delete, -exec)
        return short, long

    def split_operands(self) -> tuple[list[str], str | None]:
        """(the operands a copy or move reads, the one it writes), for cp/mv/rsync
        (`-t DIR`/`--target-directory=DIR` names the target; else the last operand)."""
        operands = self.operands()
        for index, arg in enumerate(self.args):
            if arg in ("-t", "--target-directory") and index + 1 < len(self.args):
                target = self.args[index + 1]
                return [o for o in operands if o != target], target
            if arg.startswith("--target-directory="):
                return operands, arg.partition("=")[2]
        if len(operands) < 2:
            return operands, None
        return operands[:-1], operands[-1]

    def operands(self) -> list[str]:
        result, after_dashes = [], False
        for arg in self.args:
            if after_dashes or not arg.startswith("-") or arg == "-":
                result.append(arg)
            elif arg == "--":
                after_dashes = True
        return result


# Pattern text -> compiled: compiling is a pure function of the text, so every
# rule set of the process shares one table. The fork server fills it with the
# shipped profiles' ~850 patterns before it forks (~70 ms a served run would
# otherwise spend compiling those its line reaches: forkserver/server.py).
_compiled_texts: dict[str, re.Pattern[str]] = {}


def compiled(text: str) -> re.Pattern[str]:
    """re.compile(text), once per process; re.error as re.compile raises it."""
    pattern = _compiled_texts.get(text)
    if pattern is None:
        pattern = _compiled_texts[text] = re.compile(text)
    return pattern


class Regexes:
    """A condition's regular expressions, compiled when first needed: a run
    reaches only the rules whose commands it has, and compiling all of them
    costs more than judging. `compile_all` checks every one (see ruleset.py)."""

    __slots__ = ("_compiled", "key", "rule_id", "texts")

    def __init__(self, texts: tuple[str, ...], rule_id: str, key: str) -> None:
        self.texts, self.rule_id, self.key = texts, rule_id, key
        self._compiled: tuple[re.Pattern[str], ...] | None = None

    def __bool__(self) -> bool:
        return bool(self.texts)

    def compile_all(self) -> tuple[re.Pattern[str], ...]:
        if self._compiled is None:
            try:
                self._compiled = tuple(compiled(text) for text in self.texts)
            except re.error as exc:
                raise RuleError(f"rule {self.rule_id!r}: {self.key}: bad regular expression: {exc}") from None
        return self._compiled

    def search_any(self, texts: Iterable[str]) -> bool:
        texts = list(texts)
        return any(pattern.search(text) for pattern in self.compile_all() for text in texts)


_NONE = Regexes((), "", "")


@records.record
class Rule:
    """One compiled rule: every condition given must hold."""

    id: str
    cls: str
    reason: str
    commands: tuple[str, ...]  # globs on the command name
    flags: tuple[str, ...] = ()
    subcommands: tuple[str, ...] = ()
    operands: Regexes = _NONE
    args: Regexes = _NONE
    unless_args: Regexes = _NONE
    stdin_from: tuple[str, ...] = ()
    stdin_args: Regexes = _NONE
    code: Regexes = _NONE
    redirect_to: Regexes = _NONE
    line: Regexes = _NONE  # on a whole command line instead of one command
    sources: Regexes = _NONE  # what a copy or move reads (all operands but its target)
    target: Regexes = _NONE  # what a copy or move writes (its last operand, or -t DIR)

    def regexes(self) -> tuple[Regexes, ...]:
        return (self.operands, self.args, self.unless_args, self.stdin_args, self.code, self.redirect_to, self.line,
                self.sources, self.target)

    def matches_line(self, text: str) -> bool:
        return bool(self.line) and self.line.search_any([text])

    def matches(self, command: Command) -> bool:
        if self.line:
            return False
        if not _name_matches(command.name, self.commands):
            return False
        if self.flags:
            short, long = command.flags()
            # GNU getopt takes any unambiguous abbreviation of a long option (`--recur`, `--forc`).
            if not any((len(f) == 1 and f in short) or (len(f) > 1 and (f in long or any(
                    len(given) >= 3 and f.startswith(given) for given in long))) for f in self.flags):
                return False
        operands = command.operands()
        if self.subcommands and not any(op in self.subcommands for op in operands[:3]):
            return False
        if self.operands and not self.operands.search_any(operands):
            return False
        if self.sources or self.target:
            sources, target = command.split_operands()
            if self.sources and not self.sources.search_any(sources):
                return False
            if self.target and (target is None or not self.target.search_any([target])):
                return False
        if self.args and not self.args.search_any(command.args):
            return False
        if self.unless_args and self.unless_args.search_any(command.args):
            return False
        if self.stdin_from and not any(_name_matches(name, self.stdin_from) for name, _ in command.sources):
            return False
        if self.stdin_args and not self.stdin_args.search_any(text for _, text in command.sources):
            return False
        if self.code and not self.code.search_any([command.code]):
            return False
        return not (self.redirect_to and not self.redirect_to.search_any(command.redirects))


def _name_matches(name: str, globs: tuple[str, ...]) -> bool:
    # Most entries are plain names: compare them as such, and leave fnmatch
    # (which compiles a regex per glob) to the real globs such as mkfs.*.
    return name in globs or any(fnmatch.fnmatchcase(name, glob) for glob in globs if any(c in glob for c in "*?["))


class Index:
    """The rules by command name, so judging one command tries only the rules about
    it: plain names are looked up, globs matched once per name and remembered."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.line_rules = tuple(rule for rule in rules if rule.line)
        self._order = {id(rule): index for index, rule in enumerate(rules)}
        self._plain: dict[str, list[Rule]] = {}
        self._globbed: list[Rule] = []
        for rule in rules:
            if rule.line:
                continue
            for name in rule.commands:
                if any(c in name for c in "*?["):
                    self._globbed.append(rule)
                else:
                    self._plain.setdefault(name, []).append(rule)
        self._cache: dict[str, tuple[Rule, ...]] = {}

    def for_name(self, name: str) -> tuple[Rule, ...]:
        found = self._cache.get(name)
        if found is None:
            chosen = {id(r): r for r in self._plain.get(name, [])}
            for rule in self._globbed:
                if _name_matches(name, rule.commands):
                    chosen[id(rule)] = rule
            found = tuple(sorted(chosen.values(), key=lambda r: self._order[id(r)]))
            self._cache[name] = found
        return found


class RuleError(ValueError):
    """A rule that cannot be used; the message names the rule and the key."""


def compile_rules(rules: Iterable[Mapping[str, Any]], patterns: Mapping[str, list[str]]) -> tuple[Rule, ...]:
    """Rules from profile data. `operands`, `args` and friends take regexes, or
    the name of a list in `patterns` (shared sets such as sensitive paths)."""
    return tuple(_compile(rule, patterns) for rule in rules)


def _compile(rule: Mapping[str, Any], patterns: Mapping[str, list[str]]) -> Rule:
    rule_id = str(rule["id"])

    def names(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The key's items, with each @NAME replaced by the list risk.patterns.NAME."""
        value = rule.get(key, default)
        expanded: list[str] = []
        for item in [value] if isinstance(value, str) else list(value):
            if item.startswith("@") and len(item) > 1:
                if item[1:] not in patterns:
                    raise RuleError(f"rule {rule_id!r}: {key}: no pattern set {item[1:]!r} in risk.patterns")
                expanded += patterns[item[1:]]
            else:
                expanded.append(item)
        return tuple(expanded)

    def regexes(key: str) -> Regexes:
        return Regexes(names(key), rule_id, key)

    return Rule(
        id=rule_id, cls=str(rule["class"]), reason=str(rule["reason"]),
        commands=names("commands", ("*",)), flags=tuple(rule.get("flags", ())), line=regexes("line"),
        subcommands=tuple(rule.get("subcommands", ())), operands=regexes("operands"), args=regexes("args"),
        unless_args=regexes("unless_args"), stdin_from=names("stdin_from"),
        stdin_args=regexes("stdin_args"), code=regexes("code"), redirect_to=regexes("redirect_to"),
        sources=regexes("sources"), target=regexes("target"),
    )
