"""Control characters made visible, for text our own commands print.

Used wherever text that came from a sandbox (output, argv, file names, diff
lines) is shown by `logs show`, `changes`, `diff`, tables and prompts:
escape sequences in it must not drive the user's terminal, carriage returns
must not overwrite what came before, bidi controls must not reorder what the
user reads, zero-width characters must not hide text, and a lone surrogate (a
non-UTF-8 byte, decoded with surrogateescape) must not make a strict UTF-8
stdout raise. Escaping is applied whether or not stdout is a terminal: a pipe
often ends in `less -R` or a terminal later; `--raw` is the way to the bytes.
"""

from __future__ import annotations

# Kept as they are in recorded output: they lay text out, they cannot hide or
# rewrite it (a tab only moves right to the next tab stop).
_LAYOUT = frozenset("\n\t")


def unsafe(char: str) -> bool:
    """Must `char` be escaped before it reaches a terminal?

    str.isprintable() is False for every character that can act on a terminal
    or on the reader: C0 and C1 controls (ESC, CSI U+009B ...), DEL, format
    characters (bidi overrides, isolates and marks U+202A-U+202E,
    U+2066-U+2069, U+200E, U+200F, U+061C; zero-width characters U+200B-U+200D,
    U+2060, U+FEFF), line and paragraph separators, other spaces than ' ', lone
    surrogates, unassigned code points. Ordinary non-ASCII text (letters, CJK,
    emoji) is printable.
    """
    return not (char.isprintable() or char == " ")


def printable(text: str) -> str:
    """Control characters (escape sequences, carriage returns, bidi controls, lone
    surrogates ...) made visible as Python-style escapes. A byte that was not
    UTF-8 (a file name decoded with surrogateescape) is shown as the byte,
    \\xff, the way a shell's $'...' names it back. The backslash itself is left
    alone: the escapes are for reading, not for decoding back."""
    return "".join(_visible(char) if unsafe(char) else char for char in text)


def printable_output(data: bytes) -> str:
    """Recorded output as `printable` shows it, but with its line breaks (\\n, and
    \\r\\n as a pseudo-terminal writes them: nothing can be overwritten between the
    two) and tabs kept, so it still reads as the lines the program wrote. Bytes
    that are not UTF-8 are shown as \\xNN."""
    text = data.decode("utf-8", "surrogateescape")
    return "".join(_output_char(text, i) for i in range(len(text)))


def _output_char(text: str, i: int) -> str:
    char = text[i]
    if not unsafe(char) or char in _LAYOUT or (char == "\r" and text[i + 1 : i + 2] == "\n"):
        return char
    return _visible(char)


def _visible(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    if code >= 0x10000:
        return f"\\U{code:08x}"
    return repr(char)[1:-1]
