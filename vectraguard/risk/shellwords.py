"""Reading a command line the way a POSIX shell would, far enough to judge it.

Not a shell: nothing is executed and nothing is looked up. It splits a line
into simple commands joined by pipes and lists, removes quotes, and keeps
what a judge needs — which words came from expansions (`$X`, `${IFS}`,
`$(...)`, backticks), the text of command substitutions and process
substitutions (to judge them too), redirections, and which command's
output feeds which. Unbalanced quotes or parentheses are not an error: the
rest of the line is read as one word, so a malformed line is still judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPERATORS = ("&&", "||", ";;", "|&", ";", "&", "|", "\n")
REDIRECTS = (">>", "&>", ">&", "<<<", "<<", "<>", ">|", ">", "<")


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

    op: str  # ">", ">>", "<", "<(", ">(" ...
    target: Word | None  # None for process substitutions (see `inner`)
    inner: str = ""  # a process substitution's command line


@dataclass
class Simple:
    """One simple command: its words (assignments first) and redirections."""

    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    subshell: str = ""  # `( ... )` or `{ ...; }`: the group's text, judged as a line of its own


@dataclass
class Pipeline:
    """Simple commands joined by pipes."""

    commands: list[Simple] = field(default_factory=list)


def parse(line: str) -> list[Pipeline]:
    """The pipelines of `line`, in order (lists `&&`, `||`, `;`, `&` just separate them)."""
    return _Parser(line).pipelines()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

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
        if self._peek(2) == "((":
            self.pos += 2
            return Part("text", "$((" + self._balanced("(", ")") + ")", quoted)
        if nxt == "(":
            self.pos += 1
            return Part("subst", self._balanced("(", ")"), quoted)
        if nxt == "{":
            self.pos += 1
            inner = self._balanced("{", "}")
            name = ""
            for c in inner:
                if not (c.isalnum() or c == "_"):
                    break
                name += c
            return Part("var", name or inner, quoted)
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

    def _double_quoted(self, word: Word) -> None:
        text = ""
        while self.pos < len(self.text) and self.text[self.pos] != '"':
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
        while True:
            self._skip_blanks()
            if self.pos >= len(self.text):
                break
            op = next((o for o in OPERATORS if self.text.startswith(o, self.pos)), None)
            if op is not None:
                self.pos += len(op)
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
                command.redirects.append(Redirect(op, None, self._balanced("(", ")")))
                continue
            if self._peek() in "({" and not command.words and (self._peek() == "(" or self._peek(2) == "{ "):
                open_, close = (("(", ")") if self._peek() == "(" else ("{", "}"))
                self.pos += 1
                command.subshell = self._balanced(open_, close)
                continue
            if self._peek() == ")":
                self.pos += 1
                if self.text[self.pos - 2:self.pos] != "()":  # `NAME()` keeps NAME: a function header
                    command.words.clear()  # `PATTERN)` of a case branch: the command starts after it
                continue
            redirect = self._redirect()
            if redirect is not None:
                command.redirects.append(redirect)
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
        # For a here-document (<<) this is the delimiter: its body is not judged.
        return Redirect(op, self._word())


def _ansi_c(raw: str) -> str:
    try:
        return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return raw
