"""Inline programs given to interpreters (`python3 -c`, `perl -e`, `awk '…'`, …).

Which option carries the program, the shell command lines a program runs
through its language's process calls (`os.system('…')`, `system "…"`,
`` `…` ``, `qx{…}`, `%x(…)`, `child_process.execSync('…')`,
`os.execute('…')`, awk's `system()` and `"…" | getline`), and whether it
runs a command or code it builds at run time (`os.system(cmd)`,
`exec(b64decode(…))`, `system('rm ' . $x)`), which cannot be judged: that
makes an `opaque` finding.
"""

from __future__ import annotations

import re
from functools import cache

INTERPRETERS = {  # name -> the options that take inline code
    "python": ("-c",), "python2": ("-c",), "python3": ("-c",), "pypy": ("-c",), "pypy3": ("-c",),
    "perl": ("-e", "-E"), "ruby": ("-e",), "node": ("-e", "--eval", "-p", "--print"),
    "nodejs": ("-e", "--eval", "-p", "--print"), "php": ("-r",), "lua": ("-e",), "luajit": ("-e",),
    "lua5.1": ("-e",), "lua5.3": ("-e",), "lua5.4": ("-e",), "deno": ("eval",), "bun": ("-e", "--eval"),
    "Rscript": ("-e",), "tclsh": (), "expect": ("-c",), "jshell": (), "julia": ("-e",), "elixir": ("-e",),
    "osascript": ("-e",), "pwsh": ("-c", "-Command", "-command"), "powershell": ("-c", "-Command"),
    "jrunscript": ("-e",), "groovy": ("-e",), "scala": ("-e",), "wish": (), "R": ("-e",),
    "ghc": ("-e",), "runghc": (), "m4": (), "guile": ("-c",), "racket": ("-e",), "sbcl": ("--eval",), "clisp": ("-x",), "erl": ("-eval",),
    "escript": (), "janet": ("-e",), "fennel": ("-e",), "gawk-json": (), "kotlin": ("-e",), "swift": ("-e",),
    "crystal": ("eval",), "nim": ("--eval",), "v": (), "ocaml": (), "gjs": ("-c",), "qjs": ("-e",),
}
AWKS = frozenset({"awk", "gawk", "mawk", "nawk", "busybox-awk", "original-awk"})
# Options that take a value (which is not the program).
_VALUE_OPTIONS = {"powershell": frozenset({"-w", "-windowstyle", "-ep", "-executionpolicy", "-v", "-version",
                                          "-wd", "-workingdirectory", "-configurationname", "-inputformat",
                                          "-outputformat", "-psconsolefile"}),
                  "pwsh": frozenset({"-w", "-windowstyle", "-ep", "-executionpolicy", "-wd", "-workingdirectory",
                                     "-configurationname", "-inputformat", "-outputformat", "-settingsfile"}),
                  "osascript": frozenset({"-l"}), "python": frozenset({"-W", "-X", "-Q"}),
                  "python3": frozenset({"-W", "-X"}), "node": frozenset({"-r", "--require", "--import", "--loader"}),
                  "nodejs": frozenset({"-r", "--require"}), "ruby": frozenset({"-r", "-I", "-C"}),
                  "perl": frozenset({"-I", "-M", "-m"}), "php": frozenset({"-d", "-c", "-z"}), "lua": frozenset({"-l"})}
# Options after which the program is not inline code nor input: a module, a version query, a check.
_NOT_CODE = frozenset({"-m", "--version", "-V", "--help", "-h", "--check"})

# A call that runs a shell command line, then its string argument.
_RUNNERS = (r"system|popen|exec[lv]?p?e?|spawn|spawnSync|execSync|execFileSync|execFile|check_output|check_call|"
            r"call|run|Popen|getoutput|getstatusoutput|shell_exec|passthru|proc_open|execute|capture[23]?e?|"
            r"pipeline\w*|Command|open|callCommand|spawnCommand|readProcess|cmd|doShellScript|shell_command|"
            r"shell-command|os:cmd|Shell|sh")
_STRING = r"""(?P<q>['"])(?P<s>(?:\\.|(?!(?P=q))[^\\])*)(?P=q)"""
_CALL = rf"""(?:\b(?:{_RUNNERS}))\s*\(?\s*(?:\[\s*)?[bBrRuU]?{_STRING}"""
# Groovy/Kotlin scripts: "CMD".execute()
_EXECUTE_METHOD = r"""(?P<q>['"])(?P<s>(?:\\.|(?!(?P=q))[^\\])*)(?P=q)\s*\.execute\s*\("""
_LIST = r"""(?:run|call|Popen|check_call|check_output|spawn|spawnSync|execFileSync|exec(?:vp?e?)?|capture\w*)\s*\(\s*\[([^\]]*)\]"""
_PROGRAM_AND_LIST = r"""(?:spawn|spawnSync|execFile|execFileSync|Popen)\s*\(\s*(['"])([^'"]+)\1\s*,\s*\[([^\]]*)\]"""
# os.execvp(FILE, ARGV): the list is the whole argv, its first word included.
_FILE_AND_ARGV = r"""\bexecv\w*\s*\(\s*(['"])([^'"]+)\1\s*,\s*\[([^\]]*)\]"""
_ARGUMENT_LIST = r"""\b(?:exec|system)\s*\(?\s*((?:['"][^'"]*['"]\s*,\s*)+['"][^'"]*['"])"""
_SHELL_IN_LIST = (r"""['"](?:/usr)?(?:/bin/)?(?:ba|da|z|k|mk)?sh['"]\s*[,;]?\s*(?:\{\s*args\s*:\s*)?[\[{(]?\s*"""
                  r"""['"]-[a-z]*c['"]\s*,\s*""" + _STRING)
# Rust: Command::new("sh").arg("-c").arg("…")
_RUST_SHELL = (r"""Command::new\(\s*"(?:/usr)?(?:/bin/)?(?:ba|da|z)?sh"\s*\)\s*\.args?\(\s*\[?\s*"-c"\s*[\],)]\s*"""
               r"""(?:\.arg\(\s*)?""" + _STRING)
# awk/gawk: print TEXT | "sh" -- the text printed is the shell's program.
_PRINT_TO_SHELL = r"""\bprintf?\s*\(?\s*"(?P<s>(?:\\.|[^"\\])*)"\s*\)?\s*\|&?\s*"(?:/bin/)?(?:ba|da|z)?sh"\s*"""
# CMake: execute_process(COMMAND prog args ...) in a script run with cmake -P.
_CMAKE_PROCESS = r"""execute_process\s*\(\s*COMMAND\s+(.*?)(?=\s+(?:COMMAND|WORKING_DIRECTORY|OUTPUT_\w+|RESULT_\w+|ERROR_\w+|TIMEOUT|INPUT_FILE)\b|\s*\))"""
_QUOTING = r"""`([^`]+)`|\bqx\s*(?:\{([^}]*)\}|\(([^)]*)\)|/([^/]*)/|'([^']*)')|%x\s*(?:\(([^)]*)\)|\{([^}]*)\}|\[([^\]]*)\])"""
_AWK_PIPES = r"""(?P<q>")(?P<s>(?:\\.|[^"\\])*)"\s*\|&?\s*getline|\|&?\s*(?P<q2>")(?P<s2>(?:\\.|[^"\\])*)\""""
# A process call whose argument is not a plain literal (a name, an f-string, a concatenation).
_PROCESS = (r"""(?:\bos\.(?:system|popen|exec\w*|spawn\w*|posix_spawnp?)|"""
            r"""__import__\(\s*['"]os['"]\s*\)\.(?:system|popen|exec\w*|spawn\w*)|\bsubprocess\.\w+|\bpty\.spawn|"""
            r"""\bcommands\.getoutput|\bos\.execute|\bio\.popen|(?<![\w.])(?:system|shell_exec|passthru|proc_open|"""
            r"""popen|exec|execSync|execFileSync|spawnSync|spawn|execFile|qx)|\.(?:execSync|execFileSync|spawnSync|spawn|execFile)|\bchild_process\.\w+|\bKernel\.\w+|"""
            r"""\bIO\.popen|\bOpen3\.\w+)""")
_BUILT = (_PROCESS + r"""\s*\(\s*(?!\s*[)'"\[]|\s*(?:shell|check|text|capture_output|cwd|env|stdout|stderr)\s*=)""")
_CONCAT = (_PROCESS + r"""\s*\(?\s*(?:\[\s*)?(?:""" + _STRING + r"""\s*(?:(?:\.\.|[+.%])\s*[\w$("']|\.format\b)|f['"][^'"]*\{)""")
_EVAL = (r"""(?<![\w.])(?:exec|eval|execfile|Function|loadstring|load|dofile|create_function)\s*\(\s*(?!\s*['")])|"""
         r"""\b(?:IEX|iex|Invoke-Expression|invoke-expression)\b|\.then\(\s*(?:eval|Function)\s*\)|"""
         r"""\b(?:instance_eval|class_eval|module_eval|runInThisContext|runInNewContext)\b|"""
         r"""\beval\s+(?!['"{])[$\w]|\b(?:system|exec)\s+(?![('"])[$\w]|"""
         r"""\bgetattr\s*\(\s*(?:__import__|importlib|sys\.modules)|import_module\s*\([^)]*\+|__import__\s*\([^)]*\+|"""
         r"""\b(?:pickle|cPickle|marshal|dill|shelve|jsonpickle)\.loads?\s*\(|\byaml\.(?:unsafe_)?load\s*\((?![^)]*SafeLoader)|"""
         r"""\beval\s*\(?\s*['"][A-Za-z0-9+/=]{16,}['"]\s*\.\s*unpack1?\s*\(|\bMarshal\.load\b""")
# Decoding only matters when the result can run.
_DECODE = (r"""\b(?:b64decode|decodebytes|fromhex|unhexlify|decompress|codecs\.decode|atob|"""
           r"""Buffer\.from\([^)]*base64|unpack\s*\(?\s*['"]m|MIME::Base64|base64_decode|gzinflate|str_rot13|"""
           r"""[\[(]::-1\]|reverse\b)|\.pack\s*\(""")
_RUNS_ANYTHING = r"""\b(?:exec|eval|system|popen|subprocess|spawn|child_process|Function|shell_exec|passthru|qx|load)\b|`"""

_PERL_BARE = r"""\b(?:system|exec)\s+(?!\()(?P<q>['"])(?P<s>(?:\\.|(?!(?P=q))[^\\])*)(?P=q)|\bopen\s*\(?[^;]*['"]\s*\|\s*['"]|\bopen\s*\(?[^;]*['"](?P<s2>[^'"|]+)\|['"]"""


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL)


def is_interpreter(name: str) -> bool:
    return name in INTERPRETERS or re.fullmatch(r"python[23](\.\d+)?|pypy3?(\.\d+)?|php\d(\.\d+)?|ruby\d(\.\d+)?",
                                                name) is not None


def program(name: str, argv: list[str]) -> tuple[str | None, bool]:
    """(the inline program, whether the program is read from input instead).
    Neither when the interpreter runs a script file or a module."""
    base = re.sub(r"\d(\.\d+)?$", "", name) if name not in INTERPRETERS else name
    options = INTERPRETERS.get(name, INTERPRETERS.get(base, ("-c",)))
    args = argv[1:]
    if base in ("powershell", "pwsh"):  # -NoP -W Hidden -C: options in any case
        args = [a.lower() if a.startswith("-") else a for a in args]
        options = tuple(o.lower() for o in options)
    if base in ("bun", "deno") and args[:1] == ["run"]:  # bun run -: the program from input
        args = args[1:]
    takes_value = _VALUE_OPTIONS.get(base, frozenset())
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in takes_value:  # osascript -l JavaScript, node -r MODULE, python -W ignore ...
            skip = True
            continue
        if arg in options:
            if not arg.startswith("-"):  # a subcommand (deno eval, crystal eval): its own flags come first
                following = [a for a in args[index + 1:] if not a.startswith("-")]
                return (following[0] if following else ""), False
            if args[index + 1:index + 2] == ["-"]:  # pwsh -Command -: the program is read from input
                return None, True
            return (args[index + 1] if index + 1 < len(args) else ""), False
        for option in options:  # attached: -c'...', -e'...', --eval=...
            if option.startswith("--") and arg.startswith(option + "="):
                return arg[len(option) + 1:], False
            if len(option) == 2 and option[0] == "-" and arg.startswith(option) and len(arg) > 2:
                return arg[2:], False
        if base == "perl" and re.fullmatch(r"-[a-zA-Z]*[eE]", arg):  # perl -ne, -le ...
            return (args[index + 1] if index + 1 < len(args) else ""), False
        if re.fullmatch(r"-[a-zA-Z]*c", arg) and options == ("-c",):  # python -Ic, -Bc
            return (args[index + 1] if index + 1 < len(args) else ""), False
        if arg in _NOT_CODE or arg.startswith("-m"):
            return None, False
        if arg == "-":
            return None, True
        if not arg.startswith("-"):
            return None, False  # a script file
    return None, True


def awk_program(argv: list[str]) -> str:
    args, index = argv[1:], 0
    while index < len(args):
        arg = args[index]
        if arg in ("-f", "--file"):
            return ""
        if arg in ("-v", "-F", "--assign", "--field-separator"):
            index += 2
            continue
        if arg == "--":
            index += 1
            break
        if arg.startswith("-") and len(arg) > 1:
            index += 1
            continue
        break
    return args[index] if index < len(args) else ""


def shell_lines(code: str, name: str = "") -> list[str]:
    """The command lines `code` (a program for interpreter `name`) runs through process calls, as literals."""
    if name.startswith("ruby"):  # "#{Dir.home}" is the home; other #{...} are known only when it runs
        code = re.sub(r"#\{\s*(Dir\.home|ENV\[['\"]HOME['\"]\])\s*\}", "~", code)
        code = re.sub(r"#\{[^}]*\}", "${RUBY}", code)
    lines = [_unescape(found.group("s")) for found in _compiled(_CALL).finditer(code)]
    if name in ("tclsh", "wish", "expect"):  # Tcl: exec CMD ARGS, expect's spawn CMD ARGS; $env(NAME) is $NAME
        lines += [re.sub(r"\$env\((\w+)\)", r"${\1}", m.strip('"'))
                  for m in re.findall(r"""\b(?:exec|spawn)\s+([^\]\n;}]+)""", code)]
    if name == "m4":  # syscmd(`CMD'), esyscmd(`CMD'): m4 quotes with ` and '
        lines += re.findall(r"\be?syscmd\(\s*`?([^)']*)'?\s*\)", code)
    if name == "osascript":
        lines += re.findall(r'do (?:shell )?script\s+"((?:\\.|[^"\\])*)"', code)
    for found in _compiled(_ARGUMENT_LIST).finditer(code):  # perl's exec "/bin/sh", "-c", "..."
        import shlex

        lines.append(shlex.join(re.findall(r"""['"]((?:\\.|[^'"\\])*)['"]""", found.group(1))))
    for found in _compiled(_FILE_AND_ARGV).finditer(code):
        import shlex

        lines.append(shlex.join(re.findall(r"""['"]((?:\\.|[^'"\\])*)['"]""", found.group(3))))
    for found in _compiled(_PROGRAM_AND_LIST).finditer(code):  # spawn('sh', ['-c', '...'])
        items = re.findall(r"""['"]((?:\\.|[^'"\\])*)['"]""", found.group(3))
        import shlex

        lines.append(shlex.join([found.group(2), *items]))
    for found in _compiled(_LIST).finditer(code):
        items = re.findall(r"""['"]((?:\\.|[^'"\\])*)['"]""", found.group(1))
        if items:
            import shlex

            lines.append(shlex.join(items))
    for found in _compiled(_QUOTING).finditer(code):
        lines.append(next(g for g in found.groups() if g is not None))
    lines += [_unescape(found.group("s")) for found in _compiled(_SHELL_IN_LIST).finditer(code)]
    lines += [_unescape(found.group("s")) for found in _compiled(_EXECUTE_METHOD).finditer(code)]
    lines += [_unescape(found.group("s")) for found in _compiled(_RUST_SHELL).finditer(code)]
    lines += [_unescape(found.group("s")) for found in _compiled(_PRINT_TO_SHELL).finditer(code)]
    lines += [re.sub(r"\$ENV\{(\w+)\}", r"${\1}", found.group(1)) for found in _compiled(_CMAKE_PROCESS).finditer(code)]
    for found in _compiled(_AWK_PIPES).finditer(code):
        lines.append(_unescape(found.group("s") or found.group("s2") or ""))
    for found in _compiled(_PERL_BARE).finditer(code):
        text = found.group("s") or found.group("s2")
        if text:
            lines.append(_unescape(text))
    return lines


def fed_lines(code: str) -> list[str]:
    """Commands a program writes into (awk's `print … | "CMD"`, perl's `open(F, "| CMD")`): they read its output."""
    lines = re.findall(r'(?:print|printf)(?:"(?:\\.|[^"\\])*"|[^|;"])*\|&?\s*"((?:\\.|[^"\\])*)"', code)
    lines += re.findall(r"""\bopen\s*\(?[^;]*?['"]\s*\|\s*([^'"]+)['"]""", code)
    return [_unescape(line) for line in lines]


def built_at_run_time(code: str) -> str | None:
    """Why `code` runs something that cannot be judged before it runs, or None."""
    for pattern, why in ((_BUILT, "a process call with a command built at run time"),
                         (_CONCAT, "a process call with a command assembled from pieces"),
                         (_EVAL, "code evaluated at run time")):
        found = _compiled(pattern).search(code)
        if found:
            return f"{why} (`{found.group(0)[:60]}`)"
    found = _compiled(_DECODE).search(code)
    if found and _compiled(_RUNS_ANYTHING).search(code):
        return f"code decoded at run time and run (`{found.group(0)[:60]}`)"
    return None


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
