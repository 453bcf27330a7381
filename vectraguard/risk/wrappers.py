"""Commands that run another command: what they run, read from their options.

One table (`WRAPPERS`), data rather than branches: for each wrapper, the
options that take a value (`-n 5`, `-n5`, `--adjustment=5` all consume it),
the options whose value is a whole command line for a shell (`flock -c`,
`script -c`, `su -c`), the options with which it runs nothing (`command -v`,
`ionice -p`), the operands before the wrapped command (`timeout DURATION`,
`flock FILE`, `chroot DIR`), and whether the rest is joined into one line
(`watch`, `sg`). An option the table does not know is taken as a flag
without a value: the command is then found one word early rather than
missed (`nice --foo rm -rf ~` still shows `rm`).

Sources: each program's manual page (coreutils, util-linux, sudo, systemd,
GNU parallel, findutils) as shipped in Debian 12.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Wrapper:
    values: frozenset[str] = frozenset()  # options that take a value
    lines: frozenset[str] = frozenset()  # options whose value is a command line
    inert: frozenset[str] = frozenset()  # options with which nothing is run
    split: frozenset[str] = frozenset()  # options whose value is split into the command's words (env -S)
    before: int = 0  # operands before the wrapped command
    joined: bool = False  # the command's words are joined into one line for a shell
    assignments: bool = False  # NAME=VALUE words before the command
    subcommand: str = ""  # `poetry run CMD`: the word that must come first
    pairs: frozenset[str] = frozenset()  # options that take two values (bwrap --bind SRC DEST)


def _w(values: str = "", lines: str = "", inert: str = "", **kw: object) -> Wrapper:
    return Wrapper(frozenset(values.split()), frozenset(lines.split()), frozenset(inert.split()), **kw)  # type: ignore[arg-type]


_SUDO = "-u --user -g --group -C --close-from -h --host -p --prompt -r --role -t --type -D --chdir -U --other-user " \
        "-T --command-timeout -R --chroot"
_SYSTEMD = "-p --property --description --slice -E --setenv --uid --gid --nice --working-directory -M --machine " \
           "-H --host --unit -u --on-active --on-boot --on-startup --on-unit-active --on-unit-inactive " \
           "--on-calendar --timer-property --path-property --socket-property --service-type -g --group -D --chdir"

WRAPPERS: dict[str, Wrapper] = {
    "env": _w("-u --unset -C --chdir -a --argv0", split=frozenset({"-S", "--split-string"}), assignments=True),
    "nice": _w("-n --adjustment"),
    "nohup": _w(), "setsid": _w(), "unbuffer": _w(), "builtin": _w(), "chronic": _w(), "ifne": _w(),
    "catchsegv": _w(), "dbus-launch": _w(), "torsocks": _w(), "tsocks": _w(), "caffeinate": _w("-t -w"),
    "proxychains": _w("-f"), "proxychains4": _w("-f"), "fakeroot": _w("-l --lib --faked -s -i -b"),
    "xvfb-run": _w("-n --server-num -s --server-args -f --auth-file -e --error-file -w --wait -p --xauth-protocol"),
    "time": _w("-f --format -o --output"),
    "command": _w(inert="-v -V"),
    "exec": _w("-a"),
    "stdbuf": _w("-i -o -e --input --output --error"),
    "ionice": _w("-c -n --class --classdata", inert="-p --pid -P --pgid -u --uid"),
    "chrt": _w("-T -P -D --sched-runtime --sched-period --sched-deadline", inert="-p --pid -m --max", before=1),
    "taskset": _w(inert="-p --pid", before=1),
    "timeout": _w("-s --signal -k --kill-after", before=1),
    "flock": _w("-w --timeout -E --conflict-exit-code", "-c --command", before=1),
    "script": _w("-E --echo -I --log-in -O --log-out -B --log-io -T --log-timing -m --logging-format",
                 "-c --command"),
    "systemd-run": _w(_SYSTEMD),
    "run0": _w(_SYSTEMD + " --background"),
    "watch": _w("-n --interval -q --equexit", joined=True),
    "xargs": _w("-n --max-args -I -L --max-lines -P --max-procs -d --delimiter -E -s --max-chars -a --arg-file "
                "--process-slot-var"),
    "busybox": _w(),
    "toybox": _w(),
    "rlwrap": _w("-b -C -D -f -F -g -H -l -O -P -q -s -S -t -w -z --break-chars --command-name --history-no-dupes "
                 "--file --history-format --forget-matching --history-filename --logfile --prompt-colour "
                 "--pre-given --quote-characters --histsize --substitute-prompt --set-term-name --polling "
                 "--filter"),
    "sudo": _w(_SUDO, inert="-l --list -v --validate -k --reset-timestamp -K --remove-timestamp -e --edit -V"),
    "doas": _w("-u -C"),
    "pkexec": _w("--user"),
    "su": _w("-s --shell -g --group -G --supp-group -w --whitelist-environment", "-c --command",
             inert="-h --help"),
    "runuser": _w("-u --user -s --shell -g --group -G --supp-group -w --whitelist-environment", "-c --command"),
    "sg": _w(lines="-c", before=1, joined=True),
    "flatpak-spawn": _w("--forward-fd --directory --env --sandbox-expose --sandbox-expose-ro --app-path --usr-path"),
    "host-spawn": _w(), "distrobox-host-exec": _w(), "arch": _w("-e"),
    "dbus-run-session": _w("--config-file --dbus-daemon"), "ssh-agent": _w("-a -E -P -t", inert="-k -s -c -D"),
    "npx": _w("-p --package", "-c --call"), "bunx": _w("-p --package"),
    "setpriv": _w("--reuid --regid --groups --inh-caps --ambient-caps --bounding-set --securebits --pdeathsig "
                  "--selinux-label --apparmor-profile --landlock-access --landlock-rule --ruid --euid --rgid --egid"),
    "unshare": _w("--map-user --map-group --map-users --map-groups --propagation --setgroups -S --setuid -G --setgid "
                  "-R --root -w --wd --monotonic --boottime"),
    "nsenter": _w("-t --target -S --setuid -G --setgid"),
    "chroot": _w("--userspec --groups", before=1),
    "strace": _w("-o -e -p -s -u -E -a -b -I -O -S -P -X"),
    "ltrace": _w("-o -e -p -s -u -n -a -l -L -x"),
    "valgrind": _w(), "capsh": _w(),
    "entr": _w(),
    "sem": _w("-j --jobs --id"),
    "firejail": _w(),
    "cpulimit": _w("-l --limit -p --pid -e --exe -c --cpu -m"),
    "logsave": _w("", before=1),
    "prlimit": _w("-p --pid -o --output"),
    # bubblewrap: options with one value, and those with two (--bind SRC DEST).
    "bwrap": _w("--args --userns --userns2 --pidns --uid --gid --hostname --chdir --unsetenv --lock-file "
                "--sync-fd --remount-ro --exec-label --file-label --proc --dev --tmpfs --mqueue --dir --seccomp "
                "--add-seccomp-fd --block-fd --userns-block-fd --info-fd --json-status-fd --cap-add --cap-drop "
                "--perms --size --overlay-src --tmp-overlay --ro-overlay "
                # these take two values (pairs, below): the first is taken as their value
                "--bind --bind-try --dev-bind --dev-bind-try --ro-bind --ro-bind-try --symlink --setenv --chmod "
                "--file --bind-data --ro-bind-data",
                pairs=frozenset(["--bind", "--bind-try", "--dev-bind", "--dev-bind-try", "--ro-bind", "--ro-bind-try", "--symlink", "--setenv", "--chmod", "--file", "--bind-data", "--ro-bind-data"])),
    "aws-vault": _w("-d --duration --region -t --mfa-token", subcommand="exec", before=1),
    "uv": _w("--python -p --with --project --directory --package --env-file", subcommand="run"),
    "poetry": _w(subcommand="run"), "pipenv": _w(subcommand="run"), "pdm": _w(subcommand="run"),
    "hatch": _w(subcommand="run"), "rye": _w(subcommand="run"),
    "conda": _w("-n --name -p --prefix", subcommand="run"), "mamba": _w("-n --name -p --prefix", subcommand="run"),
    "bundle": _w(subcommand="exec"), "mise": _w(subcommand="exec"), "asdf": _w(subcommand="exec"),
    "direnv": _w(subcommand="exec", before=1),
    "op": _w("--env-file", subcommand="run"), "doppler": _w("-p --project -c --config", subcommand="run"),
    "dotenvx": _w("-f --env-file", subcommand="run"),
    "cross-env": _w(assignments=True), "env-cmd": _w("-f --file -e --environments"),
    "nix-shell": _w("-p --packages -A --attr -I --arg --argstr", "--run --command"),
}
# With these options, sudo and doas run the command through the target user's shell.
SHELL_OPTIONS = {"sudo": ("-s", "--shell", "-i", "--login"), "doas": ("-s",)}


@dataclass(frozen=True)
class Inner:
    """What a wrapper runs: an argv, or a command line for a shell."""

    argv: tuple[str, ...] = ()
    line: str | None = None


def is_wrapper(name: str) -> bool:
    return name in WRAPPERS


def unwrap(argv: list[str]) -> list[Inner]:
    """What `argv` (a wrapper's) runs; [] when it runs nothing it was given.

    xargs and parallel are not here: their commands get arguments from input
    (see `xargs` and `parallel`)."""
    name = posixpath.basename(argv[0])
    spec = WRAPPERS.get(name)
    if spec is None:
        return [Inner(tuple(argv))]
    rest = argv[1:]
    if spec.subcommand:
        while rest and rest[0].startswith("-"):  # global options before the subcommand
            rest = rest[2:] if rest[0] in spec.values else rest[1:]
        if not rest or rest[0] != spec.subcommand:
            return []
        rest = rest[1:]
    found: list[Inner] = []
    shell = False
    while rest:
        arg = rest[0]
        if arg == "--":
            rest = rest[1:]
            break
        if not arg.startswith("-") or arg == "-":
            if spec.assignments and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", arg, re.DOTALL):
                rest = rest[1:]
                continue
            break
        option, value, rest = _option(arg, rest[1:], spec)
        if option in spec.pairs and rest:  # the second value
            rest = rest[1:]
        if option in spec.inert:
            return found
        if option in spec.lines and value is not None:
            found.append(Inner(line=value))
        if option in spec.split and value is not None:  # env -S: its own quoting, much like a shell's
            try:
                words = shlex.split(value)
            except ValueError:
                words = value.split()
            return [*found, *unwrap(["env", *words, *rest])] if words else found
        shell |= option in SHELL_OPTIONS.get(name, ())
        if name == "nice" and re.fullmatch(r"-\d+", arg):
            continue
    if found:
        return found
    if name in ("su", "runuser") and not ("-u" in argv or "--user" in argv):
        return []  # `su USER`: an interactive shell (its -c was taken above)
    if name == "script":
        return []  # without -c, an interactive shell
    if name == "flock" and len(rest) == 1 and rest[0].isdigit():
        return []  # `flock FD`: locks a descriptor, runs nothing
    if name == "capsh":
        return [Inner(("bash", *rest))]
    for _ in range(spec.before):
        if rest and name in ("chrt", "taskset", "timeout") and not re.fullmatch(r"[-+\d.x,a-fA-F]+[smhd]?", rest[0]):
            break  # `timeout rm ...` (bad usage) still shows rm
        rest = rest[1:]
    if spec.before and rest and rest[0] in spec.lines:  # `flock FILE -c CMD`: options may follow the operand
        return [Inner(line=rest[1] if len(rest) > 1 else "")]
    while spec.assignments and rest and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", rest[0], re.DOTALL):
        rest = rest[1:]
    if not rest:
        return []
    if spec.joined or shell:
        return [Inner(line=" ".join(rest))]
    return [Inner(tuple(rest))]


def _option(arg: str, following: list[str], spec: Wrapper) -> tuple[str, str | None, list[str]]:
    """(the option, its value if it takes one, the words after it)."""
    if arg.startswith("--"):
        option, eq, attached = arg.partition("=")
        if eq:
            return option, attached, following
        takes = option in spec.values or option in spec.lines or option in spec.split
        return (option, following[0], following[1:]) if takes and following else (option, None, following)
    # Short options may be combined (`-xc CMD`, `-n5`, `-iu root`): the first that takes a value ends the group.
    for index, letter in enumerate(arg[1:], start=1):
        option = "-" + letter
        if option in spec.values or option in spec.lines or option in spec.split:
            attached = arg[index + 1:]
            if attached:
                return option, attached, following
            return (option, following[0], following[1:]) if following else (option, None, following)
        if option in spec.inert:
            return option, None, following
    return arg[:2], None, following


def xargs(argv: list[str]) -> list[str]:
    """The command xargs runs, with its input (unknown) as `{}`: in place of
    the replace string (`-I%`, `-i`, `--replace`), else appended."""
    rest, replace = argv[1:], None
    spec = WRAPPERS["xargs"]
    while rest and rest[0].startswith("-") and rest[0] != "--":
        arg = rest[0]
        if arg.startswith(("-i", "--replace")):
            replace = arg.partition("=")[2] if arg.startswith("--replace") else arg[2:]
            replace = replace or "{}"
            rest = rest[1:]
            continue
        option, value, rest = _option(arg, rest[1:], spec)
        if option in spec.pairs and rest:  # the second value
            rest = rest[1:]
        if option == "-I" and value is not None:
            replace = value
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if not rest:
        return ["echo", "{}"]
    if replace is None:
        return [*rest, "{}"]
    return [word.replace(replace, "{}") for word in rest]


def parallel(argv: list[str]) -> list[Inner]:
    """GNU parallel: the command template with each input after `:::` in
    place of `{}` (or appended); with no template, each input is a command line."""
    words = argv[1:]
    marker = next((i for i, w in enumerate(words) if w in (":::", "::::", ":::+", "::::+")), len(words))
    template, inputs = words[:marker], [w for w in words[marker + 1:] if w not in (":::", ":::+")]
    spec = _w("-j --jobs -S --sshlogin -a --arg-file -d --delimiter -n --max-args -N --colsep --results --tmpdir "
              "--timeout -I --tagstring --retries --delay --halt --memfree --load --joblog --workdir --wd -E")
    while template and template[0].startswith("-"):
        _, _, template = _option(template[0], template[1:], spec)
    if not template:
        return [Inner(line=item) for item in inputs] or [Inner(line="{}")]
    items = inputs or ["{}"]
    if any("{}" in w for w in template):
        return [Inner(line=" ".join(w.replace("{}", item) for w in template)) for item in items]
    return [Inner(line=" ".join([*template, item])) for item in items]
