"""What a printing or decoding command outputs, when that needs no running to know.

`echo TEXT`, `printf FORMAT ARGS`, and text piped through `base64 -d`,
`xxd -r -p`, `rev`, `tr SET1 SET2`, `openssl base64 -d`, `cat`: their
output is computed here, so what it feeds (`| sh`) is judged as the text it
will be. `which NAME` (and `command -v`, `type -P`) outputs NAME: the
command a `$(which sudo)` names. Anything else is unknown (None).
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re

# Stages that turn their input into other text: fed to a shell, what runs was hidden from a reader.
DECODERS = frozenset({"base64", "base32", "basenc", "xxd", "rev", "tr", "openssl", "uudecode", "gzip", "gunzip",
                      "zcat", "bzip2", "bunzip2", "bzcat", "xz", "unxz", "xzcat", "zstd", "unzstd", "od", "iconv",
                      "recode", "sed", "perl", "python", "python3", "awk", "gawk", "mawk", "cut", "fold", "paste"})


def static_output(argv: list[str], stdin: str | None) -> str | None:
    """The output of `argv` given `stdin` (None: unknown), or None if unknown."""
    name = posixpath.basename(argv[0])
    args = argv[1:]
    if name == "echo":
        escapes = False
        while args and re.fullmatch(r"-[neE]+", args[0]):
            escapes = "e" in args[0] if "E" not in args[0] else False
            args = args[1:]
        text = " ".join(args)
        return (_escapes(text) if escapes else text) + "\n"
    if name == "printf" and args:
        return _printf(args[0], args[1:])
    if name == "mktemp":  # a fresh, empty path under the temporary directory
        directory = next((a.partition("=")[2] for a in args if a.startswith("--tmpdir=")), None) or \
            next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-p", "--tmpdir")), "/tmp")
        return directory.rstrip("/") + "/tmp.mktemp\n"
    if name in ("which", "command", "type") and args:
        names = [a for a in args if not a.startswith("-")]
        if name == "command" and not any(a in ("-v", "-V") for a in args):
            return None
        return "\n".join(names) + "\n" if names else None
    if stdin is None:
        return None
    if name == "cat" and not args:
        return stdin
    if name in ("base64", "base32") and any(a in ("-d", "--decode", "-D", "-di", "-id") for a in args):
        return _decode(stdin, name)
    if name == "openssl" and args[:1] in (["base64"], ["enc"]) and "-d" in args:
        return _decode(stdin, "base64")
    if name == "xxd" and any(a.startswith("-r") for a in args):
        try:
            return bytes.fromhex("".join(re.sub(r"^[0-9a-f]+:\s*", "", stdin).split())).decode("utf-8", "replace")
        except ValueError:
            return None
    if name == "tr" and len(args) == 2 and not any(a.startswith("-") for a in args):
        source, target = _tr_set(args[0]), _tr_set(args[1])
        if source and target:
            target = target + target[-1] * (len(source) - len(target))
            return stdin.translate(str.maketrans(source, target[:len(source)]))
        return None
    if name == "rev" and not args:
        return "\n".join(line[::-1] for line in stdin.split("\n"))
    return None


def _decode(text: str, kind: str) -> str | None:
    data = "".join(text.split())
    try:
        if kind == "base32":
            raw = base64.b32decode(data + "=" * (-len(data) % 8))
        else:
            raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", "replace")


def _escapes(text: str) -> str:
    """echo -e / printf's backslash escapes (\\xHH, \\NNN octal, \\n ...)."""
    text = re.sub(r"\\0?([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), text)
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return text


def _printf(fmt: str, args: list[str]) -> str:
    """printf FORMAT ARGS: %s/%b/%c/%d take arguments in turn; the format repeats while arguments remain."""
    out, queue = "", list(args)
    while True:
        used = False

        def take(match: re.Match[str]) -> str:
            nonlocal used
            spec = match.group(1)
            if spec == "%":
                return "%"
            used = True
            value = queue.pop(0) if queue else ""
            if spec == "b":
                return _escapes(value)
            if spec == "c":
                return value[:1]
            return value

        out += _escapes(re.sub(r"%[-+ #0-9.]*([sbcdiouxXfeEgG%])", take, fmt))
        if not used or not queue:
            return out


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
