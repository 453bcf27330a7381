"""Judging a command before it runs: findings by class, each with what matched and why.

The judge reads the command as a shell would (see shellwords), then looks
through what hides the real command: wrappers (`env`, `nice`, `timeout`,
`xargs`, `sudo` ...), shells given a script (`sh -c`, `bash FILE`, `eval`,
a pipe into `sh`), statically decodable text (`echo ... | base64 -d | sh`),
variables set earlier on the same line, and inline programs (`python -c`,
`perl -e`, `awk 'BEGIN{system(...)}'`), whose shell strings are judged in
turn. Every command it finds is matched against the rules (data, from the
profile). Nothing is executed; a script file is read (small files only).
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from vectraguard.risk import shellwords
from vectraguard.risk.rules import Command, Rule

MAX_DEPTH = 8  # nested scripts (sh -c "sh -c ...")
MAX_SCRIPT_BYTES = 256 * 1024
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish"})
INTERPRETERS = {  # name -> the options that take inline code
    "python": ("-c",), "python2": ("-c",), "python3": ("-c",), "perl": ("-e", "-E"), "ruby": ("-e",),
    "node": ("-e", "--eval", "-p", "--print"), "nodejs": ("-e", "--eval", "-p"), "php": ("-r",),
    "lua": ("-e",), "deno": ("eval",), "bun": ("-e", "--eval"),
}
AWKS = frozenset({"awk", "gawk", "mawk", "nawk", "busybox-awk"})
# Options of wrapper commands that take a value: the wrapped command starts after them.
WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "ionice": frozenset({"-c", "-n", "-p", "--class", "--classdata"}),
    "chrt": frozenset(),
    "taskset": frozenset(),
    "setsid": frozenset(),
    "unbuffer": frozenset(),
    "busybox": frozenset(),
    "sudo": frozenset({"-u", "--user", "-g", "--group", "-C", "-h", "--host", "-p", "--prompt", "-r", "-t", "-D",
                       "--chdir", "-U", "--other-user"}),
    "doas": frozenset({"-u", "-C"}),
    "pkexec": frozenset({"--user"}),
    "su": frozenset(),
    "watch": frozenset({"-n", "--interval", "-d"}),
    "xargs": frozenset({"-n", "--max-args", "-I", "-i", "-L", "-l", "--max-lines", "-P", "--max-procs", "-d",
                        "--delimiter", "-E", "-e", "-s", "--max-chars", "-a", "--arg-file"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "flock": frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}),
}
# What a statically known text can be piped through and stay known.
DECODERS = frozenset({"base64", "xxd", "rev", "cat", "tr", "openssl"})
# Patterns for inline programs, as text: compiled on first use (most runs have no
# inline program, and compiling them costs more than judging a plain command).
_CODE_SHELL_STRINGS = (
    r"""(?:system|popen|exec[lv]?p?e?|spawn|spawnSync|execSync|check_output|check_call|call|run|Popen|getoutput|"""
    r"""getstatusoutput|`)\s*\(?\s*(?:\[\s*)?(?P<q>['"])(?P<s>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
_CODE_LISTS = (r"""(?:run|call|Popen|check_call|check_output|spawn|spawnSync|execFileSync)\s*\(\s*\[([^\]]*)\]""")
_BACKTICKS = r"`([^`]+)`"


@dataclass(frozen=True)
class Finding:
    """One risk found in a command: the rule, its class, what matched and why."""

    rule: str
    cls: str
    matched: str  # the command (as the judge saw it) that matched
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "class": self.cls, "matched": self.matched, "reason": self.reason}


def classify(command: str | list[str] | tuple[str, ...], rules: tuple[Rule, ...], cwd: str | None = None) -> list[Finding]:
    """Findings for a command line (a string) or an argv (as `vectraguard run` gets it)."""
    judge = _Judge(rules, cwd)
    if isinstance(command, str):
        judge.line(command, 0)
    else:
        judge.line(shlex.join(command), 0)
    return judge.findings


class _Judge:
    def __init__(self, rules: tuple[Rule, ...], cwd: str | None) -> None:
        self.rules = rules
        self.cwd = cwd
        # $SHELL is a shell wherever this runs; the rest is unknown until the line sets it.
        self.vars: dict[str, str] = {"IFS": " \t\n", "SHELL": "sh"}
        self.positional: list[str] = []  # `set -- ...`, for "$@"
        self.files: dict[str, str] = {}  # scripts written earlier on this line
        self.downloaded: dict[str, str] = {}  # files fetched earlier on this line -> the fetcher
        self.functions: set[str] = set()  # defined earlier on this line: may run their arguments ("$@")
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()

    # -- lines and pipelines ------------------------------------------------------------------

    def line(self, text: str, depth: int) -> None:
        if depth > MAX_DEPTH or not text.strip():
            return
        for rule in self.rules:
            if rule.matches_line(text) and (rule.id, text) not in self._seen:
                self._seen.add((rule.id, text))
                self.findings.append(Finding(rule.id, rule.cls, text.strip()[:200], rule.reason))
        for pipeline in shellwords.parse(text):
            self.pipeline(pipeline, depth)

    def pipeline(self, pipeline: shellwords.Pipeline, depth: int) -> None:
        sources: tuple[tuple[str, str], ...] = ()
        known: str | None = None  # the previous stage's output, when it is statically known
        for simple in pipeline.commands:
            sources, known = self.simple(simple, depth, sources, known)

    # -- one simple command -------------------------------------------------------------------

    def simple(self, simple: shellwords.Simple, depth: int, sources: tuple[tuple[str, str], ...],
               stdin: str | None) -> tuple[tuple[tuple[str, str], ...], str | None]:
        if simple.subshell:
            self.line(simple.subshell, depth + 1)
            return (("(subshell)", simple.subshell),), None
        extra_sources: list[tuple[str, str]] = []
        redirects: list[str] = []
        for redirect in simple.redirects:
            if redirect.target is None:  # <(...) or >(...)
                self.line(redirect.inner, depth + 1)
                if redirect.op == "<(":
                    extra_sources += self._names(redirect.inner)
            elif redirect.op in (">", ">>", ">|", "&>", "<>", ">&"):
                redirects.append(self.expand(redirect.target, depth)[0][0] if redirect.target.parts else "")
            elif redirect.op == "<<<" and redirect.target is not None:  # here-string: known input
                stdin = " ".join(self.expand(redirect.target, depth)[0]) + "\n"
            elif redirect.op == "<" and redirect.target is not None:  # input from a file: as if cat'ed in
                extra_sources.append(("cat", " ".join(self.expand(redirect.target, depth)[0])))
        words, defined = _without_keywords(simple.words)
        if defined:
            self.functions.add(defined)
        if words and words[0].literal() in ("for", "select"):
            self.loop(words, depth)
            return (), None
        argv, substituted = self.words(words, depth)
        while argv and _assignment(argv[0]):
            name, _, value = argv.pop(0).partition("=")
            self.vars[name] = value
        if not argv:
            if redirects:  # `> /dev/sda`: a redirection alone still writes
                self.match(Command(":", (), redirects=tuple(redirects)), [":", *(f">{r}" for r in redirects)])
            return (), None
        if argv[0] == "set" and "--" in argv:
            self.positional = argv[argv.index("--") + 1:]
        if argv[0] == "read":  # its variables now hold input: unknown
            for name in argv[1:]:
                self.vars.pop(name, None)
        all_sources = (*sources, *extra_sources, *substituted)
        output = self.command(argv, depth, all_sources, stdin, tuple(redirects))
        if output is not None and redirects:
            for target in redirects:
                self.files[posixpath.normpath(target)] = output
        name = posixpath.basename(argv[0])
        return ((name, " ".join(argv[1:])),), output

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

    def expand(self, word: shellwords.Word, depth: int) -> tuple[list[str], list[tuple[str, str]]]:
        """A word's value(s): unquoted expansions split into several words, as in a shell."""
        text, split, subs = "", False, []
        for part in word.parts:
            if part.kind == "text":
                text += part.value
            elif part.kind == "var" and part.value in ("@", "*") and self.positional:
                text += " ".join(self.positional)
                split = True
            elif part.kind == "var":
                value = self.vars.get(part.value)
                text += value if value is not None else "${" + part.value + "}"
                split |= value is not None and not part.quoted
            else:  # command substitution: judged itself; its output only if statically known
                self.line(part.value, depth + 1)
                subs += self._names(part.value)
                known = self.static_output(part.value)
                text += known.strip() if known is not None else "$(" + part.value + ")"
                split |= known is not None and not part.quoted
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
                    inner = _unwrap(argv)
                    names.append((posixpath.basename(inner[0]) if inner else "", " ".join(argv[1:])))
        return names

    # -- what a command really is -------------------------------------------------------------

    def command(self, argv: list[str], depth: int, sources: tuple[tuple[str, str], ...], stdin: str | None,
                redirects: tuple[str, ...]) -> str | None:
        """Match argv and whatever it wraps; return its output if statically known."""
        name = posixpath.basename(argv[0])
        self.match(Command(name, tuple(argv[1:]), sources, redirects=redirects), argv)
        if name in WRAPPERS or name in ("sudo", "doas"):
            inner = _unwrap(argv)
            if name == "xargs" and inner:
                inner = [*inner, "{}"]  # its arguments come from its input: unknown
            if name == "env" and ("-S" in argv or "--split-string" in argv):
                split = argv[argv.index("-S" if "-S" in argv else "--split-string") + 1:]
                inner = " ".join(split).split()
            if name == "su" and "-c" in argv:
                self.line(argv[argv.index("-c") + 1] if argv.index("-c") + 1 < len(argv) else "", depth + 1)
                return None
            if name == "watch" and inner:
                self.line(" ".join(inner), depth + 1)
                return None
            if inner and inner != argv:
                return self.command(inner, depth, sources, stdin, redirects)
            return None
        if name in ("eval",):
            self.line(" ".join(argv[1:]), depth + 1)
            return None
        if argv[0] in self.functions and len(argv) > 1:  # `run() { "$@"; }; run rm -rf /`
            self.command(argv[1:], depth + 1, sources, stdin, redirects)
            return None
        if name in (".", "source"):
            self.script_file(argv[1:2], depth)
            return None
        if name in SHELLS:
            self.shell(argv, depth, stdin)
            return None
        if name in INTERPRETERS or re.fullmatch(r"python3(\.\d+)?", name):
            self.interpreter(name, argv, depth, sources, stdin)
            return None
        if name in AWKS:
            program = next((a for a in argv[1:] if not a.startswith("-")), "")
            self.code(name, argv, program, depth, sources)
            return None
        if name == "find":
            self.find(argv, depth, sources)
            return None
        if name in ("curl", "wget"):
            self._note_download(argv)
        if argv[0].startswith(("./", "/")) or "/" in argv[0]:
            self.script_file([argv[0]], depth)
        return _static(argv, stdin)

    def _note_download(self, argv: list[str]) -> None:
        for flag in ("-o", "-O", "--output", "--output-document"):
            if flag in argv[:-1]:
                self.downloaded[posixpath.normpath(argv[argv.index(flag) + 1])] = posixpath.basename(argv[0])

    def match(self, command: Command, argv: list[str]) -> None:
        shown = shlex.join(argv)[:200]
        # A rule about what feeds the command shows the feeder too (`curl … | sh`, not just `sh`).
        fed = " | ".join(f"{name} {args}".strip() for name, args in command.sources)[:200]
        for rule in self.rules:
            if (rule.id, shown) not in self._seen and rule.matches(command):
                self._seen.add((rule.id, shown))
                matched = f"{fed} | {shown}" if fed and (rule.stdin_from or rule.stdin_args) else shown
                self.findings.append(Finding(rule.id, rule.cls, matched, rule.reason))

    def shell(self, argv: list[str], depth: int, stdin: str | None) -> None:
        args = argv[1:]
        for index, arg in enumerate(args):
            if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
                self.line(args[index + 1] if index + 1 < len(args) else "", depth + 1)
                return
            if arg in ("-s", "-"):
                break
            if not arg.startswith("-") and not arg.startswith("+"):
                self.script_file([arg], depth)
                return
        if stdin is not None:  # echo '...' | sh
            self.line(stdin, depth + 1)

    def interpreter(self, name: str, argv: list[str], depth: int, sources: tuple[tuple[str, str], ...],
                    stdin: str | None) -> None:
        options = INTERPRETERS.get(name, ("-c",))
        code = ""
        for index, arg in enumerate(argv[1:], start=1):
            if arg in options or any(arg.startswith(o) and len(arg) > len(o) and o.startswith("-") and
                                     not o.startswith("--") and arg[1] == o[1] for o in options):
                code = argv[index + 1] if arg in options and index + 1 < len(argv) else arg[2:]
                break
            if name == "perl" and re.fullmatch(r"-[a-zA-Z]*[eE]", arg):  # perl -ne, -le ...
                code = argv[index + 1] if index + 1 < len(argv) else ""
                break
        if not code and stdin is not None:
            code = stdin  # echo '...' | python3
        self.code(name, argv, code, depth, sources)

    def code(self, name: str, argv: list[str], code: str, depth: int, sources: tuple[tuple[str, str], ...]) -> None:
        """An inline program: matched by `code` rules, and the shell strings it runs judged as lines."""
        self.match(Command(name, tuple(argv[1:]), sources, code=code), argv)
        for found in re.finditer(_CODE_SHELL_STRINGS, code):
            self.line(_unescape(found.group("s")), depth + 1)
        for found in re.finditer(_CODE_LISTS, code):
            items = re.findall(r"""['"]((?:\\.|[^'"\\])*)['"]""", found.group(1))
            if items:
                self.line(shlex.join(items), depth + 1)
        for found in re.finditer(_BACKTICKS, code):
            self.line(found.group(1), depth + 1)

    def find(self, argv: list[str], depth: int, sources: tuple[tuple[str, str], ...]) -> None:
        """find -exec CMD ... ; runs CMD on what it finds: judged, and marked as deleting for rm."""
        deleting = "-delete" in argv
        index = 1
        while index < len(argv):
            if argv[index] in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((i for i in range(index + 1, len(argv)) if argv[i] in (";", "+", "\\;")), len(argv))
                inner = argv[index + 1:end]
                if inner:
                    self.command(inner, depth + 1, (), None, ())
                    deleting |= posixpath.basename(_unwrap(inner)[0] if _unwrap(inner) else "") in (
                        "rm", "unlink", "shred", "rmdir")
                index = end
            index += 1
        args = tuple(argv[1:]) + (("-delete",) if deleting and "-delete" not in argv else ())
        self.match(Command("find", args, sources), ["find", *args])

    def script_file(self, names: list[str], depth: int) -> None:
        if not names or not names[0]:
            return
        path = names[0]
        fetcher = self.downloaded.get(posixpath.normpath(path))
        if fetcher is not None:  # fetched earlier on this line, now run: as if piped into a shell
            self.match(Command("sh", (path,), ((fetcher, path),)), ["sh", path])
        text = self.files.get(posixpath.normpath(path))
        if text is None and self.cwd is not None and "$" not in path:
            text = _read_script(os.path.join(self.cwd, path))
        if text is not None:
            self.line(text, depth + 1)

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
            known = _static([a for a in argv if a is not None], known)
            if known is None:
                return None
        return known


# Words that open or close a compound command: what follows them on the
# same simple command is a command in its own right (`then rm -rf ~`).
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
                      "in"})


def _without_keywords(words: list[shellwords.Word]) -> tuple[list[shellwords.Word], str | None]:
    """The command inside compound syntax: `if`/`then`/`do`/`{` ... dropped, and a
    function definition's header (`f() {`, `function f {`; the reader drops the
    parentheses), so its body is judged where it is defined. Also returns the
    name of a function defined here."""
    words, defined = list(words), None
    while words:
        first = words[0].literal()
        if first in KEYWORDS:
            words.pop(0)
        elif first == "function" and len(words) > 1:
            defined, words = words[1].literal(), words[2:]
        elif len(words) > 1 and words[1].literal() == "{" and re.fullmatch(r"[\w.:-]+", first or ""):
            defined, words = first, words[2:]
        else:
            break
    return words, defined


def _assignment(word: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word, re.DOTALL) is not None


def _unwrap(argv: list[str]) -> list[str]:
    """The command a wrapper runs: argv without the wrapper, its options and assignments."""
    name = posixpath.basename(argv[0])
    takes_value = WRAPPERS.get(name)
    if takes_value is None:
        return argv
    rest = argv[1:]
    while rest:
        arg = rest[0]
        if arg == "--":
            rest = rest[1:]
            break
        if arg in takes_value:
            rest = rest[2:]
        elif arg.startswith("-") and len(arg) > 1:
            rest = rest[1:]
        elif name == "env" and _assignment(arg):
            rest = rest[1:]
        elif name == "timeout" and re.fullmatch(r"[\d.]+[smhd]?", arg):
            rest = rest[1:]
            break
        elif name in ("nice", "chrt", "taskset") and re.fullmatch(r"[-\d.x]+|0x[0-9a-f]+", arg):
            rest = rest[1:]
        else:
            break
    if name in ("chrt", "taskset") and rest and re.fullmatch(r"[\d,x-]+", rest[0]):
        rest = rest[1:]
    return rest


def _static(argv: list[str], stdin: str | None) -> str | None:
    """What a decoding or printing command prints, if that needs no running to know."""
    name = posixpath.basename(argv[0])
    args = argv[1:]
    if name == "echo":
        words = [a for a in args if a not in ("-n", "-e", "-E")]
        return " ".join(words) + "\n"
    if name == "printf" and args:
        try:
            return args[0].encode().decode("unicode_escape").replace("%s", " ".join(args[1:]), 1)
        except UnicodeDecodeError:
            return args[0]
    if stdin is None or name not in DECODERS:
        return None
    if name == "base64" and any(a in ("-d", "--decode", "-D") for a in args):
        try:
            return base64.b64decode("".join(stdin.split()) + "==", validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return None
    if name == "xxd" and "-r" in args:
        try:
            return bytes.fromhex("".join(stdin.split())).decode("utf-8", "replace")
        except ValueError:
            return None
    if name == "openssl" and args[:1] == ["base64"] and "-d" in args:
        return _static(["base64", "-d"], stdin)
    if name == "tr" and len(args) == 2 and not any(a.startswith("-") for a in args):
        source, target = _tr_set(args[0]), _tr_set(args[1])
        if source and target:
            target = target + target[-1] * (len(source) - len(target))
            return stdin.translate(str.maketrans(source, target[:len(source)]))
        return None
    if name == "rev":
        return "\n".join(line[::-1] for line in stdin.split("\n"))
    if name == "cat" and not args:
        return stdin
    return None


def _tr_set(spec: str) -> str:
    """tr's a-z ranges, spelled out."""
    out, i = "", 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out += "".join(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out += spec[i]
            i += 1
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _read_script(path: str) -> str | None:
    try:
        file = Path(path)
        if not file.is_file() or file.stat().st_size > MAX_SCRIPT_BYTES:
            return None
        return file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
