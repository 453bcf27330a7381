"""How a shell is asked to run something: its options, read as the shell reads them.

`bash -o errexit -xc -- 'SCRIPT' NAME ARG...` runs SCRIPT with $0=NAME and
$1=ARG; `-c` only sets a mode, the script is the first operand after all
options (`bash -c -x 'SCRIPT'` works), `-o`/`+o`/`-O`/`+O` take a value,
`--rcfile`/`--init-file` name a file that runs first, `-s` (or no operand)
reads the program from input, otherwise the first operand is a script file.
Sources: bash(1) INVOCATION and dash(1) as shipped in Debian 12; fish(1) for
`-c`/`--command` and `-C`/`--init-command`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "rbash", "yash", "posh", "busybox-sh",
                    "tcsh", "csh"})
_VALUE_OPTIONS = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
_INERT = frozenset({"--help", "--version", "--dump-strings", "--dump-po-strings", "-n", "--noexec", "--pretty-print"})
# Variables a program runs as a command line, or reads a file of code from,
# when set before it (`PAGER='sh -c ...' git log`, `BASH_ENV=f bash -c ...`).
COMMAND_VARIABLES = frozenset({
    "PAGER", "GIT_PAGER", "MANPAGER", "SYSTEMD_PAGER", "EDITOR", "VISUAL", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
    "SUDO_EDITOR", "GIT_SSH_COMMAND", "GIT_SSH", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS",
    "LESSOPEN", "LESSCLOSE", "PROMPT_COMMAND", "BROWSER", "GIT_PROXY_COMMAND", "RSYNC_RSH", "TAR_RSH", "FCEDIT",
    "PS0", "PS1", "PS4",
})
# (NODE_OPTIONS, PERL5OPT, RUBYOPT load code only with some options: risk/classify.py looks at their value.)
CODE_FILE_VARIABLES = frozenset({"BASH_ENV", "ENV", "ZDOTDIR", "LD_PRELOAD", "LD_AUDIT", "PERL5DB",
                                 "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_TEMPLATE_DIR", "GIT_EXEC_PATH",
                                 "PYTHONSTARTUP"})


# Variables that send package installs to another index (install code runs here).
SOURCE_VARIABLES = frozenset({"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST",
                              "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "NPM_CONFIG_REGISTRY",
                              "npm_config_registry", "YARN_REGISTRY", "npm_config_script_shell",
                              "NPM_CONFIG_SCRIPT_SHELL", "GOPROXY", "CARGO_REGISTRIES_CRATES_IO_INDEX"})
# Search paths for code: judged when they point outside the working directory.
SEARCH_PATH_VARIABLES = frozenset({"PYTHONPATH", "PERL5LIB", "PERLLIB", "RUBYLIB", "NODE_PATH", "LD_LIBRARY_PATH",
                                   "GEM_PATH", "CLASSPATH", "LUA_PATH", "LUA_CPATH"})


@dataclass
class ShellCall:
    """What one shell invocation runs."""

    script: str | None = None  # the -c command line
    file: str | None = None  # a script file operand
    positional: list[str] = field(default_factory=list)  # $0, $1, ... as the script sees them
    reads_input: bool = False  # the program comes from standard input
    startup: list[str] = field(default_factory=list)  # files run first (--rcfile, --init-file)
    startup_lines: list[str] = field(default_factory=list)  # fish -C
    runs_nothing: bool = False  # --help, -n ...


def read(argv: list[str]) -> ShellCall:
    """Read a shell's argv (argv[0] the shell)."""
    call = ShellCall()
    args, command_mode, stdin_mode = argv[1:], False, False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("--", "-"):
            index += 1
            break
        if arg in _INERT:
            call.runs_nothing = True
            return call
        if arg in _VALUE_OPTIONS:
            if arg in ("--rcfile", "--init-file") and index + 1 < len(args):
                call.startup.append(args[index + 1])
            index += 2
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in ("--command", "--init-command"):  # fish
                text = value if eq else (args[index + 1] if index + 1 < len(args) else "")
                index += 1 if eq else 2
                if name == "--command":
                    call.script, command_mode = text, True
                    call.positional = [argv[0], *args[index:]]
                    return call
                call.startup_lines.append(text)
                continue
            index += 1
            continue
        if arg[0] in "-+" and len(arg) > 1:
            letters = arg[1:]
            index += 1
            if "o" in letters or "O" in letters:  # `-eo pipefail`: the value follows
                index += 1
            if arg[0] == "-":
                command_mode |= "c" in letters
                stdin_mode |= "s" in letters
                if "C" in letters and argv[0].endswith("fish"):  # fish -C LINE: run before anything else
                    call.startup_lines.append(args[index] if index < len(args) else "")
                    index += 1
            continue
        break
    operands = args[index:]
    if command_mode:
        call.script = operands[0] if operands else ""
        call.positional = operands[1:] or [argv[0]]
    elif stdin_mode or not operands:
        call.reads_input = True
        call.positional = [argv[0], *operands]
    else:
        call.file = operands[0]
        call.positional = operands
    return call
