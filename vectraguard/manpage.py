"""man/vectraguard.1, generated from the parser (cli.build_parser) by
contrib/make-manpage.sh; tests/test_manpages.py checks the committed page is
what this module makes of the parser today.

Our own generator rather than argparse-manpage: that tool prints every
subcommand's argparse usage and options whole, so the two dozen run options
appeared five times (run, sandbox run, sandbox shell, agent start, pool
start, check, approvals grant). Here each option is described once:

- an option a command shares, identically (flags, help, metavar, choices),
  with `vectraguard run` is described under run, and the command names it
  in one line that refers there;
- an option several other commands share identically (`--json`) is
  described once under "Options of several commands";
- any other option is described under its command.

Commands and options are walked from the parser, so a command or option
added to cli.py appears without a change here. The hand-written sections
(EXAMPLES, FILES, ENVIRONMENT, EXIT STATUS, SEE ALSO) are the data below.
Output: man(7) roff, ASCII escapes only where roff needs them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

NAME_LINE = "run commands, scripts and AI agents in locked-down Podman sandboxes"
RUN_PROG = "vectraguard run"
SHARED_TITLE = "Options of several commands"

EXAMPLES = [
    ("Run an installer you have not read in the strictest shipped profile:",
     "vectraguard run \\-\\-profile untrusted \\-\\- ./install.sh"),
    ("Let a build reach the package registries only, with more memory:",
     "vectraguard run \\-\\-allow pypi.org \\-\\-allow files.pythonhosted.org \\-\\-memory 2Gi \\-\\- pip install .\n"),
    ("An interactive shell, or one shell command line, in a fresh sandbox (recorded):",
     "vectraguard sandbox shell\nvectraguard sandbox shell \\-\\- \\-c 'make test'"),
    ("An AI agent in a sandbox of its own, then review what it changed:",
     "vectraguard agent start claude\\-code\nvectraguard changes\nvectraguard diff ID\nvectraguard apply ID"),
    ("What a run of a command would be decided, without running it:",
     "vectraguard check \\-\\- rm \\-rf build"),
    ("Each value of a profile and the file and line that set it:",
     "vectraguard profile show dev \\-\\-explain"),
    (("The same sandbox as a Kubernetes Pod with its NetworkPolicy (the image pushed to your registry, the seccomp "
     "profile installed on every node; docs/kubernetes.md):"),
     ("podman push localhost/vectraguard/default:bookworm registry.example.com/vectraguard/default:bookworm\n"
     "vectraguard kube seccomp strict > strict.json   # on each node: /var/lib/kubelet/seccomp/vectraguard/strict.json\n"
     "vectraguard kube generate \\-\\-profile untrusted \\-\\-workspace none \\-\\-image "
     "registry.example.com/vectraguard/default:bookworm \\-\\- sh \\-c 'id; uname \\-a' > sandbox.yaml\n"
     "kubectl apply \\-f sandbox.yaml\n"
     "kubectl logs \\-f $(kubectl get \\-f sandbox.yaml \\-o name | grep ^pod/)")),
    ("The last sessions, one in full, and the audit chain checked:",
     "vectraguard logs list \\-\\-limit 10\nvectraguard logs show ID\nvectraguard logs verify"),
]

FILES = [
    ("/etc/vectraguard/", ("system profiles (profiles.d/NAME.yaml) and the policy (policy.yaml); "
     "VECTRAGUARD_SYSTEM_DIR moves it")),
    ("~/.config/vectraguard/profiles.d/", "your profiles"),
    (".vectraguard.yaml", "a project's profiles and default, used once trusted (vectraguard trust)"),
    ("~/.local/share/vectraguard/", ("the audit store (audit.db), trust and approvals, recordings/ of shells and "
     "agents, workspaces/ (overlay layers kept for review); VECTRAGUARD_DATA_DIR moves it")),
    ("~/.cache/vectraguard/", "validated profiles and cached decisions (safe to delete)"),
    ("/run/vectraguard/ or $XDG_RUNTIME_DIR/vectraguard/", ("sockets and locks: the fork server, Vectra Guard's "
     "Podman service, pending removals (root's, then a user's; else /tmp/vectraguard\\-UID)")),
    ("/var/lib/vectraguard/rootfs/", ("images unpacked for isolation lite (a user's: "
     "~/.local/share/vectraguard/rootfs/; VECTRAGUARD_ROOTFS_DIR moves it)")),
]
FILES_NOTE = "\\fBvectraguard paths\\fR prints the directories in effect, with the variables below applied."

ENVIRONMENT = [
    ("VECTRAGUARD_AGENT", "the agent a run is for, when \\-\\-agent is not given (recorded)"),
    ("VECTRAGUARD_DATA_DIR", "the data directory (audit store, trust, approvals, recordings, layers)"),
    ("VECTRAGUARD_SYSTEM_DIR", "the system directory instead of /etc/vectraguard"),
    ("VECTRAGUARD_ROOTFS_DIR", "where images are unpacked for isolation lite (an absolute path)"),
    ("VECTRAGUARD_FORKSERVER", ("0: every run imports Vectra Guard itself instead of handing its command line "
     "to this user's fork server")),
    ("XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME, XDG_RUNTIME_DIR",
     "the base directories of the per\\-user files above (absolute paths only)"),
    ("CONTAINER_HOST", "the Podman service to use (a unix socket), instead of the system's or one of our own"),
    ("PAGER", "the pager of vectraguard diff on a terminal"),
    ("COLUMNS", "the width tables and profile show \\-\\-explain fit, instead of the terminal's"),
]

EXIT_STATUS = [
    ("the command's own", "a run, shell or agent session that ran returns its command's exit status"),
    ("124", "the command ran past its timeout (then TERM, then KILL)"),
    ("125", ("Vectra Guard refused or failed: a bad option, an unknown profile, a forbidden mount, a policy "
     "ceiling, a refused approval, a missing image, Podman unavailable, a limit that cannot be enforced")),
    ("126", "the command cannot be executed"),
    ("127", "the command was not found"),
    ("128+N", ("the command was killed by signal N (137 also for out of memory; 130 interrupted by Ctrl\\-C, "
     "143 SIGTERM, 129 SIGHUP)")),
]
EXIT_NOTE = ("Commands that run nothing return 0 on success, 125 on bad input, and the status their "
             "description names (check: 0 allow, 1 ask, 2 deny).")

SEE_ALSO = "vectraguard\\-profile(5), podman(1), podman\\-run(1), bwrap(1), asciinema(1)"


@dataclass(frozen=True)
class Command:
    """One command the page documents: its words after `vectraguard`, its parser, its one-line help."""

    words: tuple[str, ...]
    parser: argparse.ArgumentParser
    summary: str

    @property
    def prog(self) -> str:
        return " ".join(("vectraguard", *self.words))


def esc(text: str) -> str:
    """Text for a roff line: backslashes and hyphens escaped, a leading . or ' made literal."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every command and command group, in the parser's order (groups before their commands)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            yield Command((*words, name), sub, helps.get(name, ""))
            yield from commands(sub, (*words, name))


def is_group(command: Command) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in command.parser._actions)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)
            and a.help != argparse.SUPPRESS]


def signature(action: argparse.Action) -> tuple[object, ...]:
    """What makes two options the same option: flags, help, value name and choices."""
    return (tuple(action.option_strings), action.help, action.metavar,
            tuple(action.choices) if action.choices is not None else None, action.nargs)


def value_of(action: argparse.Action) -> str:
    """The value an option takes, for its tag: `NAME`, `a|b|c`, or nothing for a switch."""
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        return f" \\fI{esc(str(action.metavar))}\\fR"
    if action.choices is not None:
        return " " + "|".join(f"\\fB{esc(str(c))}\\fR" for c in action.choices)
    return f" \\fI{esc(action.dest.upper())}\\fR"


def help_of(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%(" in text:
        text = text % {"default": action.default, "prog": prog, "dest": action.dest}
    return text


def option_entry(action: argparse.Action, prog: str) -> list[str]:
    tag = ", ".join(f"\\fB{esc(flag)}\\fR" for flag in action.option_strings) + value_of(action)
    return [".TP", tag, esc(help_of(action, prog))]


def names(actions: Sequence[argparse.Action]) -> str:
    return ", ".join(f"\\fB{esc(a.option_strings[-1])}\\fR" for a in actions)


def synopsis(command: Command) -> str:
    """`vectraguard run [OPTIONS] -- CMD [ARG...]`, from the parser's arguments."""
    from vectraguard.cli import SYNOPSIS_REQUIRED

    parts = [f"\\fB{esc(command.prog)}\\fR"]
    if options(command.parser):
        parts.append("[\\fIOPTIONS\\fR]")
    for action in command.parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        meta = esc(str(action.metavar or action.dest.upper()))
        if action.dest == "command":  # everything after `--` (cli.split_command)
            words = f"\\fB\\-\\-\\fR \\fI{meta}\\fR [\\fIARG\\fR...]"
            parts.append(words if getattr(action, SYNOPSIS_REQUIRED, False) else f"[{words}]")
        elif getattr(action, SYNOPSIS_REQUIRED, False):  # nargs "?" or "*" for the parser only: cli._required
            parts.append(f"\\fI{meta}\\fR" + ("..." if action.nargs in ("*", "+") else ""))
        elif action.nargs == "?":
            parts.append(f"[\\fI{meta}\\fR]")
        elif action.nargs == "*":
            parts.append(f"[\\fI{meta}\\fR...]")
        elif action.nargs == "+":
            parts.append(f"\\fI{meta}\\fR...")
        else:
            parts.append(f"\\fI{meta}\\fR")
    return " ".join(parts)


class Page:
    """Decides where each option is described (module docstring) and writes the page."""

    def __init__(self, parser: argparse.ArgumentParser, epilog: str) -> None:
        self.parser, self.epilog = parser, epilog
        self.commands = list(commands(parser))
        self.leaves = [c for c in self.commands if not is_group(c)]
        run = next((c for c in self.leaves if c.prog == RUN_PROG), None)
        self.run_options = {signature(a) for a in options(run.parser)} if run else set()
        counts = Counter(signature(a) for c in self.leaves for a in options(c.parser))
        self.shared = {sig for sig, n in counts.items() if n > 1 and sig not in self.run_options}

    def render(self, version: str, date: str) -> str:
        lines = [f'.TH VECTRAGUARD 1 "{date}" "Vectra Guard {esc(version)}" "Vectra Guard manual"',
                 ".SH NAME", f"vectraguard \\- {esc(NAME_LINE)}", *self.synopsis(), *self.description(),
                 *self.global_options(), *self.command_section(), *self.examples(), *self.files(),
                 *self.environment(), *self.exit_status(), ".SH SEE ALSO", SEE_ALSO]
        return "\n".join(lines) + "\n"

    def synopsis(self) -> list[str]:
        lines = [".SH SYNOPSIS", ".nh", ".ad l",
                 "\\fBvectraguard\\fR [\\fB\\-v\\fR|\\fB\\-vv\\fR|\\fB\\-q\\fR] \\fICOMMAND\\fR ...",
                 ".br", "\\fBvectraguard\\fR \\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR"]
        for command in self.leaves:
            lines += [".br", synopsis(command)]
        return [*lines, ".ad", ".hy"]

    def description(self) -> list[str]:
        return [".SH DESCRIPTION", esc(self.parser.description or ""), ".PP",
                esc("Everything after `--` is the sandboxed command, never an option of vectraguard. "
                    "Each option is described once: the run options under vectraguard run (the commands that "
                    "take them say so), options several other commands share under \"" + SHARED_TITLE
                    + "\", the rest under their command. Every command takes -h (--help).")]

    def global_options(self) -> list[str]:
        lines = [".SH OPTIONS", esc("Before the command:")]
        for action in options(self.parser):
            lines += option_entry(action, "vectraguard")
        return lines

    def command_section(self) -> list[str]:
        lines = [".SH COMMANDS"]
        shared_done: set[tuple[object, ...]] = set()
        for command in self.commands:
            lines += self.command(command)
            if command.prog == RUN_PROG and self.shared:
                lines += [".SS " + SHARED_TITLE]
                for leaf in self.leaves:
                    for action in options(leaf.parser):
                        sig = signature(action)
                        if sig in self.shared and sig not in shared_done:
                            shared_done.add(sig)
                            users = [c.prog for c in self.leaves if sig in {signature(a) for a in options(c.parser)}]
                            entry = option_entry(action, leaf.prog)
                            entry[-1] += esc(f" ({', '.join(u.removeprefix('vectraguard ') for u in users)})")
                            lines += entry
        return lines

    def command(self, command: Command) -> list[str]:
        lines = [f".SS {esc(command.prog)}"]
        if is_group(command):
            text = command.parser.description or command.summary
            return [*lines, esc(text)] if command.parser.description else []
        lines += [synopsis(command), ".PP", esc(command.parser.description or command.summary)]
        own, run_shared, shared = [], [], []
        for action in options(command.parser):
            sig = signature(action)
            if command.prog != RUN_PROG and sig in self.run_options:
                run_shared.append(action)
            elif sig in self.shared:
                shared.append(action)
            else:
                own.append(action)
        for action in own:
            lines += option_entry(action, command.prog)
        if run_shared:
            run = f"\\fB{esc(RUN_PROG)}\\fR"
            text = f"Every run option ({names(run_shared)}): see {run}." if len(run_shared) == len(
                self.run_options) else f"Also {names(run_shared)}, as described under {run}."
            lines += [".PP", text]
        if shared:
            lines += [".PP", f"Also {names(shared)}: see \\fI{esc(SHARED_TITLE)}\\fR."]
        epilog = command.parser.epilog
        if epilog and epilog != self.epilog:
            lines += [".PP", esc(epilog)]
        return lines

    def examples(self) -> list[str]:
        lines = [".SH EXAMPLES"]
        for text, code in EXAMPLES:
            lines += [".PP", esc(text), ".PP", ".RS 4", ".nf", *code.strip().split("\n"), ".fi", ".RE"]
        return lines

    def files(self) -> list[str]:
        lines = [".SH FILES"]
        for path, text in FILES:
            lines += [".TP", f"\\fI{esc(path)}\\fR", text]
        return [*lines, ".PP", FILES_NOTE]

    def environment(self) -> list[str]:
        lines = [".SH ENVIRONMENT"]
        for name, text in ENVIRONMENT:
            lines += [".TP", f"\\fB{esc(name)}\\fR", text]
        return lines

    def exit_status(self) -> list[str]:
        lines = [".SH EXIT STATUS"]
        for code, text in EXIT_STATUS:
            lines += [".TP", f"\\fB{code}\\fR" if code[0].isdigit() else esc(code), text]
        return [*lines, ".PP", esc(EXIT_NOTE)]


def render(version: str, date: str) -> str:
    """The whole page for the parser of this checkout."""
    from vectraguard import cli

    return Page(cli.build_parser(), cli.EPILOG).render(version, date)


def _date() -> str:
    """SOURCE_DATE_EPOCH's day (reproducible builds), else today's (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch else datetime.datetime.now(
        datetime.UTC)
    return moment.strftime("%Y\\-%m\\-%d")


def main(argv: Sequence[str]) -> int:
    """`python -m vectraguard.manpage [--output FILE]`: the page, to FILE or stdout."""
    from vectraguard import __version__

    args = argparse.ArgumentParser(prog="python -m vectraguard.manpage", description=main.__doc__)
    args.add_argument("--output", metavar="FILE", help="write the page here (default: stdout)")
    chosen = args.parse_args(argv)
    page = render(__version__, _date())
    if chosen.output:
        with open(chosen.output, "w", encoding="utf-8") as out:
            out.write(page)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
