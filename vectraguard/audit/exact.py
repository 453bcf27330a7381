"""Text that may not be UTF-8: how a record keeps it exactly, and how it is shown.

What comes from the host — argv, file names, environment names, the working
directory, mount sources — reaches Python as `str` decoded with
surrogateescape (PEP 383): each byte that is not part of valid UTF-8 is a
lone surrogate U+DC80..U+DCFF. JSON cannot carry those portably (RFC 8259
§8.2: jq and Go read `\\udce9` as U+FFFD), so a record keeps, wherever a
string stands:

- a string that is valid UTF-8 as itself;
- any other as the object `{"b64": "<base64 of its bytes>"}` (RFC 4648 §4,
  padded), the bytes exactly as the operating system gave them.

A reader decodes by position: where the record format has a string, an
object whose only key is `b64` is bytes. No field of a record is an object
with that single key otherwise. Dictionary keys cannot be objects: a key
that is not UTF-8 (no record has one from outside today) keeps its lone
surrogates as JSON `\\udcXX` escapes, exact for Python's json and never a
failed write. A lone surrogate outside U+DC80..U+DCFF (only JSON input can
produce one) is kept as its three-byte surrogatepass form.

Shown to people, such a string is a shell word in bash's `$'...'` quoting
(`$'caf\\xe9.txt'`): unambiguous — a literal backslash is `\\\\` there —
and what a shell user types to name the same bytes again.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from typing import Any

B64 = "b64"
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_exact(text: str) -> bool:
    """Is `text` valid UTF-8 text, the same bytes the operating system gave
    (so that JSON carries it to any reader unchanged)?"""
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    try:
        return os.fsencode(text) == encoded  # a non-UTF-8 locale decodes argv as another charset
    except UnicodeEncodeError:
        return False


def as_bytes(text: str) -> bytes:
    """The bytes `text` stands for: the operating system's, for a str it decoded."""
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:  # a surrogate no byte stands for: surrogatepass for it alone
        return b"".join(_char_bytes(char) for char in text)


def _char_bytes(char: str) -> bytes:
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return char.encode("utf-8", "surrogatepass")


def of_bytes(data: bytes) -> str:
    """The inverse of as_bytes: bytes as a str, undecodable bytes as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def to_record(value: Any) -> Any:
    """`value` (JSON-shaped: dicts, lists, tuples, strings, numbers) as a record keeps it."""
    if isinstance(value, str):
        if value.isascii() or is_exact(value):
            return value
        return {B64: base64.b64encode(as_bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {key: to_record(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_record(item) for item in value]
    return value


def bytes_to_record(data: bytes) -> str | dict[str, str]:
    """Bytes (a stream's output) as a record keeps them: UTF-8 text as itself, else {"b64": ...}."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {B64: base64.b64encode(data).decode("ascii")}


def from_record(value: Any) -> Any:
    """A record's value with every `{"b64": ...}` back as the str it was (lone surrogates for bytes)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(B64), str):
            return of_bytes(base64.b64decode(value[B64], validate=True))
        return {key: from_record(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_record(item) for item in value]
    return value


def escape_surrogates(json_text: str) -> str:
    """JSON text with every raw lone surrogate (only in a dictionary key, after
    to_record) as its \\uXXXX escape: valid UTF-8, and the same string to a JSON reader."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def shell_word(text: str) -> str:
    """`text` as one shell word a person can read and type back: as is when
    safe, in '...' when it holds only printable text, else in $'...' with
    each byte that is not printable UTF-8 text (controls, escape sequences,
    bidi controls, bytes that are not UTF-8) as \\xNN or \\uXXXX."""
    if all(_printable(char) for char in text) and is_exact(text):
        return shlex.quote(text)
    return "$'" + "".join(_dollar_escape(char) for char in text) + "'"


def shell_line(argv: list[str]) -> str:
    """An argv as a command line of shell words (see shell_word)."""
    return " ".join(shell_word(arg) for arg in argv)


def index_line(argv: list[str]) -> str:
    """An argv as the session index's command column: shlex.join's words, exact
    text (escaped only where shown); an argument that is not UTF-8 as its $'...' word."""
    return " ".join(shlex.quote(arg) if is_exact(arg) else shell_word(arg) for arg in argv)


_NAMED = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _dollar_escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    if _printable(char) and is_exact(char):
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _printable(char: str) -> bool:
    # As output.unsafe: isprintable() is False for controls, bidi and format
    # characters, separators and lone surrogates.
    return char.isprintable() or char == " "
