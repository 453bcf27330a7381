"""Reading a command line the way a POSIX shell would, far enough to judge it.

Not a shell: nothing is executed and nothing is looked up. It splits a line
into simple commands joined by pipes and lists, removes quotes, and keeps
what a judge needs — which words came from expansions (`$X`, `${IFS}`,
`$(...)`, backticks), the text of command substitutions and process
substitutions (to judge them too), redirections with here-document bodies,
function definitions with their bodies, and which command's output feeds
which. Unbalanced quotes or parentheses are not an error: the rest of the
line is read as one word, so a malformed line is still judged.

bench/shell-parsers.md compares this reader with maintained bash grammars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPERATORS = ("&&", "||", ";;", "|&", ";", "&", "|", "\n")
PROCESS_SUBSTITUTION_PATH = "/dev/fd/63"  # what bash puts in an argument's place for <(…) and >(…)
REDIRECTS = (">>", "&>>", "&>", ">&", "<<<", "<<-", "<<", "<>", ">|", ">", "<&", "<")


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text, a variable, or a command substitution."""

    kind: str  # "text" | "var" | "subst"
    value: str  # the text, the variable's name, or the substitution's command line
    quoted: bool = False  # inside double quotes: not split into words after expansion


@dataclass
class Word:
    """One shell word: its literal, quoted and expanded parts."""

    parts: list[Part] = field(default_factory=list)

    def literal(self) -> str | None:
        """The word's text if it has no expansions."""
        if all(p.kind == "text" for p in self.parts):
            return "".join(p.value for p in self.parts)
        return None


@dataclass
class Redirect:
    """One redirection of a simple command."""

    op: str  # ">", ">>", "<", "<(", ">(", "<<" ...
    target: Word | None  # None for process substitutions (see `inner`); a here-document's delimiter
    inner: str = ""  # a process substitution's command line
    body: Word | None = None  # a here-document's text; its expansions are parts when the delimiter is unquoted


@dataclass
class Simple:
    """One simple command: its words (assignments first) and redirections."""

    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    subshell: str = ""  # `( ... )` or `{ ...; }`: the group's text, judged as a line of its own
    defines: str = ""  # `NAME() BODY` or `function NAME BODY`: the name; `subshell` holds the body


@dataclass
class Pipeline:
    """Simple commands joined by pipes."""

    commands: list[Simple] = field(default_factory=list)


def parse(line: str) -> list[Pipeline]:
    """The pipelines of `line`, in order (lists `&&`, `||`, `;`, `&` just separate them)."""
    return _Parser(line).pipelines()


def parse_code(line: str) -> tuple[list[Pipeline], str]:
    """The pipelines of `line`, and its text without here-document bodies (data,
    not code: what reads them decides whether they run)."""
    parser = _Parser(line)
    pipelines = parser.pipelines()
    code, last = "", 0
    for start, end in parser.bodies:
        code += line[last:start]
        last = end
    return pipelines, code + line[last:]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.bodies: list[tuple[int, int]] = []  # here-document bodies, as (start, end) in text

    # -- scanning ---------------------------------------------------------------------------

    def _peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def _skip_blanks(self) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r":
                self.pos += 1
            elif c == "\\" and self._peek(2) == "\\\n":
                self.pos += 2
            elif c == "#":  # a comment runs to the end of the line
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    def _balanced(self, open_: str, close: str) -> str:
        """Text up to the matching `close` (quotes respected); pos ends after it."""
        depth, start = 1, self.pos
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\":
                self.pos += 2
                continue
            if c in "'\"`":
                self._skip_quoted(c)
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    self.pos += 1
                    return self.text[start:self.pos - 1]
            self.pos += 1
        return self.text[start:]

    def _skip_quoted(self, quote: str) -> None:
        self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos] != quote:
            self.pos += 2 if self.text[self.pos] == "\\" and quote != "'" else 1
        self.pos += 1

    def _dollar(self, quoted: bool) -> Part:
        """After a `$`: a variable, ${...}, $(...) or $((...))."""
        nxt = self._peek()
        if self._peek(2) == "((":  # arithmetic: only the substitutions inside it run
            self.pos += 2
            inner = self._balanced("(", ")")
            if self._peek() == ")":
                self.pos += 1
            return _substitutions_in(inner, quoted) or Part("text", "$((" + inner + "))", quoted)
        if nxt == "(":
            self.pos += 1
            return Part("subst", self._balanced("(", ")"), quoted)
        if nxt == "{":
            self.pos += 1
            inner = self._balanced("{", "}")
            # ${NAME} is the variable; with an operator (${a#x}, ${a:-b}, ${!a}) the whole text is
            # kept, which no variable is named: its value is unknown to a reader. A substitution
            # inside (`${x:-$(cmd)}`) runs: the part is that substitution.
            return _substitutions_in(inner, quoted) or Part("var", inner, quoted)
        if nxt == "'" and not quoted:  # $'...' ANSI-C quoting
            self.pos += 1
            start = self.pos
            self._skip_quoted_from_inside("'")
            raw = self.text[start:self.pos - 1]
            return Part("text", _ansi_c(raw), True)
        name = ""
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            name += self.text[self.pos]
            self.pos += 1
        if not name and nxt and nxt in "@*#?$!-0123456789":
            self.pos += 1
            return Part("var", nxt, quoted)
        return Part("var", name, quoted) if name else Part("text", "$", quoted)

    def _skip_quoted_from_inside(self, quote: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] != quote:
            self.pos += 2 if self.text[self.pos] == "\\" else 1
        self.pos += 1

    def _word(self) -> Word | None:
        """One word, or None at an operator or the end."""
        word = Word()
        text = ""

        def flush(quoted: bool = False) -> None:
            nonlocal text
            if text:
                word.parts.append(Part("text", text, quoted))
                text = ""

        started = False
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r\n;&|()<>":  # (process substitutions were taken by the caller)
                break
            started = True
            if c == "\\":
                if self._peek(2) == "\\\n":
                    self.pos += 2
                    continue
                text += self.text[self.pos + 1:self.pos + 2]
                self.pos += 2
            elif c == "'":
                flush()
                self.pos += 1
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] != "'":
                    self.pos += 1
                word.parts.append(Part("text", self.text[start:self.pos], True))
                self.pos += 1
            elif c == '"':
                flush()
                self.pos += 1
                self._double_quoted(word)
            elif c == "$":
                flush()
                self.pos += 1
                word.parts.append(self._dollar(quoted=False))
            elif c == "`":
                flush()
                self.pos += 1
                start = self.pos
                self._skip_quoted_from_inside("`")
                word.parts.append(Part("subst", self.text[start:self.pos - 1]))
            else:
                text += c
                self.pos += 1
        flush()
        return word if started else None

    def _double_quoted(self, word: Word, end: str | None = '"') -> None:
        text = ""
        while self.pos < len(self.text) and self.text[self.pos] != end:
            c = self.text[self.pos]
            if c == "\\" and self._peek(2)[1:] in ('"', "\\", "$", "`", "\n"):
                text += self.text[self.pos + 1]
                self.pos += 2
            elif c == "$":
                if text:
                    word.parts.append(Part("text", text, True))
                    text = ""
                self.pos += 1
                word.parts.append(self._dollar(quoted=True))
            elif c == "`":
                if text:
                    word.parts.append(Part("text", text, True))
                    text = ""
                self.pos += 1
                start = self.pos
                self._skip_quoted_from_inside("`")
                word.parts.append(Part("subst", self.text[start:self.pos - 1], True))
            else:
                text += c
                self.pos += 1
        if text or not word.parts:
            word.parts.append(Part("text", text, True))
        self.pos += 1

    # -- structure ---------------------------------------------------------------------------

    def pipelines(self) -> list[Pipeline]:
        result: list[Pipeline] = []
        current = Pipeline()
        command = Simple()
        pending: list[tuple[Redirect, str, bool]] = []  # here-documents whose bodies start on the next line
        while True:
            self._skip_blanks()
            if self.pos >= len(self.text):
                break
            op = next((o for o in OPERATORS if self.text.startswith(o, self.pos)), None)
            if op is not None:
                self.pos += len(op)
                if op == "\n" and pending:
                    for redirect, delimiter, strip_tabs in pending:
                        self._here_document(redirect, delimiter, strip_tabs)
                    pending = []
                if op in ("|", "|&"):
                    current.commands.append(command)
                else:
                    current.commands.append(command)
                    result.append(current)
                    current = Pipeline()
                command = Simple()
                continue
            if self._peek(2) in ("<(", ">("):
                op = self._peek(2)
                self.pos += 2
                as_input = bool(command.redirects) and command.redirects[-1].op == "<" and \
                    command.redirects[-1].target is None  # `cmd < <(…)`: its input, not an argument
                command.redirects.append(Redirect(op, None, self._balanced("(", ")")))
                if command.words and not as_input:  # an argument: bash passes a /dev/fd path in its place
                    command.words.append(Word([Part("text", PROCESS_SUBSTITUTION_PATH)]))
                continue
            if command.words and self._peek() == "(" and (command.words[-1].literal() or "").endswith("=") and \
                    self.text[self.pos - 1:self.pos] == "=":  # an array: NAME=(WORDS)
                inner = self._balanced_after_open()
                command.words[-1].parts += [Part("text", "("), *expanded(inner).parts, Part("text", ")")]
                continue
            opening = all(w.literal() in _OPENING for w in command.words)
            if self._peek() in "({" and opening and (self._peek() == "(" or self._peek(2) == "{ "):
                open_, close = (("(", ")") if self._peek() == "(" else ("{", "}"))
                self.pos += 1
                command.subshell = self._balanced(open_, close)
                continue
            if self._peek() == ")":
                self.pos += 1
                if self.text[self.pos - 2:self.pos] != "()" and (command.words or command.redirects):
                    # `PATTERN)` of a case branch, or a stray `)` (an extglob `+(…)`): what came before is
                    # a command of its own — judged, never dropped — and the next one starts after it.
                    current.commands.append(command)
                    result.append(current)
                    current, command = Pipeline(), Simple()
                continue
            if not command.defines and self._function_header(command):
                continue
            found = self._redirect()
            if found is not None:
                command.redirects.append(found)
                if found.op in ("<<", "<<-") and found.target is not None:
                    delimiter = "".join(p.value for p in found.target.parts)
                    pending.append((found, delimiter, found.op == "<<-"))
                continue
            word = self._word()
            if word is None:  # a lone operator character we do not model
                self.pos += 1
                continue
            command.words.append(word)
        current.commands.append(command)
        result.append(current)
        return [p for p in ((Pipeline([c for c in p.commands if c.words or c.subshell or c.redirects]))
                            for p in result) if p.commands]

    def _balanced_after_open(self) -> str:
        self.pos += 1
        return self._balanced("(", ")")

    def _function_header(self, command: Simple) -> bool:
        """`NAME() BODY`, `function NAME [()] BODY`: the name goes to `defines`
        and the body (a `{ ...; }` or `( ... )` group) to `subshell`."""
        names = [w.literal() for w in command.words]
        if len(names) == 1 and names[0] and names[0] != "function" and self._peek() == "(":
            name = names[0]
        elif len(names) == 2 and names[0] == "function" and names[1]:
            name = names[1]
        else:
            return False
        start = self.pos
        if self._peek() == "(":
            self.pos += 1
            self._skip_blanks()
            if self._peek() != ")":
                self.pos = start
                return False
            self.pos += 1
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1
        if self._peek() not in ("{", "("):
            self.pos = start
            return False
        open_, close = ("(", ")") if self._peek() == "(" else ("{", "}")
        self.pos += 1
        command.words.clear()
        command.defines, command.subshell = name, self._balanced(open_, close)
        return True

    def _here_document(self, redirect: Redirect, delimiter: str, strip_tabs: bool) -> None:
        """The body of a here-document: the lines up to one that is its delimiter."""
        quoted = redirect.inner == "quoted"  # set by _redirect from the delimiter's spelling
        redirect.inner = ""
        lines = []
        start = self.pos
        while self.pos < len(self.text):
            end = self.text.find("\n", self.pos)
            end = len(self.text) if end < 0 else end
            line = self.text[self.pos:end]
            self.pos = end + 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
            lines.append(line.lstrip("\t") if strip_tabs else line)
        body = "\n".join(lines) + "\n"
        self.bodies.append((start, min(self.pos, len(self.text))))
        redirect.body = Word([Part("text", body, True)]) if quoted else expanded(body)

    def _redirect(self) -> Redirect | None:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1
        op = next((o for o in REDIRECTS if self.text.startswith(o, self.pos)), None)
        if op is None:
            self.pos = start
            return None
        self.pos += len(op)
        if op in (">&", "<&") and self._peek().isdigit():  # 2>&1: no file
            while self._peek().isdigit() or self._peek() == "-":
                self.pos += 1
            return Redirect(op, Word([Part("text", "&fd")]))
        self._skip_blanks()
        start = self.pos
        target = self._word()
        if op in ("<<", "<<-"):  # the delimiter: a quoted one means the body is not expanded
            quoted = any(c in self.text[start:self.pos] for c in "'\"\\")
            return Redirect(op, target, "quoted" if quoted else "")
        return Redirect(op, target)


# Words after which a `(` or `{ ` opens a group: `do (rm -rf ~)`, `then { ...; }`.
_OPENING = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "time", "coproc", "{"})


def _substitutions_in(text: str, quoted: bool) -> Part | None:
    """The command substitutions inside `text` (an arithmetic or `${...}` body), as one part."""
    if "$(" not in text and "`" not in text:
        return None
    inner = [p.value for p in expanded(text).parts if p.kind == "subst"]
    return Part("subst", "; ".join(inner), quoted) if inner else None


def expanded(text: str) -> Word:
    """`text` as the shell reads a double-quoted string or an unquoted
    here-document: literal, except `$...` and backticks, which are parts."""
    parser = _Parser(text)
    word = Word()
    parser._double_quoted(word, end=None)
    return word


def _ansi_c(raw: str) -> str:
    try:
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return raw
