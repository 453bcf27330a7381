"""Judging a command before it runs: findings by class, each with what matched and why.

The judge reads the command as a shell would (see shellwords), then looks
through what hides the real command: wrappers (risk/wrappers.py: `env -S`,
`timeout`, `flock -c`, `sudo -s`, `xargs`, `parallel` ...), shells given a
script (risk/shells.py: `sh -c SCRIPT NAME ARG...` with $0, $1 ... set),
functions called with arguments, programs running command lines from their
options (risk/programs.py: `git -c core.pager=`, `tar --to-command`, `ssh -o
ProxyCommand` ...), statically decodable text (risk/decoding.py: `echo ... |
base64 -d | sh`), variables set earlier on the same line, here-documents, and
inline programs (risk/inline_code.py), whose shell strings are judged in
turn. Every command it finds is matched against the rules (data, from the
profile).

What it cannot see is a finding too, of class `opaque` (rules.OPAQUE_RULES):
a command name, an `eval`'d or `sh -c`'d text, a sourced file or a program
fed to a shell that is known only when the line runs, a program decoded on
the line, an inline program that builds its command. Nothing is executed; a
script file is read (small files only).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from vectraguard.risk import (
    decoding,
    inline_code,
    programs,
    shells,
    shellwords,
    wrappers,
)
from vectraguard.risk.rules import OPAQUE_RULES, Command, Index, Rule

MAX_DEPTH = 8  # nested scripts (sh -c "sh -c ..."); deeper is opaque
# Lines judged for one command (nested scripts, function calls, here-documents ...): a bound
# on the work a crafted line can cause (functions calling functions grow it exponentially);
# what is left unread is opaque.
MAX_LINES = 2000
MAX_SCRIPT_BYTES = 256 * 1024
# An expansion whose value is unknown is kept as its text (`${X}`, `$(cmd)`)
# followed by this mark, which no shell word can contain: what came from it is
# known to be unknown wherever it travels (into `eval`, `sh -c`, a name).
UNKNOWN = "\x00"
FETCHERS = frozenset({"curl", "wget", "aria2c", "http", "https", "fetch", "lwp-download", "axel"})
ARCHIVERS = frozenset({"tar", "unzip", "bsdtar", "7z", "gunzip", "cpio"})
STDIN_PATHS = frozenset({"/dev/stdin", "/proc/self/fd/0", "/dev/fd/0", "-"})
SCHEDULERS = frozenset({"at", "batch"})  # read commands from input, run them later
EDITORS_READING_INPUT = frozenset({"ed", "red", "ex"})  # `!CMD` lines run CMD
# Commands whose operands are paths: judged under the directory a `cd` earlier on the line chose.
PATH_COMMANDS = frozenset({"rm", "rmdir", "unlink", "shred", "chmod", "chown", "chgrp", "mv", "cp", "find", "truncate",
                           "rsync", "tee", "ln"})
# Programs that run a file given to them: a file written earlier on the line is judged as their program.
COMPILERS = frozenset({"gcc", "cc", "clang", "g++", "c++", "clang++", "tcc", "rustc", "go"})
FILE_RUNNERS = frozenset({*inline_code.INTERPRETERS, "go", "nmap", "gdb", "tclsh", "wish", "expect", "sqlite3",
                          "deno", "bun", "ts-node", "tsx", "Rscript", "julia", "php", "ruby", "perl", "node", "lua"})


@dataclass(frozen=True)
class Finding:
    """One risk found in a command: the rule, its class, what matched and why."""

    rule: str
    cls: str
    matched: str  # the command (as the judge saw it) that matched
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "class": self.cls, "matched": self.matched, "reason": self.reason}


@dataclass
class Input:
    """What a command reads on standard input, as far as the line shows it."""

    known: str | None = None  # the text, when it needs no running to know
    fed: bool = False  # something feeds it (a pipe, `<`, a here-document)
    decoded: bool = False  # a decoding or transforming stage is on the way
    substituted: list[str] = field(default_factory=list)  # <(...) arguments, in order


def classify(command: str | list[str] | tuple[str, ...], rules: tuple[Rule, ...], cwd: str | None = None) -> list[Finding]:
    """Findings for a command line (a string) or an argv (as `vectraguard run` gets it)."""
    judge = _Judge(rules, cwd)
    if isinstance(command, str):
        judge.line(command, 0)
    else:
        judge.line(shlex.join(command), 0)
    # A function defined and not called here may still run (exported with `export -f`,
    # a hook name such as command_not_found_handle): its body is judged as it stands.
    for name, body in list(judge.functions.items()):
        if name not in judge.called:
            judge.with_positional(None, body, 1)
    return judge.findings


_INDEXES: dict[int, tuple[tuple[Rule, ...], Index]] = {}


def _index(rules: tuple[Rule, ...]) -> Index:
    """The index of a rule set, built once (by identity: hashing every rule costs more than judging)."""
    kept = _INDEXES.get(id(rules))
    if kept is None or kept[0] is not rules:
        if len(_INDEXES) > 8:
            _INDEXES.clear()
        kept = _INDEXES[id(rules)] = (rules, Index(rules))
    return kept[1]


def shown(text: str) -> str:
    """A judged text as a person reads it (the unknown mark dropped)."""
    return text.replace(UNKNOWN, "")


class _Judge:
    def __init__(self, rules: tuple[Rule, ...], cwd: str | None) -> None:
        self.rules = _index(rules)
        self.cwd = cwd
        # $SHELL is a shell wherever this runs; the rest is unknown until the line sets it.
        self.vars: dict[str, str] = {"IFS": " \t\n", "SHELL": "sh"}
        self.positional: list[str] | None = None  # $0, $1 ... when known (sh -c SCRIPT ARGS, a function call)
        self.files: dict[str, str] = {}  # files written earlier on this line -> their known text
        self.downloaded: dict[str, str] = {}  # files fetched earlier on this line -> the fetcher
        self.extracted = ""  # a fetched archive was unpacked here: its fetcher
        self.functions: dict[str, str] = {}  # name -> body, defined earlier on this line
        self.namerefs: dict[str, str] = {}  # declare -n NAME=OTHER
        self.cloned: set[str] = set()  # directories of repositories cloned earlier on this line
        self.aliases: dict[str, str] = {}  # `hash -p /bin/rm ls`, `cp /bin/rm ./ls`: a name for another program
        self.secret_files: set[str] = set()  # files the environment or history was written into
        self.new_remotes: dict[str, str] = {}  # git remotes added on this line -> their URL
        self.links: dict[str, str] = {}  # symbolic links made on this line -> what they point to
        self.directory: str | None = None  # after `cd DIR` on this line: DIR (relative to the working directory)
        self.called: set[str] = set()
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()
        self.budget = MAX_LINES

    # -- findings ------------------------------------------------------------------------------

    def opaque(self, rule: str, what: str, detail: str = "") -> None:
        text = shown(what).strip()[:200]
        if (rule, text) in self._seen:
            return
        self._seen.add((rule, text))
        reason = OPAQUE_RULES[rule] + (f": {detail}" if detail else "")
        self.findings.append(Finding(rule, "opaque", text, reason))

    def match(self, command: Command, argv: list[str]) -> None:
        text = shown(shlex.join(argv))[:200]
        # A rule about what feeds the command shows the feeder too (`curl … | sh`, not just `sh`).
        fed = shown(" | ".join(f"{name} {args}".strip() for name, args in command.sources))[:200]
        if self.links and command.name in PATH_COMMANDS:  # `ln -s ~ build; rm -rf build/`: what the link names
            command = Command(command.name, tuple(self._through_link(a) for a in command.args), command.sources,
                              command.code, command.redirects)
        if self.directory and self.directory != "." and command.name in PATH_COMMANDS:
            command = Command(command.name, tuple(self._under_directory(a) for a in command.args), command.sources,
                              command.code, command.redirects)
        if self.cwd:  # a path inside the working directory is judged as the relative path it is
            command = Command(command.name, tuple(self._relative(a) for a in command.args), command.sources,
                              command.code, command.redirects)
        for rule in self.rules.for_name(command.name):
            if (rule.id, text) not in self._seen and rule.matches(command):
                self._seen.add((rule.id, text))
                matched = f"{fed} | {text}" if fed and (rule.stdin_from or rule.stdin_args) else text
                self.findings.append(Finding(rule.id, rule.cls, matched, rule.reason))

    def _host_path(self, path: str) -> str:
        """Where a path on the line is, after the line's `cd`: the file that will run."""
        assert self.cwd is not None
        if path.startswith("/"):
            return path
        if path.startswith("~"):
            return os.path.expanduser(path)
        base = self.directory or "."
        if base.startswith("~"):
            base = os.path.expanduser(base)
        return os.path.normpath(os.path.join(self.cwd, base, path))

    def _through_link(self, arg: str) -> str:
        path = posixpath.normpath(self._under_directory(arg)).lstrip("./") if not arg.startswith("-") else arg
        for link, target in self.links.items():
            if path == link or path.startswith(link + "/"):
                return target.rstrip("/") + path[len(link):]
        return arg

    def _under_directory(self, arg: str) -> str:
        """A relative path operand after `cd DIR`, as the path it names."""
        if arg.startswith(("-", "/", "~", "$")) or UNKNOWN in arg or self.directory is None:
            return arg
        joined = posixpath.normpath(posixpath.join(self.directory, arg))
        return "./" + joined if not joined.startswith(("/", "~", ".")) else joined

    def _relative(self, arg: str) -> str:
        assert self.cwd is not None
        if arg == self.cwd or arg == self.cwd + "/":
            return "."
        if arg.startswith(self.cwd.rstrip("/") + "/") and "/.." not in arg:
            return "./" + arg[len(self.cwd.rstrip("/")) + 1:]
        return arg

    # -- lines and pipelines ------------------------------------------------------------------

    def line(self, text: str, depth: int) -> None:
        if not text.strip():
            return
        if depth > MAX_DEPTH:
            self.opaque("opaque-eval", text, f"nested more than {MAX_DEPTH} levels deep")
            return
        self.budget -= 1
        if self.budget < 0:
            self.opaque("opaque-eval", "(the rest of the line)", f"more than {MAX_LINES} nested lines to read")
            return
        pipelines, code = shellwords.parse_code(text)
        for rule in self.rules.line_rules:
            if rule.matches_line(code) and (rule.id, code) not in self._seen:
                self._seen.add((rule.id, code))
                self.findings.append(Finding(rule.id, rule.cls, shown(code).strip()[:200], rule.reason))
        for pipeline in pipelines:
            self.pipeline(pipeline, depth)

    def with_positional(self, positional: list[str] | None, text: str, depth: int) -> None:
        """Judge `text` with $0, $1 ... set (None: unknown), as a script or function body sees them."""
        saved = self.positional
        self.positional = positional
        try:
            self.line(text, depth)
        finally:
            self.positional = saved

    def pipeline(self, pipeline: shellwords.Pipeline, depth: int, stdin: Input | None = None,
                 sources: tuple[tuple[str, str], ...] = ()) -> None:
        stdin = stdin or Input()
        for simple in pipeline.commands:
            # What feeds a stage is every stage before it (`cat KEY | tr … | nc`): a rule about
            # what is sent sees where it came from.
            fed, output, decoded = self.simple(simple, depth, sources, stdin)
            sources = (*fed, *sources)
            stdin = Input(output, fed=True, decoded=decoded or stdin.decoded)

    def fed_line(self, text: str, depth: int, sources: tuple[tuple[str, str], ...] = (),
                 known: str | None = None) -> None:
        """A command line run with input the line does not show (tar --to-command, `>(…)`)."""
        for pipeline in shellwords.parse(text):
            self.pipeline(pipeline, depth + 1, Input(known, fed=True), sources)

    # -- one simple command -------------------------------------------------------------------

    def simple(self, simple: shellwords.Simple, depth: int, sources: tuple[tuple[str, str], ...],
               stdin: Input) -> tuple[tuple[tuple[str, str], ...], str | None, bool]:
        """Judge one simple command; returns (what feeds the next stage, its known output, whether it decodes)."""
        if simple.defines:  # judged when called, with its arguments
            self.functions[simple.defines] = simple.subshell
            return (), None, False
        if simple.subshell:
            saved = self.directory
            self.line(simple.subshell, depth + 1)
            self.directory = saved
            return (("(subshell)", simple.subshell),), None, False
        extra_sources: list[tuple[str, str]] = []
        redirects: list[str] = []
        output_readers: list[str] = []  # >(...): commands fed by this one
        stdin = Input(stdin.known, stdin.fed, stdin.decoded)
        for redirect in simple.redirects:
            if redirect.target is None and redirect.op == "<(":
                self.line(redirect.inner, depth + 1)
                extra_sources += self._names(redirect.inner)
                stdin.substituted.append(redirect.inner)
            elif redirect.target is None and redirect.op == ">(":  # reads this command's output: judged below
                output_readers.append(redirect.inner)
            elif redirect.op in (">", ">>", ">|", "&>", "&>>", "<>", ">&") and redirect.target is not None:
                target = self.expand(redirect.target, depth)[0][0] if redirect.target.parts else ""
                redirects.append(self._through_link(target))
            elif redirect.op in ("<<", "<<-") and redirect.body is not None:  # a here-document
                stdin = Input(" ".join(self.expand(redirect.body, depth)[0]), fed=True)
            elif redirect.op == "<<<" and redirect.target is not None:  # here-string: known input
                stdin = Input(" ".join(self.expand(redirect.target, depth)[0]) + "\n", fed=True)
            elif redirect.op == "<":
                path = " ".join(self.expand(redirect.target, depth)[0]) if redirect.target else ""
                extra_sources.append(("cat", path))
                stdin = Input(self.files.get(posixpath.normpath(path)) if path else None, fed=True)
                if path.startswith(("/dev/tcp/", "/dev/udp/")):
                    redirects.append(path)  # input from the network is a connection all the same
            elif redirect.op in ("<&", "<>"):  # input from another descriptor: unknown
                stdin = Input(None, fed=True)
        words = _without_keywords(simple.words)
        if words and _globbed(words[0]):  # `/bin/r? -rf ~`: the name is whatever the glob finds
            self.opaque("opaque-command-name", " ".join(w.literal() or "?" for w in words)[:200],
                        "a pattern picks the program")
        if words and words[0].literal() in ("for", "select"):
            self.loop(words, depth)
            return (), None, False
        if words and words[0].literal() == "case":
            return (), None, False
        argv, substituted = self.words(words, depth)
        assigned: dict[str, str] = {}
        while argv and _assignment(argv[0]):
            name, _, value = argv.pop(0).partition("=")
            assigned[name] = value
        self.assignments(assigned, depth, scoped=bool(argv), substituted=stdin.substituted)
        if not argv:
            if redirects:  # `> /dev/sda`: a redirection alone still writes
                self.match(Command(":", (), redirects=tuple(redirects)), [":", *(f">{r}" for r in redirects)])
            return (), None, False
        if argv[0] == "set" and "--" in argv:
            self.positional = [self.positional[0] if self.positional else "sh", *argv[argv.index("--") + 1:]]
        if argv[0] == "read":  # its variables now hold input: unknown
            for name in argv[1:]:
                self.vars.pop(name, None)
        if argv[0] in ("export", "declare", "typeset", "local", "readonly"):
            pairs = {a.partition("=")[0]: a.partition("=")[2] for a in argv[1:] if _assignment(a)}
            if any(re.fullmatch(r"-[a-zA-Z]*n[a-zA-Z]*", a) for a in argv[1:]):  # declare -n: a reference
                self.namerefs.update(pairs)
            else:
                self.assignments(pairs, depth, scoped=False)
        if argv[0] in ("cd", "pushd"):
            self.change_directory(argv[1:])
        all_sources = (*sources, *extra_sources, *substituted)
        scoped = {name: self.vars.get(name) for name in assigned}  # `GIT_DIR=… git status`: for this command
        self.vars.update(assigned)
        try:
            output = self.command(argv, depth, all_sources, stdin, tuple(redirects))
        finally:
            for name, before in scoped.items():
                if before is None:
                    self.vars.pop(name, None)
                else:
                    self.vars[name] = before
        for target in redirects:
            self.note_written(target, output, argv)
        name = posixpath.basename(argv[0])
        for target in [*redirects, *programs.written_paths(argv)]:
            if posixpath.basename(target) == ".envrc":  # direnv runs it on the host: what it will say, judged
                if output is not None and name in ("echo", "printf"):
                    self.line(output, depth + 1)
                else:
                    self.opaque("opaque-loaded", shlex.join(argv), f"direnv runs {target} on the host")
        for reader in output_readers:  # `curl … > >(sh)`, `tee >(bash)`: fed by this command
            self.fed_line(reader, depth, ((name, " ".join(argv[1:])), *all_sources), output)
        return (((name, " ".join(argv[1:])), *extra_sources), output,
                name in decoding.DECODERS or _escaping(argv))

    def _scratch(self, path: str) -> bool:
        """A directory anyone may write (/tmp ...) or one known only at run time (not $PATH, $HOME)."""
        if path in ("$PATH", "${PATH}", "${PATH}" + UNKNOWN) or re.fullmatch(r"\$\{?(HOME|PWD)\}?\x00?(/.*)?", path):
            return False
        return path.startswith(("/tmp", "/var/tmp", "/dev/shm")) or UNKNOWN in path or "$" in path

    def _outside(self, path: str) -> bool:
        """A path outside the working directory (or unknown): absolute elsewhere, in a home, above it."""
        where = self._relative(path) if self.cwd else path
        return where.startswith(("/", "~", "..")) or "$" in where or UNKNOWN in where

    def change_directory(self, args: list[str]) -> None:
        """`cd DIR`: later relative paths on the line are under DIR (unknown DIR: not followed)."""
        target = next((a for a in args if not a.startswith("-")), "~")
        if UNKNOWN in target or "$" in target:
            self.directory = None
            return
        base = self.directory or "."
        self.directory = posixpath.normpath(target if target.startswith(("/", "~")) else posixpath.join(base, target))
        if self.cwd and self.directory.startswith("/"):
            relative = self._relative(self.directory)
            self.directory = relative if relative != self.directory else self.directory

    def assignments(self, assigned: dict[str, str], depth: int, scoped: bool,
                    substituted: list[str] | None = None) -> None:
        """NAME=VALUE words: remembered (unless they only prefix one command), and judged
        where the variable makes a program run a command or load code."""
        for name, value in assigned.items():
            if name in ("BASH_ENV", "ENV") and not value and substituted:  # BASH_ENV=<(...)
                self.program_input(Input(substituted=list(substituted)), depth, [f"{name}=<(...)"], None)
                continue
            if not scoped:
                self.vars[name] = value
            if name in shells.COMMAND_VARIABLES and value:
                self.line(value.lstrip("|"), depth + 1)
            elif name in shells.CODE_FILE_VARIABLES and value:
                self.opaque("opaque-loaded", f"{name}={value}", f"{name} makes programs load code from it")
            elif name in ("GIT_CONFIG_PARAMETERS",) or (name.startswith("GIT_CONFIG_KEY_") and value):
                runs = programs.Runs()
                programs.git_value(value, assigned.get("GIT_CONFIG_VALUE_" + name.rpartition("_")[2], ""), runs)
                for text in runs.lines:
                    self.line(text, depth + 1)
                for why in runs.opaque:
                    self.opaque("opaque-loaded", f"{name}={value}", why)
                if name == "GIT_CONFIG_PARAMETERS":
                    self.opaque("opaque-loaded", f"{name}={value}", "git configuration from the environment")
            elif name in shells.SOURCE_VARIABLES and value:
                self.opaque("opaque-loaded", f"{name}={value}", f"{name} makes installs come from elsewhere")
            elif name == "PATH" and any(self._scratch(item) for item in value.split(":") if item):
                self.opaque("opaque-loaded", f"{name}={value}", "PATH finds programs in a scratch or unknown place")
            elif name in shells.SEARCH_PATH_VARIABLES and any(
                    self._outside(item) for item in value.split(":") if item):
                self.opaque("opaque-loaded", f"{name}={value}", f"{name} makes programs load code from there")
            elif name in ("NODE_OPTIONS", "PERL5OPT", "RUBYOPT", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS") and \
                    re.search(r"(^|\s)(-r|--require|--import|--loader|--experimental-loader|-M|-javaagent)", value):
                self.opaque("opaque-loaded", f"{name}={value}", f"{name} loads code into every program")
            elif name == "MAKEFLAGS" and re.search(r"--eval|SHELL=|\$\(shell", value):
                self.opaque("opaque-loaded", f"{name}={value}", "make runs what MAKEFLAGS adds")

    def note_written(self, target: str, output: str | None, argv: list[str]) -> None:
        """What a command wrote into `target`: its text when known, and whether it was fetched."""
        path = posixpath.normpath(target)
        if output is not None:
            self.files[path] = output
        name = posixpath.basename(argv[0])
        if name in FETCHERS:  # `curl URL > file`
            self.downloaded[path] = name
        if name in ("env", "printenv", "set", "export", "declare", "history", "compgen", "security", "pg_dump",
                    "pg_dumpall", "mysqldump", "mariadb-dump", "mongodump"):
            self.secret_files.add(path)

    def loop(self, words: list[shellwords.Word], depth: int) -> None:
        """`for NAME in WORDS`: the body comes next on the line, and sees NAME
        as one of WORDS — known when there is one, otherwise unknown (judged as
        a path known only at run time)."""
        name = words[1].literal() if len(words) > 1 else None
        items, _ = self.words(words[3:], depth) if len(words) > 2 and words[2].literal() == "in" else ([], [])
        if name:
            self.vars.pop(name, None)
            if len(items) == 1:
                self.vars[name] = items[0]

    def words(self, words: list[shellwords.Word], depth: int) -> tuple[list[str], list[tuple[str, str]]]:
        argv: list[str] = []
        substituted: list[tuple[str, str]] = []
        assigning = True  # leading NAME=VALUE words: their value is one word, never split
        for word in words:
            for part in word.parts:  # 'a[$(cmd)]': runs wherever the value reaches arithmetic (bash)
                if part.kind == "text" and part.quoted and "[" in part.value:
                    for found in re.finditer(r"\[[^\]]*?(?:\$\((.+?)\)|`([^`]+)`)", part.value):
                        self.line(found.group(1) or found.group(2), depth + 1)
            values, subs = self.expand(word, depth)
            literal = word.literal()
            first = word.parts[0] if word.parts else None
            assigning &= first is not None and first.kind == "text" and not first.quoted and \
                re.match(r"[A-Za-z_][A-Za-z0-9_]*=", first.value) is not None
            if assigning:
                values = [" ".join(values)]
            elif literal is not None and re.fullmatch(r"\{[^{}\s]*,[^{}\s]*\}", literal):
                values = literal[1:-1].split(",")  # brace expansion: {rm,-rf,~}
            argv += values
            substituted += subs
        return argv, substituted

    def variable(self, name: str) -> str | list[str] | None:
        """A variable's value: a string, the positional list for $@/$*, or None when unknown
        (also for ${NAME<operator>...}: a reader does not evaluate them)."""
        for _ in range(8):  # declare -n: a name for another variable
            if name not in self.namerefs:
                break
            name = self.namerefs[name]
        if name in ("@", "*"):
            return self.positional[1:] if self.positional is not None else None
        if name.isdigit():
            if self.positional is None:
                return None
            index = int(name)
            return self.positional[index] if index < len(self.positional) else ""
        if name == "#" and self.positional is not None:
            return str(len(self.positional) - 1)
        array = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]", name)
        if array:  # "${dirs[@]}" of dirs=(dist build): the words set on the line
            value = self.vars.get(array.group(1))
            if value is not None and value.startswith("(") and value.endswith(")"):
                try:
                    return shlex.split(value[1:-1])
                except ValueError:
                    return None
            return None
        return self.vars.get(name)

    def expand(self, word: shellwords.Word, depth: int) -> tuple[list[str], list[tuple[str, str]]]:
        """A word's value(s): unquoted expansions split into several words, as in a shell."""
        text, split, subs = "", False, []
        many: list[str] | None = None  # "$@": one word per argument
        for part in word.parts:
            if part.kind == "text":
                text += part.value
            elif part.kind == "var":
                if part.value.endswith("@P"):  # prompt expansion runs the substitutions in the value
                    prompt = self.variable(part.value[:-2])
                    for found in re.finditer(r"\$\((.+?)\)|`([^`]+)`", prompt if isinstance(prompt, str) else ""):
                        self.line(found.group(1) or found.group(2), depth + 1)
                value = self.variable(part.value)
                if isinstance(value, list):
                    if part.quoted and len(word.parts) == 1:
                        many = value
                    text += " ".join(value)
                    split |= not part.quoted
                elif value is not None:
                    text += value
                    split |= not part.quoted
                else:
                    text += "${" + _variable_name(part.value) + "}" + UNKNOWN
            else:  # command substitution: judged itself; its output only if statically known
                self.line(part.value, depth + 1)
                subs += self._names(part.value)
                known = self.static_output(part.value)
                text += known.strip() if known is not None else "$(" + part.value + ")" + UNKNOWN
                split |= known is not None and not part.quoted
        if many is not None:
            return list(many), subs
        if split:  # word splitting on $IFS, as the shell does for unquoted expansions
            separators = self.vars.get("IFS", " \t\n") or " "
            return [w for w in re.split("[" + re.escape(separators) + "]+", text) if w], subs
        return [text], subs

    def _names(self, line: str) -> list[tuple[str, str]]:
        """(name, args) of the commands of a line, for `stdin_from` rules."""
        names = []
        for pipeline in shellwords.parse(line):
            for simple in pipeline.commands:
                argv = [w.literal() or "" for w in simple.words]
                while argv and _assignment(argv[0]):
                    argv.pop(0)
                if argv:
                    inner = wrappers.unwrap(argv)
                    first = inner[0].argv if inner and inner[0].argv else tuple(argv)
                    names.append((posixpath.basename(first[0]), " ".join(argv[1:])))
        return names

    # -- what a command really is -------------------------------------------------------------

    def command(self, argv: list[str], depth: int, sources: tuple[tuple[str, str], ...], stdin: Input,
                redirects: tuple[str, ...]) -> str | None:
        """Match argv and whatever it runs; return its output if statically known."""
        real = self.aliases.get(posixpath.normpath(argv[0]))
        if real is not None:  # a copy or hashed name of another program runs that program
            argv = [real, *argv[1:]]
        secret = [a for a in argv[1:] if any(re.search(r"(^|[@=<:/])" + re.escape(f) + "$", a)
                                             for f in self.secret_files)]
        if secret:  # a file the environment was written into is the environment
            sources = (("env", " ".join(secret)), *sources)
        name = posixpath.basename(argv[0])
        if UNKNOWN in argv[0]:
            self.opaque("opaque-command-name", shlex.join(argv))
        # What it writes through operands and options meets the rules about `> FILE` too.
        written = tuple(self._through_link(p) for p in programs.written_paths(argv))
        self.match(Command(name, tuple(argv[1:]), sources, redirects=(*redirects, *written)), argv)
        if argv[0] in self.functions:  # `f() { rm -rf "$1"; }; f ~`: the body, with f's arguments
            self.called.add(argv[0])
            positional = [self.positional[0] if self.positional else "sh", *argv[1:]]
            self.with_positional(positional, self.functions[argv[0]], depth + 1)
            return None
        if name == "xargs":
            # Its input is unknown: a word that is only the input (`rm {}`, `sh -c '{}'`) is marked so;
            # inside a word (`sh -c 'echo "{}"'`) it stays a plain name.
            command = [w + UNKNOWN if w == "{}" else w for w in wrappers.xargs(argv)]
            if sources and sources[0][0] == "find":  # `find … | xargs rm`: as `find … -exec rm {} +`
                try:
                    found = shlex.split(sources[0][1])
                except ValueError:
                    found = sources[0][1].split()
                self.find(["find", *found, "-exec", *[w.replace(UNKNOWN, "") for w in command], "+"], depth + 1,
                          sources[1:])
            elif stdin.known is not None and any("{}" in w for w in command):  # `xargs -I{} sh -c '{}' <<< '…'`
                for item in [i for i in stdin.known.split("\n") if i.strip()][:16]:
                    self.command([w.replace(UNKNOWN, "").replace("{}", item) for w in command], depth + 1, sources,
                                 Input(), redirects)
            else:
                self.command(command, depth + 1, sources, Input(), redirects)
            return None
        if name in ("env", "cross-env"):  # its NAME=VALUE words are the command's environment
            self.assignments({a.partition("=")[0]: a.partition("=")[2] for a in argv[1:] if _assignment(a)}, depth,
                             scoped=True)
            for arg in argv[1:]:  # BASH_FUNC_NAME%%=() { ...; }: a function every bash it starts defines
                exported = re.fullmatch(r"BASH_FUNC_([^=%]+)(?:%%|\(\))=(.*)", arg, re.DOTALL)
                if exported:
                    self.line(exported.group(1) + exported.group(2), depth + 1)
        if name == "git" and self._other_repository(argv):
            self.opaque("opaque-loaded", shlex.join(argv),
                        "git obeys that repository's configuration, which can run commands (core.fsmonitor ...)")
        if name == "git" and argv[1:3] == ["remote", "add"] and len(argv) > 4:
            self.new_remotes[argv[3]] = argv[4]
        if name == "git" and "push" in argv[1:3]:  # to a remote added on this line: as if fed from it
            added = [r for r in argv[argv.index("push") + 1:] if r in self.new_remotes]
            if added:
                self.match(Command(name, tuple(argv[1:]), (("git-remote-add", self.new_remotes[added[0]]),)),
                           argv)
        if name == "hash" and "-p" in argv[:-2]:
            self.aliases[argv[argv.index("-p") + 2]] = argv[argv.index("-p") + 1]
        if wrappers.is_wrapper(name):
            for inner in wrappers.unwrap(argv):
                if inner.line is not None:
                    self.judged_text(inner.line, depth, shlex.join(argv))
                elif inner.argv:
                    self.command(list(inner.argv), depth + 1, sources, stdin, redirects)
            return None
        if name == "parallel":
            for inner in wrappers.parallel(argv):
                self.judged_text(inner.line or "", depth, shlex.join(argv))
            return None
        if name == "eval":
            if argv[1:] and "PATH" not in self.vars and all(_setup_output(a) for a in argv[1:]):
                return None
            self.judged_text(" ".join(argv[1:]), depth, shlex.join(argv))
            return None
        if name in ("alias",):
            for item in argv[1:]:
                self.line(item.partition("=")[2], depth + 1)
            return None
        if name in ("mapfile", "readarray"):  # -C CALLBACK is evaluated for each chunk read
            for value in [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-C"]:
                self.judged_text(value, depth, shlex.join(argv))
        if name == "trap" and len(argv) > 1:
            self.judged_text(argv[1], depth, shlex.join(argv))
            return None
        if name in (".", "source"):
            self.program_file(argv[1] if len(argv) > 1 else "", stdin, depth, argv, positional=None)
            return None
        if name in shells.SHELLS or name in SCHEDULERS:
            self.shell(argv, depth, stdin)
            return None
        if inline_code.is_interpreter(name):
            self.interpreter(name, argv, depth, sources, stdin)
            return None
        if name in inline_code.AWKS:
            self.code(name, argv, inline_code.awk_program(argv), depth, sources)
            return None
        if name == "find":
            self.find(argv, depth, sources)
            return None
        runs = programs.commands_of(argv)
        for text in runs.lines:
            self.judged_text(text, depth, shlex.join(argv))
        for text in runs.fed:
            self.fed_line(text, depth)
        if name in EDITORS_READING_INPUT and stdin.known is not None:  # `echo '!CMD' | ed`
            for text in stdin.known.split("\n"):
                if text.lstrip().startswith("!"):
                    self.line(text.lstrip()[1:], depth + 1)
        if name in ("make", "gmake"):
            self.makefile(argv, depth, stdin)
            for directory in [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-C", "--directory")]:
                self._fetched_then_run(posixpath.join(directory, "Makefile"), argv)  # a clone built
        if name == "tee":
            for target in Command(name, tuple(argv[1:])).operands():
                self.files[posixpath.normpath(target)] = stdin.known or ""
        if name in COMPILERS and "-" in argv[1:] and stdin.known:  # `gcc -x c - <<< '...'`: its program
            self.code(name, argv, stdin.known, depth, sources)
        if name in FILE_RUNNERS:  # a program given as <(...) whose text the line shows
            for given in stdin.substituted:
                known = self.static_output(given)
                if known:
                    self.code(name, argv, known, depth, sources)
        if name in FILE_RUNNERS:  # a program written earlier on this line, now run (`go run /tmp/r.go`)
            for arg in argv[1:]:
                program = self.files.get(posixpath.normpath(arg.partition("=")[2] if arg.startswith("--") else arg))
                if program:
                    self.code(name, argv, program, depth, sources)
        for why in runs.opaque:
            self.opaque("opaque-loaded", shlex.join(argv), why)
        if name in FETCHERS:
            self._note_download(name, argv)
        if name == "git" and "clone" in argv[1:4]:  # its files come from the network
            rest, operands = argv[argv.index("clone") + 1:], []
            while rest:
                if rest[0] in ("--depth", "-b", "--branch", "-o", "--origin", "-c", "--config", "--reference", "-j",
                               "--jobs", "--filter", "--template", "-u", "--upload-pack", "--separate-git-dir"):
                    rest = rest[2:]
                    continue
                if not rest[0].startswith("-"):
                    operands.append(rest[0])
                rest = rest[1:]
            if operands:
                into = operands[1] if len(operands) > 1 else \
                    re.sub(r"\.git$", "", posixpath.basename(operands[0].rstrip("/"))) or "repo"
                self.cloned.add(posixpath.normpath(self._under_directory(into)).lstrip("./") or ".")
        fetched_archive = [self.downloaded[d] for a in argv[1:] for d in self.downloaded
                           if fnmatch.fnmatchcase(d, posixpath.normpath(a))]
        if name in ARCHIVERS and (fetched_archive or any(n in FETCHERS for n, _ in sources)):
            self.extracted = next((n for n, _ in sources if n in FETCHERS), "") or fetched_archive[0]
        if name in ("mv", "cp", "install", "ln") and len(argv) > 2:
            moved, destination = Command(name, tuple(argv[1:])).split_operands()
            for source in moved:  # a fetched file moved or linked: still fetched
                fetcher = self.downloaded.get(posixpath.normpath(source))
                if fetcher and destination:
                    self.downloaded[posixpath.normpath(destination)] = fetcher
                    self.downloaded[posixpath.basename(posixpath.normpath(destination))] = fetcher
        if name in ("cp", "ln", "install") and len(argv) > 2:
            copied, destination = Command(name, tuple(argv[1:])).split_operands()
            if destination and len(copied) == 1 and copied[0].startswith("/"):
                self.aliases[posixpath.normpath(destination)] = copied[0]
            if name == "ln" and destination and len(copied) == 1 and any(
                    re.fullmatch(r"-[a-zA-Z]*s[a-zA-Z]*|--symbolic", a) for a in argv[1:]):
                self.links[posixpath.normpath(self._under_directory(destination)).lstrip("./")] = copied[0]
        if "/" in argv[0]:
            self.script_file(argv[0], depth, positional=argv)
        elif argv[0] in self.downloaded:  # `curl -o ~/.local/bin/tool …; tool`: found on PATH by name
            self._fetched_then_run(argv[0], argv)
        return decoding.static_output(argv, stdin.known)

    def _other_repository(self, argv: list[str]) -> bool:
        """git pointed at a repository in a scratch directory or one known only at run time (-C,
        --git-dir, GIT_DIR, a cd): its configuration runs commands (core.fsmonitor) for any git command."""
        if "clone" in argv[1:4] or "init" in argv[1:4]:
            return False
        places = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-C", "--git-dir", "--work-tree")]
        places += [a.partition("=")[2] for a in argv if a.startswith(("--git-dir=", "--work-tree="))]
        places += [v for k, v in self.vars.items() if k in ("GIT_DIR", "GIT_WORK_TREE")]
        if self.directory is not None:
            places.append(self.directory)
        for place in places:
            where = self._relative(place) if self.cwd else place
            where = posixpath.normpath(where)
            if any(where == d.lstrip("./") or where.startswith(d.lstrip("./") + "/") for d in self.cloned):
                continue  # a repository cloned on this line: fetched, its configuration is git's own
            # A repository in a shared scratch place (where anyone may plant one), or named only at run
            # time; the user's own checkouts elsewhere are their own (an agent's `git -C ../lib log`).
            if where.startswith(("/tmp/", "/var/tmp/", "/dev/shm/")) or where in ("/tmp", "/var/tmp") or \
                    UNKNOWN in where or "$" in where:
                return True
        return False

    def makefile(self, argv: list[str], depth: int, stdin: Input) -> None:
        """make -f FILE (or -f - with a makefile on input): its recipes are command lines."""
        files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-f", "--file", "--makefile")]
        files += [a.partition("=")[2] for a in argv if a.startswith(("--file=", "--makefile="))]
        for path in files:
            text = stdin.known if path == "-" else self.files.get(posixpath.normpath(path))
            if text is None and path == "-" and stdin.fed:
                self.opaque("opaque-input", shlex.join(argv), "make reads its makefile from input")
            for recipe in (text or "").split("\n"):
                if recipe.startswith("\t"):  # make turns $$ into $ before the shell reads the recipe
                    self.line(recipe.strip().lstrip("@-+").replace("$$", "$"), depth + 1)

    def judged_text(self, text: str, depth: int, context: str) -> None:
        """A command line found inside another command: judged, and opaque when
        part of it is known only at run time (it is parsed again when it runs)."""
        if UNKNOWN in text:
            self.opaque("opaque-eval", context)
        self.line(text.replace(UNKNOWN, ""), depth + 1)

    def _note_download(self, name: str, argv: list[str]) -> None:
        """Where a fetcher saves what it fetches (-o FILE, -O, --output=FILE, wget's URL name, -P DIR)."""
        urls = [a for a in argv[1:] if re.match(r"(?i)^(https?|ftp)://", a)]
        remote = (posixpath.basename(re.sub(r"[?#].*$", "", urls[0])) or "index.html") if urls else ""
        saved: list[str] = []
        directory = ""
        args = argv[1:]
        for index, arg in enumerate(args):
            following = args[index + 1] if index + 1 < len(args) else ""
            if arg.startswith(("--output=", "--output-document=")):
                saved.append(arg.partition("=")[2])
            elif arg in ("--output", "--output-document", "--out"):
                saved.append(following)
            elif arg.startswith("--directory-prefix="):
                directory = arg.partition("=")[2]
            elif arg in ("-P", "--directory-prefix", "-d", "--dir"):
                directory = following
            elif re.fullmatch(r"-[a-zA-Z]*o", arg) and name != "wget" or re.fullmatch(r"-[a-zA-Z]*O", arg) and name == "wget":  # curl -o, -fsSLo
                saved.append(following)
            elif re.fullmatch(r"-[a-zA-Z]*O[a-zA-Z]*", arg) and name == "curl" or arg == "--remote-name":
                saved.append(remote)
            elif re.fullmatch(r"-[a-zA-Z]*o.+", arg) and name != "wget":
                saved.append(arg[arg.index("o") + 1:])
        if name in ("wget", "aria2c", "axel", "lwp-download") and not saved:
            saved.append(remote)
        for path in saved:
            if path and path != "-":
                full = posixpath.normpath(posixpath.join(directory, path) if directory else path)
                self.downloaded[full] = name
                self.downloaded[posixpath.basename(full)] = name

    def program_file(self, path: str, stdin: Input, depth: int, argv: list[str], positional: list[str] | None) -> None:
        """A file a shell reads as its program (`source F`, `sh F`): stdin, a process
        substitution, a file written or fetched earlier, or a file in the working directory."""
        if path in STDIN_PATHS or not path:
            self.program_input(stdin, depth, argv, positional)
            return
        if path.startswith(("/dev/fd/", "/proc/self/fd/")):
            self.program_input(Input(None, fed=True), depth, argv, positional)
            return
        if UNKNOWN in path:
            self.opaque("opaque-eval", shlex.join(argv), "the file's name is known only when it runs")
            return
        self.script_file(path, depth, positional)

    def program_input(self, stdin: Input, depth: int, argv: list[str], positional: list[str] | None) -> None:
        """A shell running what it reads: judged when the line shows it, opaque otherwise."""
        for inner in stdin.substituted:  # `bash <(cmd)`, `source <(cmd)`
            known = self.static_output(inner)
            if known is None:
                self.opaque("opaque-input", shlex.join(argv), f"the program is the output of `{inner[:80]}`")
            else:
                self.with_positional(positional, known, depth + 1)
        if stdin.substituted:
            return
        if stdin.decoded and stdin.fed:
            self.opaque("opaque-decoded", shlex.join(argv))
        if stdin.known is not None:
            self.with_positional(positional, stdin.known, depth + 1)
        elif stdin.fed:
            self.opaque("opaque-input", shlex.join(argv))

    def shell(self, argv: list[str], depth: int, stdin: Input) -> None:
        name = posixpath.basename(argv[0])
        if name in SCHEDULERS:  # at, batch: commands from input or -f FILE
            files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-f"]
            if files:
                self.program_file(files[0], Input(), depth, argv, None)
            else:
                self.program_input(stdin, depth, argv, None)
            return
        call = shells.read(argv)
        if call.runs_nothing:
            return
        for path in call.startup:
            if path not in self.files and (self.cwd is None or _read_script(os.path.join(self.cwd, path)) is None):
                self.opaque("opaque-loaded", shlex.join(argv), f"the start-up file {path} cannot be read")
            self.program_file(path, Input(), depth, argv, None)
        for text in call.startup_lines:
            self.judged_text(text, depth, shlex.join(argv))
        if call.script is not None:
            if UNKNOWN in call.script:
                self.opaque("opaque-eval", shlex.join(argv))
            self.with_positional(call.positional, call.script.replace(UNKNOWN, ""), depth + 1)
        elif call.file is not None:
            self.program_file(call.file, stdin, depth, argv, call.positional)
        elif call.reads_input and (stdin.fed or stdin.substituted):
            self.program_input(stdin, depth, argv, call.positional)

    def interpreter(self, name: str, argv: list[str], depth: int, sources: tuple[tuple[str, str], ...],
                    stdin: Input) -> None:
        if "-m" in argv[1:-1]:  # python -m pip ...: judged as the module's own command
            at = argv.index("-m")
            self.match(Command(argv[at + 1], tuple(argv[at + 2:]), sources), argv[at + 1:])
            if argv[at + 1] == "http.server" and self.directory and not {"-d", "--directory"} & set(argv):
                served = [*argv, "--directory", self.directory]  # serves where the line went with cd
                self.match(Command(name, tuple(served[1:]), sources), served)
        if name in ("pwsh", "powershell") and any(re.fullmatch(r"(?i)-e(nc(odedcommand)?|c)?", a) for a in argv[1:]):
            self.opaque("opaque-decoded", shlex.join(argv), "an encoded PowerShell command")
        code, from_input = inline_code.program(name, argv)
        if code is None and from_input:
            if stdin.substituted or (stdin.fed and stdin.known is None):
                self.opaque("opaque-input", shlex.join(argv))
            if stdin.decoded and stdin.fed:
                self.opaque("opaque-decoded", shlex.join(argv))
            code = stdin.known
        elif code is None:  # a script file: fetched earlier on this line?
            operand = next((a for a in argv[1:] if not a.startswith("-")), "")
            if operand in STDIN_PATHS or operand.startswith(("/dev/fd/", "/proc/self/fd/")):
                if stdin.known is None and (stdin.fed or stdin.substituted):
                    self.opaque("opaque-input", shlex.join(argv))
                code = stdin.known
            elif operand:
                self._fetched_then_run(operand, argv)
                text = self.files.get(posixpath.normpath(operand))
                if text is None and self.cwd is not None and UNKNOWN not in operand:
                    text = _read_script(self._host_path(operand))
                if text:  # a program file: judged by its rules and the commands it names (not as opaque)
                    self.code(name, argv, text, depth, sources, opaque=False)
        if code:
            if UNKNOWN in code:
                self.opaque("opaque-code", shlex.join(argv), "the program is known only when it runs")
            self.code(name, argv, code.replace(UNKNOWN, ""), depth, sources)
        else:
            self.match(Command(name, tuple(argv[1:]), sources), argv)

    def code(self, name: str, argv: list[str], code: str, depth: int, sources: tuple[tuple[str, str], ...],
             opaque: bool = True) -> None:
        """A program: matched by `code` rules, and the shell strings it runs judged as lines. An
        inline one that builds what it runs is opaque (a whole program file usually does)."""
        self.match(Command(name, tuple(argv[1:]), sources, code=code), argv)
        for text in inline_code.shell_lines(code, name):
            self.line(text, depth + 1)
        for text in inline_code.fed_lines(code):
            self.fed_line(text, depth)
        why = inline_code.built_at_run_time(code) if opaque else None
        if why:
            self.opaque("opaque-code", shlex.join(argv), why)

    def find(self, argv: list[str], depth: int, sources: tuple[tuple[str, str], ...]) -> None:
        """find -exec CMD ... ; runs CMD on what it finds: judged, and marked as deleting for rm."""
        deleting = "-delete" in argv
        # What {} stands for: START/**/PATTERN when a name pattern is given (`-name '*.pem'`), so
        # rules about the files themselves (keys, credentials) see them; else unknown paths.
        start = next((a for a in argv[1:] if not a.startswith(("-", "(", "!"))), ".")
        pattern = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-name", "-iname")), None)
        found = f"{start.rstrip('/')}/**/{pattern}" if pattern else ("{}" if start in (".", "./") else
                                                                      f"{start.rstrip('/')}/**")
        index = 1
        while index < len(argv):
            if argv[index] in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((i for i in range(index + 1, len(argv)) if argv[i] in (";", "+", "\\;")), len(argv))
                inner = [word.replace("{}", found) for word in argv[index + 1:end]]
                if inner:
                    self.command(inner, depth + 1, (), Input(), ())
                    unwrapped = wrappers.unwrap(inner)
                    first = unwrapped[0].argv if unwrapped and unwrapped[0].argv else ("",)
                    deleting |= posixpath.basename(first[0]) in ("rm", "unlink", "shred", "rmdir")
                index = end
            index += 1
        args = tuple(argv[1:]) + (("-delete",) if deleting and "-delete" not in argv else ())
        self.match(Command("find", args, sources), ["find", *args])

    def _fetched_then_run(self, path: str, argv: list[str]) -> None:
        normal = posixpath.normpath(path)
        fetcher: str | None = self.downloaded.get(normal)
        if fetcher is None and "/" not in normal.lstrip("./"):
            fetcher = self.downloaded.get(posixpath.basename(normal))
        if fetcher is None and self.extracted and not normal.startswith(("/usr/", "/bin/", "/sbin/")):
            fetcher = self.extracted  # a file out of an archive fetched on this line
        where = posixpath.normpath(self._under_directory(path)).lstrip("./")
        if fetcher is None and any(where.startswith(d.lstrip("./") + "/") for d in self.cloned):
            fetcher = "git-clone"
        if fetcher is not None:  # fetched earlier on this line, now run: as if piped into a shell
            self.match(Command("sh", (path,), ((fetcher, path),)), ["sh", path])

    def script_file(self, path: str, depth: int, positional: list[str] | None) -> None:
        if not path:
            return
        self._fetched_then_run(path, [path])
        text = self.files.get(posixpath.normpath(path))
        if text is None and self.cwd is not None and UNKNOWN not in path and "$" not in path:
            text = _read_script(self._host_path(path))
        if text is not None:
            self.with_positional(positional, text, depth + 1)

    def static_output(self, line: str) -> str | None:
        """The output of `echo TEXT | base64 -d ...`, when it needs no running to know."""
        pipelines = shellwords.parse(line)
        if len(pipelines) != 1:
            return None
        known: str | None = None
        for simple in pipelines[0].commands:
            argv = [w.literal() for w in simple.words]
            if not argv or any(a is None for a in argv):
                return None
            known = decoding.static_output([a for a in argv if a is not None], known)
            if known is None:
                return None
        return known


# Words that open or close a compound command: what follows them on the
# same simple command is a command in its own right (`then rm -rf ~`).
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
                      "in", "time", "coproc", "[[", "]]"})


def _without_keywords(words: list[shellwords.Word]) -> list[shellwords.Word]:
    """The command inside compound syntax: `if`/`then`/`do`/`{` ... dropped."""
    words = list(words)
    while words and words[0].literal() in KEYWORDS:
        words.pop(0)
    return words


# Programs whose output is shell code that sets up the environment, run through
# `eval "$(TOOL ...)"` in every setup guide: their output is what they are for.
ENVIRONMENT_SETUP = frozenset({"ssh-agent", "gpg-agent", "keychain", "pyenv", "rbenv", "nodenv", "goenv", "jenv",
                               "conda", "mamba", "micromamba", "brew", "fnm", "nvm", "zoxide", "starship", "direnv",
                               "minikube", "opam", "mise", "rtx", "dircolors", "luarocks", "docker-machine",
                               "aws-vault", "thefuck", "atuin", "pipenv", "poetry", "register-python-argcomplete"})


def _setup_output(arg: str) -> bool:
    # One simple command of a tool found on the PATH (or its standard places): nothing else may run in it.
    found = re.fullmatch(r"\$\(\s*(\S+)[^()`$;&|<>\n]*\)" + UNKNOWN, arg)
    if found is None:
        return False
    program = found.group(1)
    trusted_place = "/" not in program or program.startswith(("/usr/bin/", "/usr/local/bin/", "/opt/homebrew/bin/",
                                                               "/home/linuxbrew/.linuxbrew/bin/"))
    return trusted_place and posixpath.basename(program) in ENVIRONMENT_SETUP


def _variable_name(expression: str) -> str:
    """The variable an expansion is about (`a` of `${a#x}`), to show it as ${a}."""
    found = re.match(r"[!#]?([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]?)", expression)
    return found.group(1) if found else ""


def _globbed(word: shellwords.Word) -> bool:
    """An unquoted glob character in a word (`/bin/r?`)."""
    return any(p.kind == "text" and not p.quoted and re.search(r"[*?]|\[[^]]+\]", p.value) for p in word.parts)


def _escaping(argv: list[str]) -> bool:
    """echo -e / printf with escapes: what they print is not what the line shows."""
    name = posixpath.basename(argv[0])
    if name == "printf":
        return any("\\" in a for a in argv[1:2])
    return name == "echo" and any(re.fullmatch(r"-[neE]*e[neE]*", a) for a in argv[1:]) and \
        any("\\" in a for a in argv[1:])


def _assignment(word: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=.*", word, re.DOTALL) is not None


def _read_script(path: str) -> str | None:
    try:
        file = Path(path)
        if not file.is_file() or file.stat().st_size > MAX_SCRIPT_BYTES:
            return None
        return file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
