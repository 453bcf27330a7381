"""Programs that run command lines given in their options or operands.

`git -c core.pager='sh -c ...' log`, `tar --to-command=CMD`, `rsync -e CMD`,
`ssh -o ProxyCommand=CMD`, `vim -c ':!CMD'`, `sed 'e CMD'`, `zip -TT CMD`,
`tmux new-session CMD`, `git submodule foreach CMD` ...: each is as if CMD
were on the line. `commands_of(argv)` gives those lines to judge, and the
reasons a program runs something that cannot be known before it runs.

Sources: git-config(1) (the keys whose values are commands), tar(1), rsync(1),
ssh_config(5), vim(1), gdb(1), GNU sed's manual (`e`), zip(1), tmux(1),
screen(1), as shipped in Debian 12; GTFOBins for which of them matter.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Runs:
    """What a program's options make it run."""

    lines: list[str] = field(default_factory=list)  # command lines, judged as if on the line
    fed: list[str] = field(default_factory=list)  # command lines that read input the line does not show
    opaque: list[str] = field(default_factory=list)  # why something it runs cannot be seen
    contained: list[str] = field(default_factory=list)  # command lines run inside a container it starts


# git configuration keys whose value is a command (a leading `!` in aliases and helpers).
_GIT_COMMAND_KEYS = re.compile(
    r"(?i)^(core\.(sshcommand|pager|editor|askpass|gitproxy|fsmonitor)|sequence\.editor|diff\.external|"
    r"diff\.[^.]+\.(textconv|command)|merge\.[^.]+\.driver|filter\.[^.]+\.(clean|smudge|process)|"
    r"credential(\.[^=]+)?\.helper|gpg(\.[^.]+)?\.program|alias\.[^.]+|pager\.[^.]+|uploadpack\.packobjectshook|"
    r"submodule\.[^.]+\.update|difftool\.[^.]+\.cmd|mergetool\.[^.]+\.cmd|sendemail\.(smtpserver|tocmd|cccmd)|core\.hookspath|"
    r"remote\.[^.]+\.(uploadpack|receivepack|vcs)|protocol\.[^.]+\.allow|include\.path|includeif\..*\.path|"
    r"init\.templatedir|url\..*\.(insteadof|pushinsteadof))$")
_GIT_OPAQUE_KEYS = re.compile(r"(?i)^(core\.hookspath|include\.path|includeif\..*\.path|core\.fsmonitor|"
                              r"init\.templatedir|url\..*\.(insteadof|pushinsteadof))$")
_BOOLEAN = re.compile(r"(?i)^(true|false|yes|no|on|off|1|0|always|never|)$")


def written_paths(argv: list[str]) -> list[str]:
    """The files a command writes through its operands or options (`tee F`, `dd of=F`,
    `cp … F`, `curl -o F`, `unzip -d DIR`, `tar -x -C DIR`, `find -fprint F` ...): judged by
    the same rules as a `> F` redirection."""
    name, args = posixpath.basename(argv[0]), argv[1:]
    operands = [a for a in args if not a.startswith("-") or a == "-"]
    if name in ("tee", "sponge", "truncate"):
        return [a for a in operands if a != "-"]
    if name in ("dd", "dcfldd"):
        return [a[3:] for a in args if a.startswith("of=")]
    if name in ("cp", "mv", "install", "ln", "rsync", "scp"):
        targets = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-t", "--target-directory")]
        return targets or ([operands[-1]] if len(operands) > 1 else [])
    if name in ("curl", "wget"):
        return [args[i + 1] for i, a in enumerate(args[:-1])
                if a in ("-o", "--output", "-O" if name == "wget" else "--output-document", "--output-document")
                or re.fullmatch(r"-[a-zA-Z]*o", a) and name == "curl"
                or re.fullmatch(r"-[a-zA-Z]*O", a) and name == "wget"]
    if name in ("tar", "bsdtar") and any(re.fullmatch(r"-?[a-zA-Z]*[cru][a-zA-Z]*", a) for a in args[:1]) or \
            name in ("tar", "bsdtar") and any(a in ("-c", "--create", "-r", "--append", "-u", "--update") for a in args):
        archive = [a.partition("=")[2] for a in args if a.startswith("--file=")]
        for index, arg in enumerate(args[:-1]):  # -f FILE, -cf FILE, cvf FILE (f last of a group)
            if re.fullmatch(r"-?[a-zA-Z]*f", arg) and (arg.startswith("-") or index == 0):
                archive.append(args[index + 1])
        if archive:
            return archive
    if name in ("unzip", "7z", "bsdtar", "tar", "cpio"):
        found = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-d", "-C", "--directory")]
        return found + [a.partition("=")[2] for a in args if a.startswith(("--directory=", "-o"))
                        and name == "7z" or a.startswith("--directory=")]
    if name == "find":
        return [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-fprint", "-fprint0", "-fprintf", "-fls")]
    if name in ("gawk", "awk") and ("inplace" in args or "--include=inplace" in args):  # gawk -i inplace PROG FILE…
        files = [a for a in operands if a != "inplace"]
        return files[1:]
    if name in ("ed", "red", "ex"):  # an editor's purpose: its file is written (`w`)
        return [a for a in operands if not a.startswith("+")][:1]
    if name in ("vim", "vi", "nvim", "vim.basic", "vim.tiny") and any(  # vim -es -c 'wq' F, vim +wq F
            re.search(r"(^|[|\s:])(w|wq|x|wa|wqa|xa|sav|saveas|update|up)!?(\s|$|\|)", v)
            for v in _short_value(args, "c", ()) + [a[1:] for a in args if a.startswith("+")]):
        values = set(_short_value(args, "c", ()))
        return [a for a in operands if a not in values and not a.startswith("+")]
    return []


def commands_of(argv: list[str]) -> Runs:
    """The command lines `argv` runs through its options (none for most programs)."""
    name = posixpath.basename(argv[0])
    runs = Runs()
    for key in (name, f"{name}.x", f"{name}.K", f"{name}.u"):
        reader = _READERS.get(key)
        if reader is not None:
            reader(argv[1:], runs)
    if name in ("vi", "nvim", "view", "ex", "vimdiff"):
        _READERS["vim.u"](argv[1:], runs)
    return runs


def git_value(key: str, value: str, runs: Runs) -> None:
    if not _GIT_COMMAND_KEYS.match(key):
        return
    if key.lower() == "core.hookspath" and not value.startswith(("/", "~", "$")) and ".." not in value:
        return  # the repository's own hooks directory (.githooks): its hooks are the project's
    if _GIT_OPAQUE_KEYS.match(key):
        if not _BOOLEAN.match(value):
            runs.opaque.append(f"git runs what {key}={value} points to")
            if key.lower() == "core.fsmonitor":  # a command line, or a hook program's path
                runs.lines.append(value)
        return
    if key.lower().startswith("credential") and (value.startswith(("!", "/", ".", "~")) or "/" in value):
        runs.opaque.append(f"git hands stored credentials to the helper {value[:80]}")
        return
    if key.lower().startswith(("alias.", "credential", "submodule.")) and not value.startswith("!"):
        return  # an alias of a git command, a named credential helper
    if key.lower().startswith("protocol.") and value.lower() == "always":
        runs.opaque.append(f"git {key}=always allows transports that run commands")
        return
    runs.lines.append(value.removeprefix("!"))


def _git(args: list[str], runs: Runs) -> None:
    index = 0
    while index < len(args):  # global options, before the subcommand
        arg = args[index]
        if arg == "-c" and index + 1 < len(args):
            key, _, value = args[index + 1].partition("=")
            git_value(key, value, runs)
            index += 2
        elif arg.startswith("--config-env"):
            runs.opaque.append("git --config-env takes a configuration value from the environment")
            index += 1 if "=" in arg else 2
        elif arg.startswith("--template") or arg == "--template":
            runs.opaque.append("git copies hooks from a template directory")
            index += 1 if "=" in arg else 2
        elif arg.startswith("--exec-path="):
            runs.opaque.append("git --exec-path runs git's programs from another directory")
            index += 1
        elif arg in ("-C", "--git-dir", "--work-tree", "--namespace", "--super-prefix"):
            index += 2
        elif arg.startswith("-"):
            index += 1
        else:
            break
    sub, rest = (args[index], args[index + 1:]) if index < len(args) else ("", [])
    if any(w == "--template" or w.startswith("--template=") for w in rest) and sub in ("init", "clone"):
        runs.opaque.append("git copies hooks from a template directory")
    if sub == "config":
        words = [w for w in rest if not w.startswith("-") and w not in ("set", "add")]
        if len(words) >= 2:
            git_value(words[0], words[1], runs)
    elif sub == "submodule" and "foreach" in rest:
        after = [w for w in rest[rest.index("foreach") + 1:] if not w.startswith("-")]
        runs.lines.append(" ".join(after))
    elif sub == "grep":
        runs.lines += [w.partition("=")[2] for w in rest if w.startswith("--open-files-in-pager=")]
        runs.lines += [w[2:] for w in rest if w.startswith("-O") and len(w) > 2]
    elif sub == "bisect" and rest[:1] == ["run"]:  # an argv, run as it is
        runs.lines.append(shlex.join(rest[1:]))
    for i, word in enumerate(rest):
        if sub in ("rebase",) and word in ("-x", "--exec") and i + 1 < len(rest):
            runs.lines.append(rest[i + 1])
        elif sub == "rebase" and word.startswith("--exec="):
            runs.lines.append(word.partition("=")[2])
        elif sub == "difftool" and word in ("-x", "--extcmd") and i + 1 < len(rest):
            runs.lines.append(rest[i + 1])
        elif word.startswith(("--extcmd=", "--upload-pack=", "--receive-pack=", "--exec=")):
            runs.lines.append(word.partition("=")[2])
        elif word in ("-u", "--upload-pack", "--receive-pack") and sub in ("clone", "fetch", "ls-remote", "pull",
                                                                          "push") and i + 1 < len(rest):
            runs.lines.append(rest[i + 1])
        elif word.startswith("ext::"):
            runs.lines.append(word[5:].replace("%S", "git-upload-pack").replace("% ", " "))


def _tar(args: list[str], runs: Runs) -> None:
    for i, word in enumerate(args):
        name, eq, value = word.partition("=")
        if name == "--to-command" and eq:
            runs.fed.append(value)  # each member's content is its input
        elif name in ("--use-compress-program", "--info-script", "--new-volume-script", "--rsh-command") and eq:
            runs.lines.append(value)
        elif name == "--checkpoint-action" and value.startswith("exec="):
            runs.lines.append(value[5:])
        elif word == "--to-command" and i + 1 < len(args):
            runs.fed.append(args[i + 1])
        elif word in ("-I", "-F", "--use-compress-program", "--info-script", "--new-volume-script",
                      "--rsh-command") and i + 1 < len(args):
            runs.lines.append(args[i + 1])


def _short_value(args: list[str], letter: str, long: tuple[str, ...]) -> list[str]:
    """Values of `-X VALUE`, `-X=…`, `-abX VALUE` (X last of a group), `--long=V`, `--long V`."""
    values = []
    for i, word in enumerate(args):
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name in long:
                values.append(value if eq else (args[i + 1] if i + 1 < len(args) else ""))
        elif word.startswith("-") and letter in word[1:]:
            at = word.index(letter, 1)
            attached = word[at + 1:]
            if word[1:at] and not word[1:at].isalpha():
                continue
            values.append(attached if attached else (args[i + 1] if i + 1 < len(args) else ""))
    return values


def _rsync(args: list[str], runs: Runs) -> None:
    runs.lines += _short_value(args, "e", ("--rsh",))


def _ssh(args: list[str], runs: Runs) -> None:
    for value in _short_value(args, "o", ()):
        parts = re.split(r"\s*=\s*|\s+", value.strip(), maxsplit=1)
        if len(parts) == 2 and parts[0].lower() in ("proxycommand", "localcommand", "knownhostscommand",
                                                    "remotecommand"):
            runs.lines.append(parts[1].replace("%h", "host").replace("%p", "22"))


def _scp(args: list[str], runs: Runs) -> None:
    _ssh(args, runs)
    runs.lines += _short_value(args, "S", ())


def _less(args: list[str], runs: Runs) -> None:
    """less +CMD (and ++CMD, LESS=...: not read here) runs CMD as a less command; `!` is a shell escape."""
    for arg in args:
        if arg.startswith("+"):
            command = arg.lstrip("+")
            if command.startswith("!"):
                runs.lines.append(command[1:])
            elif command.startswith("|"):  # |X: pipe to a command
                runs.lines.append(command[2:])


def _vim(args: list[str], runs: Runs) -> None:
    commands = _short_value(args, "c", ("--cmd",)) + [a[1:] for a in args if a.startswith("+")]
    for command in commands:
        found = re.match(r"^\s*:?\s*(?:\d*,?\d*\s*)?(?:!|(?:silent\s*!?\s*)?!|term(?:inal)?\s+|sh(?:ell)?$)(.*)",
                         command)
        if found:
            runs.lines.append(found.group(1) or "sh")
        for string in re.findall(r"""system\s*\(\s*['"]([^'"]*)['"]""", command):
            runs.lines.append(string)
        if re.search(r"\b(py3?|python3?|pyx|perl|ruby|lua)(do)?\b|\bexe(cute)?\b|\bsystem\s*\(", command) and \
                not found:
            runs.opaque.append(f"the editor runs `{command[:80]}`")


def _gdb(args: list[str], runs: Runs) -> None:
    for value in [args[i + 1] for i, w in enumerate(args[:-1]) if w in ("-ex", "--ex", "-eval-command",
                                                                        "--eval-command", "-iex")]:
        found = re.match(r"^\s*(?:shell|!|pipe\s.*\|)\s*(.*)", value)
        if found:
            runs.lines.append(found.group(1))
        elif re.match(r"^\s*(python|py|guile)\b", value):
            runs.opaque.append(f"gdb runs a program: `{value[:80]}`")
        runs.lines += re.findall(r"""\bsystem\s*\(\s*"((?:\\.|[^"\\])*)"\s*\)""", value)  # call system("…") in the process


def _sed(args: list[str], runs: Runs) -> None:
    scripts = [a for a in args if not a.startswith("-")][:1]
    scripts += [args[i + 1] for i, w in enumerate(args[:-1]) if w in ("-e", "--expression")]
    for script in scripts:
        for command in re.findall(r"(?:^|[;\n{}])\s*(?:\d+|\$|/[^/]*/)?,?\s*e\s+([^;\n}]+)", script):
            runs.lines.append(command)
        if re.search(r"(?:^|[;\n])\s*(?:\d+|\$|/[^/]*/)?,?\s*s(.).*?\1.*?\1[gpiImM0-9w]*e", script):
            runs.opaque.append("sed's e flag runs the text it makes as a command")


def _zip(args: list[str], runs: Runs) -> None:
    runs.lines += [args[i + 1] for i, w in enumerate(args[:-1]) if w in ("-TT", "--unzip-command")]
    runs.lines += [w.partition("=")[2] for w in args if w.startswith("--unzip-command=")]


_TMUX_RUNS = frozenset({"new", "new-session", "new-window", "neww", "split-window", "splitw", "respawn-pane",
                        "respawnp", "respawn-window", "respawnw", "run-shell", "run", "display-popup", "popup",
                        "send-keys", "send", "pipe-pane", "pipep", "if-shell", "if"})
_TMUX_VALUES = frozenset({"-t", "-s", "-n", "-c", "-x", "-y", "-e", "-F", "-l", "-L", "-S", "-f", "-T", "-w", "-d",
                          "-h", "-b", "-N"}) - {"-d", "-h", "-b"}


def _tmux(args: list[str], runs: Runs) -> None:
    for index, word in enumerate(args):
        if word in _TMUX_RUNS:
            rest, words = args[index + 1:], list[str]()
            skip = False
            for item in rest:
                if skip:
                    skip = False
                elif item in _TMUX_VALUES:
                    skip = True
                elif item.startswith("-") and not words:
                    continue
                elif item in (";", "\\;"):
                    break
                else:
                    words.append(item)
            if words:
                runs.lines.append(" ".join(w for w in words if w not in ("Enter", "C-m")))
            return


def _screen(args: list[str], runs: Runs) -> None:
    rest = list(args)
    while rest and rest[0].startswith("-"):
        # -dmS NAME: a group of flags whose last takes a value
        takes_value = rest[0] in ("-Logfile",) or re.fullmatch(r"-[a-zA-Z]*[ScehpstTX]", rest[0]) is not None
        rest = rest[2:] if takes_value and rest[0] not in ("-L",) else rest[1:]
    if rest:
        runs.lines.append(shlex.join(rest))
    stuffed = [args[i + 2] for i, w in enumerate(args[:-2]) if w == "-X" and args[i + 1] == "stuff"]
    runs.lines += stuffed


def _make(args: list[str], runs: Runs) -> None:
    for word in args:
        if word.startswith(("--eval=", "SHELL=", ".SHELLFLAGS=")) or "$(shell" in word:
            runs.opaque.append(f"make runs what `{word[:80]}` makes")
        name, eq, value = word.partition("=")
        if eq and name in ("CC", "CXX", "CPP", "LD", "AR", "AS", "FC", "MAKE", "INSTALL", "RM", "PYTHON", "CARGO"):
            runs.lines.append(value)  # the recipes run it as a command


def _compiler(args: list[str], runs: Runs) -> None:
    for index, word in enumerate(args):  # gcc -wrapper PROG,ARGS runs every tool through PROG
        if word == "-wrapper" and index + 1 < len(args):
            runs.lines.append(shlex.join(args[index + 1].split(",")))


def _go(args: list[str], runs: Runs) -> None:
    runs.lines += [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-exec", "--exec")]
    runs.lines += [a.partition("=")[2] for a in args if a.startswith(("-exec=", "--exec=", "-toolexec="))]
    runs.lines += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-toolexec"]


_EMACS_SHELL = r'\((?:shell-command|async-shell-command|shell-command-to-string)\s+"((?:\\.|[^"\\])*)"'


def _emacs(args: list[str], runs: Runs) -> None:
    for index, word in enumerate(args):
        if word in ("--eval", "-eval", "--execute") and index + 1 < len(args) or word.startswith("--eval="):
            form = word.partition("=")[2] if "=" in word else args[index + 1]
            runs.lines += re.findall(_EMACS_SHELL, form)
            if re.search(r"\b(call-process|start-process|make-process|eval|load)\b", form):
                runs.opaque.append(f"emacs evaluates `{form[:80]}`")


def _loads_file(option_names: tuple[str, ...], inert: tuple[str, ...]) -> Callable[[list[str], Runs], None]:
    """Programs whose option names a file of commands or settings they then obey (vim -u, gdb -x, curl -K)."""
    def read(args: list[str], runs: Runs) -> None:
        for index, word in enumerate(args):
            value = args[index + 1] if word in option_names and index + 1 < len(args) else \
                (word.partition("=")[2] if word.partition("=")[0] in option_names and "=" in word else None)
            if value is not None and value not in inert:
                runs.opaque.append(f"runs what the file {value[:80]} says")
    return read


def _pip(args: list[str], runs: Runs) -> None:
    words = [a for a in args if not a.startswith("-")]
    if words[:2] == ["config", "set"] and len(words) > 2 and re.search(r"index-url|trusted-host|find-links", words[2]):
        runs.opaque.append(f"pip installs from {words[3] if len(words) > 3 else 'another index'} from now on")


def _dc(args: list[str], runs: Runs) -> None:
    """dc -e PROGRAM: `!` runs the rest of the line as a shell command."""
    for value in [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-e", "--expression")]:
        runs.lines += re.findall(r"!([^\n]+)", value)


def _man(args: list[str], runs: Runs) -> None:
    runs.lines += _short_value(args, "P", ("--pager",))


def _ssh_remote(args: list[str], runs: Runs) -> None:
    _ssh(args, runs)
    values = {"-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-Q", "-R",
              "-S", "-W", "-w", "-B"}
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 2 if args[index] in values else 1
    remote = args[index + 1:]
    if remote:  # the remote command: destructive there is destructive all the same
        runs.lines.append(" ".join(remote))


def _adb(args: list[str], runs: Runs) -> None:
    """adb [-s SERIAL] shell CMD: destructive on the device is destructive."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("-s", "-t", "-H", "-P", "-L") else rest[1:]
    if rest[:1] == ["shell"] and len(rest) > 1:
        runs.lines.append(" ".join(rest[1:]))  # adb joins its words into one line for the device's shell


_RUN_VALUES = frozenset({
    "-v", "--volume", "-e", "--env", "-p", "--publish", "--name", "--network", "--net", "-w", "--workdir",
    "-u", "--user", "--entrypoint", "--restart", "-m", "--memory", "--cpus", "--mount", "-l", "--label",
    "--env-file", "--add-host", "--dns", "-h", "--hostname", "--platform", "--pull", "--cap-add", "--cap-drop",
    "--security-opt", "--device", "--tmpfs", "--ulimit", "--shm-size", "--log-driver", "--log-opt", "--gpus",
    "--ipc", "--pid", "--cgroupns", "--stop-signal", "--stop-timeout", "--health-cmd", "--expose", "--link",
    "--memory-swap", "--cpu-shares", "--userns", "--uts", "--runtime", "--volumes-from", "--group-add", "--cidfile",
    "--annotation", "-a", "--attach",
})


def _run_in_container(args: list[str], runs: Runs) -> None:
    """docker/podman run [OPTIONS] IMAGE CMD…: the container's command (what it serves or fetches there
    reaches the network all the same; see Runs.contained)."""
    if "run" not in args[:2] or args[:1] in (["compose"], ["container"]) and "run" not in args[:2]:
        return
    rest = args[args.index("run") + 1:]
    while rest and rest[0].startswith("-"):
        option = rest[0].partition("=")[0]
        rest = rest[2:] if option in _RUN_VALUES and "=" not in rest[0] else rest[1:]
    if len(rest) > 1:
        runs.contained.append(shlex.join(rest[1:]))


def _exec_in_container(args: list[str], runs: Runs) -> None:
    """kubectl exec POD -- CMD, docker/podman exec CONTAINER CMD: destructive there is destructive."""
    _run_in_container(args, runs)
    if "exec" not in args[:3]:
        return
    if "--" in args:  # an argv, run as it is (no shell joins it)
        runs.lines.append(shlex.join(args[args.index("--") + 1:]))
        return
    rest = args[args.index("exec") + 1:]
    values = {"-u", "--user", "-w", "--workdir", "-e", "--env", "--env-file", "--detach-keys", "-c", "--container",
              "-n", "--namespace"}
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in values else rest[1:]
    if len(rest) > 1:
        runs.lines.append(shlex.join(rest[1:]))


def _npm_config(args: list[str], runs: Runs) -> None:
    if "exec" in args[:2] or "x" in args[:1]:  # npm exec -c 'CMD', npm exec -- CMD ARGS
        runs.lines += [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--call")]
        if "--" in args:
            runs.lines.append(shlex.join(args[args.index("--") + 1:]))
        runs.lines += [a.partition("=")[2] for a in args if a.startswith("--call=")]
    words = [a for a in args if not a.startswith("-")]
    if words[:1] == ["set-script"] and len(words) > 2:  # npm set-script NAME CMD (npm 7)
        runs.lines.append(words[2])
    if words[:2] == ["pkg", "set"]:  # npm pkg set scripts.postinstall=CMD: run by every later npm install
        runs.lines += [w.partition("=")[2] for w in words[2:] if w.startswith("scripts.") and "=" in w]
    if words[:2] in (["config", "set"], ["set"]) or words[:1] == ["config"] and "set" in words:
        key = words[words.index("set") + 1] if "set" in words and words.index("set") + 1 < len(words) else ""
        if key.split("=")[0] in ("script-shell", "shell", "git", "node-options", "onload-script", "init-module",
                                 "editor", "browser", "viewer"):
            runs.opaque.append(f"npm config {key.split('=')[0]} makes npm run another program")


def _ansible(args: list[str], runs: Runs) -> None:
    """ansible HOSTS -m shell|command|raw -a 'CMD' (command is the default module)."""
    module = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-m", "--module-name")), "command")
    if module.rpartition(".")[2] in ("shell", "command", "raw", "script"):
        runs.lines += [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-a", "--args")]


def _database_shell(args: list[str], runs: Runs) -> None:
    """Database shells' own escapes to a shell: sqlite3/duckdb `.shell`/`.system`, psql and mysql
    `\\! CMD` (and mysql `system CMD`), PostgreSQL's `COPY ... TO/FROM PROGRAM 'CMD'`."""
    for arg in args:
        for found in re.finditer(r"(?:^|;|\n)\s*(?:\.shell|\.system|\\!|system)\s+([^;\n]+)", arg):
            runs.lines.append(found.group(1))
        for found in re.finditer(r"(?i)\bPROGRAM\s+'((?:[^']|'')*)'", arg):
            runs.lines.append(found.group(1).replace("''", "'"))


_READERS: dict[str, Callable[[list[str], Runs], None]] = {
    "ansible": _ansible, "sqlite3": _database_shell, "duckdb": _database_shell, "psql": _database_shell,
    "mysql": _database_shell, "mariadb": _database_shell,
    "kubectl": _exec_in_container, "oc": _exec_in_container, "docker": _exec_in_container,
    "podman": _exec_in_container, "nerdctl": _exec_in_container, "npm": _npm_config, "yarn": _npm_config,
    "pnpm": _npm_config,
    "git": _git, "tar": _tar, "bsdtar": _tar, "rsync": _rsync, "ssh": _ssh_remote, "autossh": _ssh_remote,
    "scp": _scp, "sftp": _scp, "vim": _vim, "vi": _vim, "nvim": _vim, "view": _vim, "ex": _vim, "vimdiff": _vim,
    "rvim": _vim, "gdb": _gdb, "sed": _sed, "gsed": _sed, "zip": _zip, "tmux": _tmux, "screen": _screen,
    "make": _make, "gmake": _make, "man": _man, "dc": _dc, "gcc": _compiler, "cc": _compiler, "g++": _compiler,
    "c++": _compiler, "go": _go, "emacs": _emacs, "vim.basic": _vim,
    "pip": _pip, "pip3": _pip, "less": _less, "adb": _adb,
    "gdb.x": _loads_file(("-x", "--command", "-ix"), ()),
    "curl.K": _loads_file(("-K", "--config"), ()),
    "vim.u": _loads_file(("-u",), ("NONE", "NORC", "DEFAULTS")),
}
