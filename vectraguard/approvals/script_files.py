"""Which files a command runs: what a remembered approval is bound to besides the command.

A yes to `./deploy.sh` is a yes to the deploy.sh that was there. This
module finds the files a command runs as programs or scripts, in an argv or
anywhere in a command line: a program named by a path (`./deploy.sh`), a
shell's script file (`sh f`, `bash -x f`, `bash --rcfile f`, `sh < f`,
`cat f | sh`), an interpreter's (`python3 f.py`, `node x.js`, `perl x.pl`,
`ruby`, `php -f`, `lua`, `awk -f`), a sourced file (`. ./env.sh`,
`source f`), make's makefile (`-f FILE`, else the first of GNUmakefile,
makefile, Makefile, in the `-C` directory), also through wrappers
(`timeout 60 ./x.sh`, risk/wrappers.py), `sh -c` lines and command
substitutions. Paths are resolved against the working directory the
command will have there (`cd sub && ./run.sh` runs sub/run.sh).

A file named in a way that cannot be read without running anything
(`sh "$F"`, `./$X.sh`, `./*.sh`, `~/x.sh`, a relative script after
`cd "$D"`, a program that is an expansion, an interpreter fed by a pipe or
by inherited input) comes back without a path: a command that runs such a
file cannot be bound, so it is never remembered. Only the first level is
read: what deploy.sh itself runs is part of its content, not bound apart.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from vectraguard.approvals import observed
from vectraguard.risk import shells, wrappers
from vectraguard.risk.shellwords import Simple, Word, parse

UNKNOWN = "\0"  # starts a word whose value comes from an expansion (no argv word can hold a NUL)
MAX_DEPTH = 8  # lines inside lines (`sh -c "sh -c '...'"`)
RESERVED = frozenset({"!", "if", "then", "else", "elif", "do", "while", "until", "{"})
MAKEFILES = ("GNUmakefile", "makefile", "Makefile")  # GNU make reads the first that exists
# Wrappers whose options move the wrapped command to another directory or root.
MOVES = {"env": ("-C", "--chdir"), "sudo": ("-D", "--chdir", "-R", "--chroot"),
         "systemd-run": ("-D", "--chdir", "--working-directory"), "run0": ("-D", "--chdir"),
         "unshare": ("-w", "--wd", "-R", "--root"), "nsenter": ("-w", "--wd", "-r", "--root")}


@dataclass(frozen=True)
class Interpreter:
    """How an interpreter is told its program; option names as given, `-c` or `--eval`."""

    inline: frozenset[str] = frozenset()  # the value is the program itself: no script operand
    values: frozenset[str] = frozenset()  # take a value (attached, or the next word)
    attached: frozenset[str] = frozenset()  # take only an attached value (`perl -i.bak`)
    files: frozenset[str] = frozenset()  # the value is a file that runs
    modules: frozenset[str] = frozenset()  # the value runs as a file when it is a path (`node -r ./x.js`)
    code_first: bool = False  # awk: the first operand is the program text (unless -f or -e gave it)


def _i(inline: str = "", values: str = "", attached: str = "", files: str = "", modules: str = "",
       code_first: bool = False) -> Interpreter:
    return Interpreter(frozenset(inline.split()), frozenset(values.split()), frozenset(attached.split()),
                       frozenset(files.split()), frozenset(modules.split()), code_first)


# Sources: python(1), node(1), perlrun(1), ruby(1), php(1), lua(1), gawk(1) as shipped in Debian 12.
INTERPRETERS = {
    "python": _i("-c -m", "-W -X --check-hash-based-pycs"),
    "pypy": _i("-c -m", "-W -X"),
    "node": _i("-e --eval -p --print", "-C --conditions --input-type --title --env-file",
               modules="-r --require --import --loader --experimental-loader"),
    "perl": _i("-e -E", "-I", "-M -m -i -l -0 -x -d -D -C"),
    "ruby": _i("-e", "-I -r -E --encoding", "-i -x -0 -W -T -K"),
    "php": _i("-r -B -R -E", "-c -d -z -t", files="-f -F"),
    "lua": _i("", "-e -l"),
    "awk": _i("-e --source", "-F -v --assign --field-separator", files="-f --file", code_first=True),
    "Rscript": _i("-e", ""),
    "ts-node": _i("-e --eval -p --print", "-r --require -P --project -C --compiler"),
    "tsx": _i("-e --eval -p --print", "--tsconfig"),
}
ALIASES = {"nodejs": "node", "gawk": "awk", "mawk": "awk", "nawk": "awk", "busybox-awk": "awk"}
MAKE_OPTIONS = _i(values="-C --directory -f --file --makefile -I --include-dir -o --old-file --assume-old "
                         "-W --what-if --new-file --assume-new")


@dataclass(frozen=True)
class Named:
    """A file the command runs: its absolute path (as named, symlinks not
    resolved), or None when it cannot be known; `text` as the command has it."""

    path: str | None
    text: str


def named(command: tuple[str, ...] | str, cwd: str) -> list[Named]:
    """The files `command` (an argv, or a command line) runs when started in
    `cwd`, in order, each once."""
    reader = _Reader(cwd)
    if isinstance(command, str):
        reader.line(command, 0)
    else:
        reader.argv(list(command), 0, None, alone=True)
    return list(dict.fromkeys(reader.found))


def shown(word: str) -> str:
    return word.removeprefix(UNKNOWN)


@dataclass(frozen=True)
class Stdin:
    """What feeds a program's standard input (None: inherited, unknown)."""

    kind: str  # "file", "text" (a here-document: what it holds is in the line) or "pipe"
    words: tuple[str, ...] = ()  # the file (one word), or the words of the command writing to the pipe
    source: Stdin | None = None  # for a pipe: that command's own standard input


class _Reader:
    def __init__(self, cwd: str | None) -> None:
        self.cwd = cwd
        self.found: list[Named] = []

    def child(self) -> _Reader:
        """A subshell's reader: its `cd` does not move this one."""
        reader = _Reader(self.cwd)
        reader.found = self.found
        return reader

    def unknown(self, text: str) -> None:
        self.found.append(Named(None, shown(text)))

    def file(self, word: str, base: str | None = None) -> None:
        where = self.cwd if base is None else base
        if word.startswith(UNKNOWN):
            self.unknown(word)
        elif word.startswith("/"):
            self.found.append(Named(_tidy(word), word))
        elif where is None:
            self.unknown(f"{word} (in a directory that cannot be known)")
        else:
            self.found.append(Named(_tidy(posixpath.join(where, word)), word))

    # -- a command line ---------------------------------------------------------------------------

    def line(self, text: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.unknown("commands nested too deeply")
            return
        for pipeline in parse(text):
            previous: Stdin | None = None
            for simple in pipeline.commands:
                self._inside(simple, depth)
                words = [_word(w) for w in simple.words]
                stdin = _stdin(simple) or previous
                self.argv(words, depth, stdin, alone=len(pipeline.commands) == 1)
                previous = Stdin("pipe", tuple(words), _stdin(simple))

    def _inside(self, simple: Simple, depth: int) -> None:
        """What a simple command runs besides its words: substitutions and groups."""
        for word in [*simple.words, *(r.target for r in simple.redirects if r.target is not None)]:
            for part in word.parts:
                if part.kind == "subst":
                    self.child().line(part.value, depth + 1)
        for redirect in simple.redirects:
            if redirect.inner:
                self.child().line(redirect.inner, depth + 1)
        if simple.subshell:
            group = self.child()
            group.line(simple.subshell, depth + 1)
            if group.cwd != self.cwd:  # `( cd x )` or `{ cd x; }`: the reader does not tell them apart
                self.cwd = None

    # -- one command ------------------------------------------------------------------------------

    def argv(self, words: list[str], depth: int, stdin: Stdin | None, *, alone: bool = False) -> None:
        if depth > MAX_DEPTH:
            self.unknown("commands nested too deeply")
            return
        while words and (words[0] in RESERVED or re.match(r"[A-Za-z_][A-Za-z0-9_]*\+?=", shown(words[0]))):
            words = words[1:]
        if not words:
            return
        program = words[0]
        if program.startswith(UNKNOWN):
            self.unknown(f"{shown(program)} (the program is an expansion)")
            return
        name = posixpath.basename(program)
        if "/" in program:
            self.file(program)
        if name in ("cd", "pushd", "popd"):
            if alone:
                self.cwd = _cd(words, self.cwd)
        elif name in (".", "source"):
            if len(words) > 1:
                self.file(words[1])
        elif name == "xargs":  # what it reads from its input is unknown here
            self.argv([UNKNOWN + w if "{}" in w else w for w in wrappers.xargs(words)], depth + 1, None)
        elif name == "chroot":
            self.unknown(f"{' '.join(map(shown, words))} (runs in another root)")
        elif wrappers.is_wrapper(name):
            self._wrapped(name, words, depth, stdin, alone)
        elif name in shells.SHELLS:
            self._shell(words, depth, stdin)
        elif name in ("make", "gmake"):
            self._make(words[1:], stdin)
        else:
            spec = INTERPRETERS.get(ALIASES.get(name, re.sub(r"[0-9.]+$", "", name)))
            if spec is not None:
                self._interpreter(spec, words, stdin)

    def _wrapped(self, name: str, words: list[str], depth: int, stdin: Stdin | None, alone: bool) -> None:
        for inner in wrappers.unwrap(words):
            own = words[1:len(words) - len(inner.argv)] if inner.line is None else words[1:]
            reader = self
            if any(_given(option, w) for option in MOVES.get(name, ()) for w in own):
                reader = self.child()  # `env -C DIR CMD`: CMD's relative paths are DIR's
                reader.cwd = None
            if inner.line is None:
                reader.argv(list(inner.argv), depth + 1, stdin, alone=alone and name in ("command", "builtin"))
            elif inner.line.startswith(UNKNOWN):
                self.unknown(inner.line)
            else:
                reader.child().line(inner.line, depth + 1)

    def _shell(self, words: list[str], depth: int, stdin: Stdin | None) -> None:
        call = shells.read(words)
        if call.runs_nothing:
            return
        for startup in call.startup:
            self.file(startup)
        if call.script is not None:
            if call.script.startswith(UNKNOWN):
                self.unknown(call.script)
            else:
                self.child().line(call.script, depth + 1)
        elif call.file is not None:
            self.file(call.file)
        elif call.reads_input and not (stdin is None and any(re.fullmatch(r"-[a-zA-Z]*i[a-zA-Z]*", w) for w in words)):
            self._program_from(stdin, words[0])  # (`sh -i` on the terminal: the person types its program)

    def _interpreter(self, spec: Interpreter, words: list[str], stdin: Stdin | None) -> None:
        options, operands = _options(words[1:], spec)
        given = False  # the program was given by an option, not as the first operand
        for option, value in options:
            if option in spec.files and value == "-":
                self._program_from(stdin, words[0])
            elif option in spec.files or (option in spec.modules and value.startswith(("./", "../", "/", UNKNOWN))):
                self.file(value)
            given |= option in spec.inline or option in spec.files
        if given or (spec.code_first and operands):
            return
        if operands and operands[0] != "-":
            self.file(operands[0])
        else:
            self._program_from(stdin, words[0])

    def _make(self, args: list[str], stdin: Stdin | None) -> None:
        options, _ = _options(args, MAKE_OPTIONS, stop_at_operand=False)
        directory = self.cwd
        for option, value in options:
            if option not in ("-C", "--directory"):
                continue
            if value.startswith(UNKNOWN) or (directory is None and not value.startswith("/")):
                directory = None
            else:
                directory = _tidy(posixpath.join(directory or "/", value))
        makefiles = [value for option, value in options if option in ("-f", "--file", "--makefile")]
        for makefile in makefiles:
            if makefile == "-":
                self._program_from(stdin, "make")
            else:
                self.file(makefile, directory)
        if makefiles:
            return
        if directory is None:
            self.unknown("the makefile (in a directory that cannot be known)")
            return
        chosen = next((m for m in MAKEFILES if observed.exists(posixpath.join(directory, m))), MAKEFILES[-1])
        self.file(chosen, directory)

    def _program_from(self, stdin: Stdin | None, program: str) -> None:
        """A program read from standard input: bound when it comes from a
        file, nothing to bind when it is text in the line; otherwise unknown."""
        if stdin is None:
            self.unknown(f"{shown(program)} (reads its program from standard input)")
        elif stdin.kind == "file":
            self.file(stdin.words[0])
        elif stdin.kind == "pipe":
            writer = list(stdin.words)
            if writer[:1] in (["echo"], ["printf"]) and not any(w.startswith(UNKNOWN) for w in writer):
                return  # the program is in the line
            if writer[:1] == ["cat"]:
                operands = [w for w in writer[1:] if w != "--"]
                for operand in operands:
                    if operand == "-":
                        self._program_from(stdin.source, program)
                    else:
                        self.file(operand)
                if not operands:
                    self._program_from(stdin.source, program)
                return
            self.unknown(f"{shown(program)} (reads its program from a pipe)")


def _options(args: list[str], spec: Interpreter, *, stop_at_operand: bool = True
             ) -> tuple[list[tuple[str, str]], list[str]]:
    """(option, value) pairs (value "" for a flag) and the operands; options
    end at `--`, and (unless `stop_at_operand` is off, as for make) at the first operand."""
    taking = spec.inline | spec.values | spec.files | spec.modules
    options: list[tuple[str, str]] = []
    operands: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands += args[index:]
            break
        if not arg.startswith("-") or arg == "-" or arg.startswith(UNKNOWN):
            operands.append(arg)
            if stop_at_operand:
                operands += args[index:]
                break
            continue
        if arg.startswith("--"):
            option, eq, value = arg.partition("=")
            if not eq and option in taking and index < len(args):
                value, index = args[index], index + 1
            options.append((option, value))
            continue
        for at, letter in enumerate(arg[1:], start=1):  # `-xc CODE`, `-Wignore`, `-pi.bak`
            option, rest = "-" + letter, arg[at + 1:]
            if option in spec.attached:
                options.append((option, rest))
                break
            if option in taking:
                if not rest and index < len(args):
                    rest, index = args[index], index + 1
                options.append((option, rest))
                break
            options.append((option, ""))
    return options, operands


def _word(word: Word) -> str:
    """A parsed word as text, or UNKNOWN + its text when the shell would
    expand it (variables, substitutions, globs, braces, a leading ~)."""
    text = "".join(p.value if p.kind == "text" else "$" + p.value if p.kind == "var" else f"$({p.value})"
                   for p in word.parts)
    expands = any(p.kind != "text" for p in word.parts) or any(
        not p.quoted and (re.search(r"[*?\[]|\{.*,.*\}", p.value) or (i == 0 and p.value.startswith("~")))
        for i, p in enumerate(word.parts))
    return UNKNOWN + text if expands else text


def _stdin(simple: Simple) -> Stdin | None:
    for redirect in reversed(simple.redirects):  # the last redirection of input wins
        if redirect.op in ("<<", "<<-", "<<<"):
            return Stdin("text")
        if redirect.op in ("<", "<>") and redirect.target is not None:
            return Stdin("file", (_word(redirect.target),))
    return None


def _cd(words: list[str], cwd: str | None) -> str | None:
    """The directory after `cd ARGS`, logical as the shell keeps it; None when unknown."""
    args = [w for w in words[1:] if w not in ("-L", "-P", "-e", "-@", "--")]
    if words[0] == "popd" or not args or args[0] == "-" or args[0].startswith(UNKNOWN):
        return None
    target = args[0]
    if target.startswith("/"):
        return posixpath.normpath(target)
    return None if cwd is None else posixpath.normpath(posixpath.join(cwd, target))


def _tidy(path: str) -> str:
    """Without `.` components and doubled slashes; `..` kept (it follows symlinks)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def _given(option: str, word: str) -> bool:
    """Whether `word` is `option`, with its value attached or not."""
    return word == option or word.startswith(option + "=") or (len(option) == 2 and word.startswith(option))
