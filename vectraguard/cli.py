"""The command-line interface: the parser (no side effects) and dispatch.

vectraguard/manpage.py imports `build_parser` to generate man/vectraguard.1, so
building the parser must not touch the host. Each command lives in
vectraguard/commands/ and is imported only when chosen, keeping the start-up
path of `vectraguard run` free of what other commands need.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from vectraguard import __version__, errors, units

# argparse passes its own words ("usage:", "options", the -h help ...) through
# gettext, which searches the disk for an `argparse` catalogue at every call and
# imports `locale` to do so: ~2.5 ms of every run's start, for six words. CPython
# ships no such catalogue, and everything else Vectra Guard says is English.
argparse._ = str  # type: ignore[attr-defined]

EPILOG = "Profiles: man vectraguard-profile. Exit status: the command's own; 124 timeout; " \
         "125 Vectra Guard refused or failed; 126 cannot execute; 127 not found; 128+N killed by signal N."
ID_HELP = "a session id, or its first or last characters if no other id has them (the last 8 are unique in practice)"
# How every time option reads its value (vectraguard/times.py, which the parser does not import).
TIME_FORMS = ("ISO 8601 (2026-11-30T10:24:00+01:00; no zone = local time), a date (its start, local), an age "
              "(90m, 36h, 7d, '2 hours ago'), @SECONDS, now, today, yesterday")


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, measuring the terminal as shutil.get_terminal_size
    does but without importing shutil (and bz2, lzma ...): argparse builds a
    formatter for every argument it adds, so every run would pay for it."""

    def __init__(self, prog: str) -> None:
        columns = 0
        with contextlib.suppress(KeyError, ValueError):
            columns = int(os.environ["COLUMNS"])
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
            except (AttributeError, ValueError, OSError):
                columns = 0
        super().__init__(prog, width=(columns or 80) - 2)


_UNRECOGNIZED_BY = "_vectraguard_unrecognized_by"


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is a VGError (exit 125, one line), not exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = f"see `{self.prog} --help`"  # unrecognized arguments: main's _unrecognized
        raise errors.UsageError(f"{self.prog}: {message}", hint=hint)

    # Typos get a suggestion (vectraguard/suggest.py); only a bad command line pays for it.
    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:  # type: ignore[override]
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not hasattr(parsed, _UNRECOGNIZED_BY):
            # The innermost parser that did not know them: its options are the ones meant.
            setattr(parsed, _UNRECOGNIZED_BY, self)
        return parsed, extras

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner: _Parser = getattr(parsed, _UNRECOGNIZED_BY, self)
            owner.error("unrecognized arguments: " + " ".join(owner._with_suggestion(word) for word in extras))
        return parsed

    def _with_suggestion(self, word: str) -> str:
        if not word.startswith("-"):
            return word
        from vectraguard.suggest import close_match

        # Compared without their dashes, which every option shares: `--bogus` is not like `--cpus`.
        known = {s.lstrip("-"): s for action in self._actions for s in action.option_strings}
        meant = close_match(word.split("=", 1)[0].lstrip("-"), known)
        return f"{word} (did you mean {known[meant]}?)" if meant else word

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        if not isinstance(value, str):  # pool start -n: numbers, where a spelling suggests nothing
            super()._check_value(action, value)
            return
        from vectraguard.suggest import did_you_mean

        names = [str(c) for c in choices]
        raise argparse.ArgumentError(action, f"invalid choice: {value!r}{did_you_mean(value, names)}; "
                                     f"choose from {', '.join(map(repr, names))}")


# A session's status (audit/record.py STATUSES and CHECKED_STATUSES; kept here so that
# building the parser imports nothing of the audit code).
LOG_STATUSES = ("ok", "failed", "timeout", "oom", "killed", "interrupted", "refused", "incomplete", "started",
                "checked/allow", "checked/ask", "checked/deny")


def _limit(text: str) -> int:
    """logs list --limit: 1 to 1,000,000 (SQLite takes no more than a 64-bit LIMIT; a bound says so plainly)."""
    try:
        return units.parse_count(text, what="sessions", maximum=1_000_000)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _checked(parse: Callable[[str], object], what: str) -> Callable[[str], str]:
    """An argparse `type` that validates with a units parser but keeps the text,
    so the value goes through the same layer and schema as a file's would."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = what
    return check


def _add_run_options(p: argparse.ArgumentParser, *, profile: bool = True, yes: bool = True) -> None:
    if profile:  # an agent's definition is its profile
        p.add_argument("-p", "--profile", metavar="NAME",
                       help="sandbox profile to use (default: the project's default_profile, else `default`); "
                       "see `man vectraguard-profile`")
    p.add_argument("--mount", action="append", default=[], metavar="SRC:DST[:ro|rw]",
                   help="also mount host path SRC at DST (read-only unless :rw); repeatable")
    p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="set NAME inside the sandbox, to VALUE or to its value here; repeatable")
    p.add_argument("--workspace", choices=("ro", "overlay", "rw", "none"),
                   help="how the current directory is mounted: ro, overlay (writes kept in a layer for review: "
                   "vectraguard changes|diff|apply|discard), rw (writes reach the real files) or none "
                   "(default: from the profile)")
    p.add_argument("--cpus", type=_checked(units.parse_cpus, "cpus"), metavar="N", help="CPU limit, e.g. 1 or 0.5")
    p.add_argument("--memory", type=_checked(units.parse_size, "size"), metavar="SIZE",
                   help="memory limit including swap, e.g. 512Mi or 2G")
    p.add_argument("--pids", type=_checked(lambda t: units.parse_count(t, what="processes"), "count"),
                   metavar="N", help="maximum number of processes")
    p.add_argument("--timeout", type=_checked(units.parse_duration, "duration"), metavar="DURATION",
                   help="wall-clock limit, e.g. 30s, 10m, 1h (then TERM, then KILL; exit 124)")
    p.add_argument("--workdir", metavar="PATH", help="working directory inside the sandbox")
    p.add_argument("--image", metavar="REF", help="image to use instead of the profile's")
    p.add_argument("--agent", metavar="NAME",
                   help="the AI agent this run is for, recorded in the audit trail (default: $VECTRAGUARD_AGENT)")
    p.add_argument("--network", choices=("none", "allowlist", "full"),
                   help="network mode: none (default), allowlist (through a proxy Vectra Guard plants in the "
                   "sandbox) or full (Podman's ordinary network; asks for approval)")
    p.add_argument("--isolation", choices=("container", "gvisor", "lite"),
                   help="what stands between the sandbox and the host's kernel: container (runc, the default), "
                   "gvisor (gVisor's user-space kernel in between; slower to start) or lite (bubblewrap, Landlock and "
                   "seccomp, no container engine; fastest); `vectraguard doctor` says which this host supports")
    p.add_argument("--engine", choices=("auto", "podman", "docker"),
                   help="the container engine: podman, docker (Docker Engine over its API socket) or auto "
                   "(Podman when installed, else Docker; the default); engine in a profile")
    if yes:
        p.add_argument("--yes", action="store_true",
                       help="approve a run that needs approval (risky findings, the full network) instead of "
                       "asking on the terminal, unless the system policy forbids it; recorded as approved by --yes")
    p.add_argument("--allow", action="append", default=[], metavar="HOST[:PORT]",
                   help="allow this destination (host, *.domain or CIDR; port default 80 and 443); implies "
                   "--network allowlist; repeatable")
    p.add_argument("--publish", action="append", default=[], metavar="[ADDR:]HOST_PORT:PORT",
                   help="relay connections to ADDR:HOST_PORT on this host (127.0.0.1 unless the system policy "
                   "allows another address) to localhost:PORT inside the sandbox (127.0.0.1, else ::1), whose network stays as it is; "
                   "asks for approval; each connection is recorded; repeatable; network.publish in a profile")
    p.add_argument("--trust-host-ca", action="store_true",
                   help="with --network allowlist or full: mount this host's CA bundle read-only in the sandbox and "
                   "point SSL_CERT_FILE and the like at it (for TLS inspected by a corporate CA); "
                   "network.trust_host_ca in a profile")
    _add_layer_options(p)
    p.add_argument("command", nargs="*", metavar="CMD",
                   help="the command and its arguments; put them after `--`")


def _add_layer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set a profile key for this run, e.g. limits.memory=1Gi; KEY+=VALUE appends to a list; "
                   "repeatable")
    p.add_argument("--ignore-project", action="store_true",
                   help="do not use the project's .vectraguard.yaml (trusted or not)")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, with `only`, the parser of that one command:
    `vectraguard run` need not build the others (~5 ms of a run's start)."""
    parser = _Parser(prog="vectraguard", description="Run commands, scripts and AI agents in "
                     "throw-away, locked-down Podman sandboxes.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"vectraguard {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostics (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=_Parser)
    for name, help_text, fill in _COMMAND_PARSERS:
        if only is None or only == name:
            fill(sub.add_parser(name, help=help_text))
    return parser


_built: dict[str | None, argparse.ArgumentParser] = {}


def parser_for(only: str | None) -> argparse.ArgumentParser:
    """build_parser(only), built once per process: parsing leaves a parser as
    it was (argparse keeps what it parses in the namespace it returns), and
    the fork server (forkserver/server.py) builds those of `run` and `check`
    before it forks, so a served run does not (~3.5 ms)."""
    parser = _built.get(only)
    if parser is None:
        parser = _built[only] = build_parser(only)
    return parser


def _fill_run(run: argparse.ArgumentParser) -> None:
    run.description, run.epilog = "Run CMD in a fresh sandbox and remove it afterwards.", EPILOG
    _add_run_options(run)
    _required(run, "command")


def _required(parser: argparse.ArgumentParser, dest: str) -> None:
    """Mark a positional the command cannot do without (its main refuses it missing, with its own message)
    for the synopsis (manpage.py: SYNOPSIS_REQUIRED); parsing is unchanged (nargs "*" or "?" keeps `--`
    and the hidden --list working)."""
    setattr(next(action for action in parser._actions if action.dest == dest), SYNOPSIS_REQUIRED, True)


SYNOPSIS_REQUIRED = "vg_synopsis_required"


def _fill_sandbox(sandbox: argparse.ArgumentParser) -> None:
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND", parser_class=_Parser)
    sandbox_run = sandbox_sub.add_parser("run", help="same as `vectraguard run`", epilog=EPILOG)
    _add_run_options(sandbox_run)
    _required(sandbox_run, "command")
    _add_run_options(sandbox_sub.add_parser(
        "shell", help="an interactive shell in a fresh sandbox, recorded: shell [OPTIONS] [-- SHELL ARGS]",
        description="An interactive shell (bash if the image has it) in a fresh sandbox, with a real "
        "pseudo-terminal; the session is recorded (output only) for `vectraguard logs replay`.", epilog=EPILOG))
    reap = sandbox_sub.add_parser(
        "reap", help="remove this user's sandboxes whose run has ended (a killed run leaves its sandbox behind)",
        description="A run returns its exit status as soon as its command has exited; its stopped sandbox is "
        "removed just after, by a detached process. `reap` removes every sandbox whose run is gone and whose "
        "removal is not under way, and records each removal in that session's audit record (in the audit store "
        "this command uses); and pooled sandboxes idle longer than their pool_idle, or left by a killed run.")
    reap.add_argument("--wait", action="store_true",
                      help="first wait until the removals under way have ended (for scripts and tests that "
                      "check that nothing is left)")


def _fill_agent(agent: argparse.ArgumentParser) -> None:
    agent.description = (
        "An AI agent in a sandbox of its own (agent start). For an agent that runs on the host instead, its "
        "hook can put each shell command into one: Claude Code's `vectraguard-hook claude-code --sandbox "
        "agent-shell` (contrib/agent-hooks/claude-code-sandbox-settings.json) rewrites every Bash command it "
        "does not deny into `vectraguard run --profile agent-shell --agent claude-code -- bash -c COMMAND` in "
        "the project directory: the project read-write at its own path (.git read-only), nothing else of the "
        "host, no network; a command the gate asks about is asked about in Claude's prompt. Claude's Edit and "
        "Write tools are not shell commands and stay outside. Decisions and runs: `vectraguard logs list "
        "--agent claude-code`.")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="SUBCOMMAND", parser_class=_Parser)
    agent_start = agent_sub.add_parser(
        "start", help="start agent NAME in a sandbox: agent start NAME [OPTIONS] [-- AGENT ARGS]",
        description="Start the AI agent NAME (see `vectraguard agent list`) in a fresh sandbox: the repository "
        "you are in, read-write (its .git/hooks and .git/config read-only); a home volume of the agent's own "
        "that persists between sessions; only the environment variables and network destinations its "
        "definition allows. Arguments after -- go to the agent. The session is recorded under the agent's name.",
        epilog=EPILOG)
    agent_start.add_argument("name", metavar="NAME", help="the agent (a profile with an `agent` section)")
    _add_run_options(agent_start, profile=False)
    agent_list = agent_sub.add_parser("list", help="the agents that can be started, and where they are defined")
    agent_list.add_argument("--json", action="store_true", help="machine-readable output")
    agent_list.add_argument("--ignore-project", action="store_true",
                            help="do not use the project's .vectraguard.yaml (trusted or not)")


def _fill_pool(pool: argparse.ArgumentParser) -> None:
    pool.description = (
        "Sandboxes created and initialised ahead of the runs, so that a run only has to start one. A run takes "
        "one from the pool when its sandbox would be made exactly the same (profile, policy, options, image, "
        "directory); it is refilled after the run returns. A profile can ask for one with `pool: N`.")
    pool_sub = pool.add_subparsers(dest="pool_command", metavar="SUBCOMMAND", parser_class=_Parser)
    start = pool_sub.add_parser(
        "start", help="fill a pool for the runs these options describe, in this directory: "
        "pool start [RUN OPTIONS] [-n N]", epilog=EPILOG)
    start.add_argument("-n", "--number", type=int, choices=range(1, 9), metavar="N",
                       help="how many to keep ready, 1-8 (default: the profile's pool, at least 2)")
    _add_run_options(start)
    stop = pool_sub.add_parser("stop", help="remove the ready sandboxes and stop refilling them")
    stop.add_argument("-p", "--profile", metavar="NAME", help="only this profile's")
    listing = pool_sub.add_parser("list", help="the ready sandboxes")
    listing.add_argument("--json", action="store_true", help="machine-readable output")


def _fill_image(image: argparse.ArgumentParser) -> None:
    image_sub = image.add_subparsers(dest="image_command", metavar="SUBCOMMAND", parser_class=_Parser)
    build = image_sub.add_parser("build", help="build the default image, or an agent's, from Debian packages "
                                 "(no registry needed)")
    build.add_argument("--agent", metavar="NAME",
                       help="build the image agent NAME's definition names, with its recipe (npm or PyPI "
                       "packages are fetched from their registries)")
    build.add_argument("-p", "--profile", metavar="NAME",
                       help="build the image profile NAME runs when it names image.packages (the default image "
                       "with those Debian packages; a run builds it on first use otherwise)")
    build.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="with --profile: an image key as a run's --set gives it (image.packages+=jq), to build "
                       "the variant that run uses; repeatable")
    build.add_argument("--rebuild", action="store_true", help="build even if the image exists")
    build.add_argument("--engine", choices=("auto", "podman", "docker"), default="auto",
                       help="whose image storage it goes to: podman, docker (Docker Engine) or auto (Podman when "
                       "installed, else Docker: as a run chooses)")
    build.add_argument("--suite", help="Debian suite (default: bookworm; for --agent, the image's tag)")
    build.add_argument("--ignore-project", action="store_true",
                       help="do not use the project's .vectraguard.yaml to find the agent or profile")
    build.add_argument("--mirror", help="Debian mirror URL (default: mmdebstrap's)")
    build.add_argument("--gateway", action="store_true",
                       help="build localhost/vectraguard/gateway:VERSION, the image `kube gateway` runs in: the "
                       "default image (`image build` it first) plus this Vectra Guard's own Python package")
    unpack = image_sub.add_parser("unpack", help="unpack an image already in Podman's storage for isolation lite "
                                  "(image build does it for the images it builds); prints the tree's path")
    unpack.add_argument("ref", metavar="REF", help="the image, as profiles name it")
    image_list = image_sub.add_parser("list", help="list Vectra Guard images")
    image_list.add_argument("--json", action="store_true", help="machine-readable output")
    image_prune = image_sub.add_parser(
        "prune", help="remove Vectra Guard's untagged images (left by rebuilds); nothing else",
        description="Remove the images that carry Vectra Guard's label (io.vectraguard.image) and have no tag: "
        "what a rebuild leaves behind. Never an image Vectra Guard did not build, never a tagged one, never one a "
        "container still uses (kept, and named). `podman image prune` would take every dangling image.")
    image_prune.add_argument("--json", action="store_true", help="machine-readable output")


def _fill_profile(profile: argparse.ArgumentParser) -> None:
    profile_sub = profile.add_subparsers(dest="profile_command", metavar="SUBCOMMAND", parser_class=_Parser)
    listing = profile_sub.add_parser("list", help="every profile and where it is defined")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--ignore-project", action="store_true", help="leave out the project's .vectraguard.yaml")
    show = profile_sub.add_parser("show", help="the resolved profile")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--explain", action="store_true", help="each value with the file:line that set it")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--ignore-project", action="store_true", help="leave out the project's .vectraguard.yaml")
    validate = profile_sub.add_parser("validate", help="check configuration files (exit 1 if any is invalid)")
    validate.add_argument("files", nargs="*", metavar="FILE",
                          help="profile, project (.vectraguard.yaml) or policy (policy.yaml) files; default: all known")
    validate.add_argument("--json", action="store_true", help="one entry a file: file, kind, ok, and when not ok "
                          "message and details; the exit status is the same")


def _fill_trust(trust: argparse.ArgumentParser) -> None:
    trust.add_argument("dir", nargs="?", metavar="DIR|list", help="a directory in the project, or `list`")
    trust.add_argument("--json", action="store_true", help="with `list`: machine-readable output")


def _fill_untrust(untrust: argparse.ArgumentParser) -> None:
    untrust.add_argument("dir", nargs="?", metavar="DIR")


def _fill_logs(logs: argparse.ArgumentParser) -> None:
    logs_sub = logs.add_subparsers(dest="logs_command", metavar="SUBCOMMAND", parser_class=_Parser)
    logs_list = logs_sub.add_parser(
        "list", help="recorded sessions, newest first",
        description="Recorded sessions, newest first: runs, and the decisions `vectraguard check` gave agents' "
        "hooks (status checked/allow, checked/ask or checked/deny, exit 0, 1 or 2; `logs show ID` gives the "
        "agent's session id, the directory, the findings and any remembered approval). With --json, each "
        "session has id, started_at, ended_at (UTC, YYYY-MM-DDTHH:MM:SS.mmmZ), agent, user, profile, command, "
        "status, exit_status and duration_ms: the names its records use.")
    logs_list.add_argument("--agent", help="only this agent's sessions and checked decisions, e.g. claude-code")
    logs_list.add_argument("--profile", help="only sessions of this profile")
    logs_list.add_argument("--status", choices=LOG_STATUSES, metavar="STATUS",
                           help="only sessions with this status: " + ", ".join(LOG_STATUSES))
    logs_list.add_argument("--kind", choices=("run", "checked"),
                           help="only runs, or only the decisions of `vectraguard check` (agents' hooks)")
    logs_list.add_argument("--since", metavar="TIME", help="only sessions started at or after TIME: " + TIME_FORMS)
    logs_list.add_argument("--until", metavar="TIME", help="only sessions started before TIME (same forms)")
    logs_list.add_argument("--limit", type=_limit, default=50, metavar="N",
                           help="at most this many, 1 to 1000000 (default: %(default)s)")
    logs_list.add_argument("--json", action="store_true", help="machine-readable output")
    logs_show = logs_sub.add_parser(
        "show", help="one session whole, output included",
        description="One session whole, output included. With --json: id, events (each the record's fields "
        "beside its chain fields seq, session, kind, prev_hash and hash, as `logs export` writes them) and "
        "output (each stream's kept head and tail, as text).")
    logs_show.add_argument("id", metavar="ID", help=ID_HELP)
    show_form = logs_show.add_mutually_exclusive_group()
    show_form.add_argument("--json", action="store_true", help="machine-readable output")
    show_form.add_argument("--raw", action="store_true",
                           help="the recorded output's bytes as they are, escape sequences included (by default "
                           "control characters are shown as visible escapes, on a terminal or not)")
    logs_verify = logs_sub.add_parser(
        "verify", help="check the hash chain and the store; exit 1 at the first broken record",
        description="Check the hash chain, the prune checkpoint (only with its `pruned` event on the chain), that "
        "each session begins with its opening event, every column of the session index, the stored outputs (only "
        "the streams a finished record names) and the recordings, against the events; exit 1 naming the first "
        "broken point. Needs only read access (a full disk, a read-only copy). With a head kept elsewhere (from "
        "`logs head`), also prove that the store still holds that event and extends it: a cut-off end, or a chain "
        "re-hashed after an edit, fails; without audit.key_file a head at or before the prune checkpoint cannot "
        "be proven and fails too (keep the head `logs prune` prints).")
    anchor = logs_verify.add_mutually_exclusive_group()
    anchor.add_argument("--head", metavar="SEQ:HASH", help="a chain head printed earlier by `logs head`")
    anchor.add_argument("--head-file", metavar="FILE", help="read SEQ:HASH from the first line of FILE")
    logs_sub.add_parser("head", help="print the chain head as SEQ:HASH, to keep elsewhere for `logs verify --head`",
                        description="Print the last event's sequence number and chain hash as SEQ:HASH (0:000... "
                        "for an empty store). Read-only. Keep it where the store's writers cannot reach (a ticket, "
                        "a SIEM, another host); `logs verify --head SEQ:HASH` later proves the store extends it. "
                        "Run `logs verify` first: a head of a broken chain anchors nothing.")
    logs_verify.add_argument("--json", action="store_true", help="machine-readable verdict: ok, problems, seq, "
                             "hash, head (SEQ:HASH); the exit status is the same")
    logs_export = logs_sub.add_parser(
        "export", help="every event as JSON Lines, then the chain head (for a SIEM)",
        description="Every event as one JSON line: the record's fields (as in `logs show --json`) beside its "
        "chain fields seq, session, kind, prev_hash and hash; a finished session's recorded output is in "
        "output_raw (base64). The last line has kind chain-head: seq and hash of the last event, head as "
        "SEQ:HASH, the number of events exported and pruned_through.")
    logs_export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    logs_prune = logs_sub.add_parser(
        "prune", help="drop sessions started before TIME; the chain stays verifiable",
        description="Drop the sessions started before TIME, with their recordings and workspace layers. Shows "
        "what would go (sessions, oldest and newest, recordings, layers) and asks on a terminal; without a "
        "terminal on stdin it needs --yes. A session still running is kept, and so is everything recorded "
        "after it (only the oldest part of the chain can go), and a session goes whole or not at all. A TIME in "
        "the future is refused. Prints the chain head after the prune, to keep for `logs verify --head`.")
    logs_prune.add_argument("--before", required=True, metavar="TIME",
                            help="sessions started before TIME go: " + TIME_FORMS + "; a date alone, or "
                            "`yesterday`, is the start of that day in local time")
    logs_prune.add_argument("--dry-run", action="store_true", help="show what would go; change nothing")
    logs_prune.add_argument("-y", "--yes", action="store_true", help="do not ask")
    logs_replay = logs_sub.add_parser("replay", help="play a recorded shell or agent session in the terminal")
    logs_replay.add_argument("id", metavar="ID", help=ID_HELP)
    logs_replay.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default: 1)")
    logs_replay.add_argument("--idle-limit", type=float, metavar="S", help="cap pauses at S seconds")
    logs_replay.add_argument("--raw", action="store_true",
                             help="play every recorded byte (by default window titles, clipboard access and "
                             "strings carrying control characters are left out, as in the live session)")


def _fill_check(check: argparse.ArgumentParser) -> None:
    check.description = (
        "Judge CMD as `vectraguard run` would, with the same profile and options, and print the decision and "
        "its findings; nothing is run or asked. A single argument is a command line (as agents' hooks pass "
        "it). Every decision is recorded in the audit trail before it is given (`vectraguard logs list --kind "
        "checked`): the agent, the hook's session id, the directory, the command (environment values given "
        "with --env or --set redacted), the decision, the findings, the profile and its digest, the remembered "
        "approval that allowed it. For agents' pre-execution hooks: see contrib/agent-hooks/.")
    check.epilog = ("Exit status: 0 allow (or approved earlier with `remember` or `approvals grant`), 1 ask, "
                    "2 deny, 125 the decision cannot be made (e.g. invalid configuration, or the audit store "
                    "cannot be written: no decision is given unrecorded).")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--hook-session", metavar="ID",
                       help="the agent's session id from its hook event, recorded with the decision (printable, "
                       "at most 200 characters); the agent's name goes in --agent (at most 64)")
    _add_run_options(check, yes=False)
    _required(check, "command")


def _fill_approvals(approvals: argparse.ArgumentParser) -> None:
    approvals_sub = approvals.add_subparsers(dest="approvals_command", metavar="SUBCOMMAND", parser_class=_Parser)
    approvals_list = approvals_sub.add_parser("list", help="remembered approvals that have not expired")
    approvals_list.add_argument("--all", action="store_true", help="expired ones too")
    approvals_list.add_argument("--json", action="store_true", help="machine-readable output")
    approvals_grant = approvals_sub.add_parser(
        "grant", help="approve CMD ahead of time, on the terminal: grant [OPTIONS] -- CMD",
        description="Judge CMD as `vectraguard check` does and, if it needs approval, ask you on the terminal "
        "and remember the yes (for exactly that command, this directory and the resolved profile, for "
        "risk.remember_for): the next `vectraguard run -- sh -c 'CMD'`, `check` or agent hook call for it is "
        "then approved. A single argument is a command line.", epilog=EPILOG)
    _add_run_options(approvals_grant, yes=False)
    _required(approvals_grant, "command")
    approvals_revoke = approvals_sub.add_parser("revoke", help="forget remembered approvals: revoke ID... | --all")
    approvals_revoke.add_argument("ids", nargs="*", metavar="ID", help="approval ids (unique prefixes accepted)")
    approvals_revoke.add_argument("--all", action="store_true", help="every remembered approval")


def _fill_doctor(doctor: argparse.ArgumentParser) -> None:
    doctor.add_argument("--json", action="store_true", help="machine-readable output")


def _fill_paths(paths: argparse.ArgumentParser) -> None:
    paths.description = ("The directories Vectra Guard uses for you, as this environment sets them "
                         "(XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME, XDG_RUNTIME_DIR, VECTRAGUARD_DATA_DIR, "
                         "VECTRAGUARD_SYSTEM_DIR, VECTRAGUARD_ROOTFS_DIR), what each holds and which variable "
                         "chose it.")
    paths.add_argument("--json", action="store_true", help="machine-readable output")


# Reviewing an overlay session's workspace changes (vectraguard/workspace/).
PATHS_HELP = "paths relative to the workspace root, as `changes` lists them (a directory: everything beneath it)"


def _fill_changes(changes: argparse.ArgumentParser) -> None:
    changes.description = ("What an overlay session changed in the workspace, kept for review: each path added, "
                           "modified, deleted or type-changed, its size, and whether it is protected (held back "
                           "by apply unless named). Default: the newest session of the current directory.")
    changes.add_argument("id", nargs="?", metavar="ID", help=ID_HELP)
    changes.add_argument("--all", action="store_true", help="every layer kept, with its state")
    changes.add_argument("--json", action="store_true", help="machine-readable output")


def _fill_diff(diff: argparse.ArgumentParser) -> None:
    diff.description = ("Unified diffs between the workspace's files now and the session's (binary files: "
                        "sizes and SHA-256; control characters escaped), through $PAGER on a terminal.")
    diff.add_argument("id", metavar="ID", help=ID_HELP)
    diff.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)


def _fill_apply(apply: argparse.ArgumentParser) -> None:
    apply.description = (
        "Bring the session's changes (or those at and beneath PATHs) into the real workspace. Never follows a "
        "symlink in the workspace, never creates special files or links that lead out of it, drops setuid and "
        "setgid bits, writes each file atomically. Every conflict with a change made in the workspace since the "
        "session started is listed first and stops the apply (--force overwrites). Protected paths are held "
        "back unless named with --include-protected PATH; their diff is shown before they are applied.")
    apply.epilog = "Exit status: 0 applied, 1 stopped by conflicts or unreachable paths, 125 bad input."
    apply.add_argument("id", metavar="ID", help=ID_HELP)
    apply.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
    apply.add_argument("--include-protected", action="append", default=[], metavar="PATH",
                       help="also apply this protected path (and what is beneath it), after showing its diff; "
                       "repeatable")
    apply.add_argument("--force", action="store_true",
                       help="overwrite changes made in the workspace since the session started")
    apply.add_argument("--dry-run", action="store_true", help="show what would be applied; write nothing")


def _fill_discard(discard: argparse.ArgumentParser) -> None:
    discard.add_argument("id", metavar="ID", help=ID_HELP)


def _fill_completion(completion: argparse.ArgumentParser) -> None:
    completion.description = (
        "Print the completion script of SHELL: commands, options, choices, profile names and session ids. "
        "Load it now with `source <(vectraguard completion bash)` (zsh: the same; fish: "
        "`vectraguard completion fish | source`); contrib/install.sh installs all three where the shells find them.")
    completion.add_argument("shell", nargs="?", choices=("bash", "zsh", "fish"), metavar="SHELL",
                            help="bash, zsh or fish")
    # What the scripts call for profile names and session ids (vectraguard/completion/listing.py).
    completion.add_argument("--list", choices=("profiles", "agents", "sessions", "recorded", "running"),
                            help=argparse.SUPPRESS)
    completion.add_argument("--described", action="store_true", help=argparse.SUPPRESS)  # WORD<TAB>TEXT (fish)
    _required(completion, "shell")


# Running sandboxes (vectraguard/sessions/): what runs now, stopping, entering and inspecting it.
RUNNING_ID_HELP = ID_HELP + "; see `vectraguard ps`"


def _fill_ps(ps: argparse.ArgumentParser) -> None:
    ps.description = ("This user's running sandboxes: session id, profile, isolation level, age, CPU (percent of "
                      "one CPU over half a second) and memory now, and the command. Read from this user's audit "
                      "store: root sees root's sessions, not other users'. CPU and memory come from the engine's stats "
                      "(Podman's or Docker's, as the session's record names it: the container's cgroup) or, for a "
                      "rootful `lite` sandbox, from its own cgroup; `-` where there is none (rootless `lite`; a "
                      "rootless Podman container on cgroups v1 or hybrid, where Podman has no stats).")
    ps.add_argument("--json", action="store_true", help="machine-readable output")


def _fill_stop(stop: argparse.ArgumentParser) -> None:
    stop.description = ("End a running session as Ctrl-C would: its `vectraguard` is sent SIGTERM, which stops "
                        "the sandbox (TERM, the profile's kill_grace, then KILL), records how it ended and removes "
                        "it. The stop request (who, when) is recorded in the session first, and the session's "
                        "`finished` record says it was stopped and by whom. Waits until it has ended.")
    stop.add_argument("id", metavar="ID", help=RUNNING_ID_HELP)


def _fill_exec(exec_: argparse.ArgumentParser) -> None:
    exec_.description = (
        "Run CMD in a running sandbox (isolation `container`), as its own command runs: the same user, no "
        "capabilities, no_new_privs, the seccomp filter, the same environment and working directory. CMD is "
        "judged by the approval gate as a run's command is (refused, asked, or allowed; --yes as for run), and "
        "recorded in that session's audit record (`exec` and `exec-finished` events: the argv, the decision, the "
        "exit status). No terminal is allocated; stdin is passed when it is not a terminal.")
    exec_.epilog = "Exit status: CMD's own; 125 refused (by the gate, or the session is not running)."
    exec_.add_argument("id", metavar="ID", help=RUNNING_ID_HELP)
    exec_.add_argument("--yes", action="store_true",
                       help="approve a command that needs approval instead of asking on the terminal, unless the "
                       "system policy forbids it; recorded as approved by --yes")
    exec_.add_argument("command", nargs="*", metavar="CMD", help="the command and its arguments; put them after `--`")
    _required(exec_, "command")


def _fill_inspect(inspect: argparse.ArgumentParser) -> None:
    inspect.description = ("A session's resolved profile and compiled sandbox spec, as recorded when it started "
                           "(environment values are never recorded, only names; the risk rules by count and "
                           "digest), with its record's facts. Running or ended.")
    inspect.add_argument("id", metavar="ID", help=ID_HELP)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")


def _fill_kube(kube: argparse.ArgumentParser) -> None:
    kube.description = (
        "Kubernetes manifests from the same profiles: the command resolved and judged as a run would be, "
        "printed as YAML to apply to a cluster (docs/kubernetes.md).")
    kube_sub = kube.add_subparsers(dest="kube_command", metavar="SUBCOMMAND", parser_class=_Parser)
    generate = kube_sub.add_parser(
        "generate", help="print a Pod (Job, agent-sandbox Sandbox) and its NetworkPolicies for CMD: "
        "kube generate [RUN OPTIONS] [--format F] -- CMD", epilog=EPILOG)
    generate.add_argument("--format", choices=("pod", "job", "agent-sandbox"), default="pod",
                          help="the workload: a Pod (default), a batch/v1 Job, or a Sandbox of "
                          "kubernetes-sigs/agent-sandbox (agents.x-k8s.io/v1beta1)")
    generate.add_argument("--volume-claim", metavar="NAME",
                          help="the workspace: this PersistentVolumeClaim (read-only unless the workspace is rw)")
    generate.add_argument("--config-map", metavar="NAME", help="the workspace: this ConfigMap's files, read-only")
    generate.add_argument("--downgrade", action="append", default=[], metavar="NAME[,NAME]",
                          help="accept what Kubernetes gives instead of a setting it cannot give: isolation-lite, "
                          "workspace-overlay, noexec-tmpfs, mounts, hosts-file, upstream-proxy, host-ca; "
                          "listed in the YAML's header; repeatable")
    generate.add_argument("--seccomp", choices=("localhost", "runtime-default"), default="localhost",
                          help="localhost: Vectra Guard's profile, installed on the nodes (`kube seccomp`); "
                          "runtime-default: the container runtime's, weaker")
    generate.add_argument("--runtime-class", metavar="NAME",
                          help="runtimeClassName (default: gvisor for isolation gvisor, else none)")
    generate.add_argument("--env-secret", metavar="NAME", default="vectraguard-env",
                          help="the Secret env.allow names are read from (default: vectraguard-env)")
    generate.add_argument("--gateway-image", metavar="REF",
                          help="network allowlist: the egress gateway's image (default: the one `image build "
                          "--gateway` builds, localhost/vectraguard/gateway:VERSION)")
    generate.add_argument("--gateway-ip", metavar="ADDRESS", type=_checked(_gateway_ip, "address"),
                          help="network allowlist: the gateway Service's fixed cluster IP, an unused address of "
                          "the cluster's Service range (the sandbox then needs no DNS)")
    _add_run_options(generate, yes=False)
    _required(generate, "command")
    seccomp = kube_sub.add_parser("seccomp", help="print a shipped seccomp profile, to install on the nodes as "
                                  "/var/lib/kubelet/seccomp/vectraguard/NAME.json: kube seccomp NAME [--noexec] [--gvisor]")
    seccomp.add_argument("name", metavar="NAME", choices=("strict",), help="the profile (strict)")
    seccomp.add_argument("--noexec", action="store_true",
                         help="the variant for profiles with filesystem.noexec_tmpfs (NAME-noexec.json)")
    seccomp.add_argument("--gvisor", action="store_true",
                         help="the variant for isolation gvisor (NAME[-noexec]-gvisor.json): the calls gVisor "
                         "answers ENOSYS itself are left to it")
    gateway = kube_sub.add_parser(
        "gateway", help="the egress proxy a Kubernetes sandbox pod goes out through (its Deployment runs it)",
        description="Serve the allowlist proxy of a local allowlisted run on a TCP listener, for one sandbox "
        "pod: the same allowlist rules, name resolution and address vetting. Each connection's decision is a "
        "JSON line on stdout (the pod's log) with the session id, in the audit record's network-attempt keys; "
        "past 120 lines a minute the rest are counted per destination. Writes no file; SIGTERM or SIGINT "
        "stops it (status 0).")
    gateway.add_argument("--listen", default="0.0.0.0:3128", metavar="ADDR:PORT",
                         help="where to listen: an IP address and port, [V6]:PORT for IPv6 (default: 0.0.0.0:3128)")
    gateway.add_argument("--session", required=True, metavar="ID", help="the sandbox's session id, in every log line")
    gateway.add_argument("--profile-digest", metavar="HEX",
                         help="the resolved profile's SHA-256 (64 hex digits), in every log line")
    gateway.add_argument("--allow", action="append", required=True, metavar="ENTRY",
                         help="an allowlist entry, as network.allow takes it: host[:port], *.domain[:port], "
                         "cidr[:port]; repeatable")
    gateway.add_argument("--max-connections", type=int, default=256, metavar="N",
                         help="connections open at once, 1-65536; more are refused (default: 256)")


def _gateway_ip(text: str) -> object:
    from vectraguard.kube.generate import check_gateway_ip

    return check_gateway_ip(text)


# The top-level commands, in --help order: name, one line, what fills its parser.
_COMMAND_PARSERS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("run", "run a command in a sandbox: run [OPTIONS] -- CMD [ARG...]", _fill_run),
    ("sandbox", "sandbox commands (sandbox run is the same as run)", _fill_sandbox),
    ("agent", "AI agent sessions in a sandbox: agent start NAME | agent list", _fill_agent),
    ("image", "build, unpack, list and prune sandbox images", _fill_image),
    ("pool", "sandboxes kept initialised ahead of the runs: pool start [RUN OPTIONS] [-n N] | stop | list",
     _fill_pool),
    ("profile", "list, show and validate profiles", _fill_profile),
    ("trust", "trust the project file of DIR (default: here); `trust list` lists them", _fill_trust),
    ("untrust", "stop trusting the project file of DIR (default: here)", _fill_untrust),
    ("logs", "the audit trail of everything that ran (or was refused)", _fill_logs),
    ("check", ("the decision a run of CMD would get (allow, ask, deny), without running it: "
               "check [--json] [OPTIONS] -- CMD"), _fill_check),
    ("approvals", "remembered approvals: approvals list | grant -- CMD | revoke ID...", _fill_approvals),
    ("doctor", "check what this host can do and what is missing", _fill_doctor),
    ("paths", "the directories in effect: config, data, recordings, layers, runtime, cache ...", _fill_paths),
    ("changes", "what an overlay session changed in the workspace: changes [ID] [--all] [--json]",
     _fill_changes),
    ("diff", "the session's changes as unified diffs: diff ID [PATH...]", _fill_diff),
    ("apply", "bring a session's changes into the workspace: apply ID [PATH...] [--include-protected PATH]",
     _fill_apply),
    ("discard", "drop a session's changes without applying them: discard ID", _fill_discard),
    ("completion", "print the shell completion script: completion bash|zsh|fish", _fill_completion),
    ("ps", "this user's running sandboxes: ps [--json]", _fill_ps),
    ("stop", "end a running session as Ctrl-C would: stop ID", _fill_stop),
    ("exec", "run a command in a running sandbox, judged and recorded: exec ID [--yes] -- CMD", _fill_exec),
    ("inspect", "a session's resolved profile and sandbox spec: inspect ID [--json]", _fill_inspect),
    ("kube", "Kubernetes: kube generate [RUN OPTIONS] -- CMD (manifests for a profile) | kube seccomp NAME | "
             "kube gateway (the egress proxy those manifests run)", _fill_kube),
)


# (command, subcommand) -> module in vectraguard.commands providing `main(args)`.
COMMANDS = {
    ("run", None): "run",
    ("sandbox", "run"): "run",
    ("sandbox", "shell"): "shell",
    ("sandbox", "reap"): "reap",
    ("agent", "start"): "agent",
    ("agent", "list"): "agent",
    ("pool", "start"): "pool",
    ("pool", "stop"): "pool",
    ("pool", "list"): "pool",
    ("image", "build"): "image",
    ("image", "unpack"): "image",
    ("image", "list"): "image",
    ("image", "prune"): "image",
    ("doctor", None): "doctor",
    ("paths", None): "paths",
    ("changes", None): "changes",
    ("diff", None): "changes",
    ("apply", None): "apply",
    ("discard", None): "apply",
    ("profile", "list"): "profile",
    ("profile", "show"): "profile",
    ("profile", "validate"): "profile",
    ("logs", "list"): "logs",
    ("logs", "show"): "logs",
    ("logs", "verify"): "logs",
    ("logs", "head"): "logs",
    ("logs", "export"): "logs",
    ("logs", "prune"): "logs",
    ("logs", "replay"): "logs",
    ("check", None): "check",
    ("approvals", "list"): "approvals",
    ("approvals", "grant"): "approvals",
    ("approvals", "revoke"): "approvals",
    ("trust", None): "trust",
    ("untrust", None): "trust",
    ("completion", None): "completion",
    ("ps", None): "ps",
    ("stop", None): "stop",
    ("exec", None): "exec",
    ("inspect", None): "inspect",
    ("kube", "generate"): "kube",
    ("kube", "seccomp"): "kube",
    ("kube", "gateway"): "kube_gateway",
}


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Everything after the first `--` is the sandboxed command, never an option."""
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, None


def main(argv: Sequence[str]) -> int:
    from vectraguard import diag

    try:
        options, command = split_command(argv)
        parser = parser_for(_command_word(options))
        try:
            args, unknown = parser.parse_known_args(options)
        except errors.UsageError as exc:
            _explain_misplaced_option(exc, options)
            raise
        if unknown:
            _unrecognized(parser, args, unknown)
        diag.configure(-1 if args.quiet else args.verbose)
        sub = getattr(args, f"{args.command_name}_command", None) if args.command_name else None
        key = (args.command_name, sub)
        if key not in COMMANDS:
            _print_help_for(parser, args.command_name)
            return errors.EXIT_REFUSED
        if command is not None:
            if not hasattr(args, "command"):
                raise errors.UsageError(f"vectraguard: `{args.command_name}` takes no command after --")
            if args.command:
                raise errors.UsageError("vectraguard: give the command after --, not before it")
            args.command = command
        args.option_words = options  # the words before `--`, as given (a run keeps them for exec: commands/run.py)
        module = importlib.import_module(f"vectraguard.commands.{COMMANDS[key]}")
        return int(module.main(args))
    except errors.VGError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        if not getattr(exc, "recorded", False) and _is_run(argv):
            _record_refusal(argv, exc)
        return exc.exit_status
    except KeyboardInterrupt:
        print("vectraguard: interrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say where, not a traceback
        return _report_bug(exc)


def _unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace, unknown: list[str]) -> NoReturn:
    """Words no option took, named by the parser of the command chosen, each
    option with a suggestion where one is close (_Parser._with_suggestion);
    the hint to put the command after `--` only for commands that run one
    (their parser has CMD) and when nothing was suggested, else that
    command's --help."""
    chosen = parser
    for dest in ("command_name", f"{args.command_name}_command"):
        choices = chosen._subparsers._group_actions[0].choices if chosen._subparsers else {}
        name = getattr(args, dest, None)
        if not isinstance(choices, dict) or name not in choices:
            break
        chosen = choices[name]
    # `run -q ...`: an option of vectraguard itself, which goes before the command (after a sandboxed command
    # given without `--` it is that command's: the hint below says so).
    own = [] if getattr(args, "command", None) else [word for word in unknown if _is_global_option(parser, word)]
    if own:
        command = chosen.prog.removeprefix("vectraguard ")
        example = "vectraguard --version" if own == ["--version"] else f"vectraguard {' '.join(own)} {command} ..."
        raise errors.UsageError(
            f"{chosen.prog}: {' '.join(own)} {'is an option' if len(own) == 1 else 'are options'} of vectraguard "
            f"itself, not of `{command}`: give {'it' if len(own) == 1 else 'them'} before the command",
            hint=f"e.g. {example}; see `vectraguard --help`")
    words = " ".join(chosen._with_suggestion(word) if isinstance(chosen, _Parser) else word for word in unknown)
    hint = f"see `{chosen.prog} --help`"
    if "(did you mean" not in words and any(action.dest == "command" for action in chosen._actions):
        example = "vectraguard exec ID -- ls -la" if chosen.prog == "vectraguard exec" else "vectraguard run -- ls -la"
        hint = f"the sandboxed command and its options go after `--`, e.g. {example}; " + hint
    from vectraguard.usage_hints import run_option_hint

    habits = run_option_hint(chosen.prog, unknown)  # `run -v SRC:DST`, `-e`, `-it`, `--rm`: docker run's habits
    if habits:
        hint = f"{habits}; see `{chosen.prog} --help`"
    if chosen.prog == "vectraguard exec" and {"-i", "-t", "-it", "-ti", "--interactive", "--tty"} & set(unknown):
        # podman/docker exec -it habits: there is no terminal inside an exec.
        hint = ("exec gives CMD no terminal (its stdin is passed when it is not a terminal); an interactive shell "
                "in a sandbox: `vectraguard sandbox shell`; " + hint)
    raise errors.UsageError(f"{chosen.prog}: unrecognized arguments: {words}", hint=hint)


def _explain_misplaced_option(exc: errors.UsageError, options: Sequence[str]) -> None:
    """`vectraguard --set k=v run`: the command's option before the command made its value the command
    (argparse: "invalid choice: 'k=v'"); say so instead."""
    if not exc.message.startswith("vectraguard: argument COMMAND: invalid choice"):
        return
    from vectraguard.usage_hints import misplaced_option

    found = misplaced_option(options, [name for name, _, _ in _COMMAND_PARSERS])
    if found is not None:
        exc.message, exc.hint = f"vectraguard: {found[0]}", f"{found[1]}; see `vectraguard --help`"


def _is_global_option(parser: argparse.ArgumentParser, word: str) -> bool:
    """Whether `word` is one of vectraguard's own options (-q, -v, -vv, --verbose, --version ...)."""
    strings = {s for action in parser._actions if not isinstance(action, argparse._SubParsersAction)
               for s in action.option_strings} - {"-h", "--help"}
    return word in strings or (word.startswith("-v") and set(word[1:]) == {"v"})


def _command_word(options: Sequence[str]) -> str | None:
    """The command named, if it is one and no global option (they take no
    values) asks for help or the version; else None: the whole parser."""
    for word in options:
        if word in ("-h", "--help", "--version"):
            return None
        if not word.startswith("-"):
            return word if word in {name for name, _, _ in _COMMAND_PARSERS} else None
    return None


def _is_run(argv: Sequence[str]) -> bool:
    words = [w for w in split_command(argv)[0] if not w.startswith("-")]
    return words[:1] == ["run"] or words[:2] in (["sandbox", "run"], ["sandbox", "shell"], ["agent", "start"])


def _record_refusal(argv: Sequence[str], exc: errors.VGError) -> None:
    """A run refused while its options were parsed is an attempt too."""
    import os

    from vectraguard.audit import record
    from vectraguard.audit.run_audit import RunAudit
    from vectraguard.runtime.owner import current_owner

    options, command = split_command(argv)
    agent = options[options.index("--agent") + 1] if "--agent" in options[:-1] else os.environ.get("VECTRAGUARD_AGENT")
    words = [w for w in options if not w.startswith("-")]
    after_start = options[options.index("start") + 1:] if words[:2] == ["agent", "start"] else []
    if after_start and not after_start[0].startswith("-"):
        agent = after_start[0]  # agent start NAME ...
    try:
        audit = RunAudit.open(record.new_session_id(), agent, list(command or []), os.getcwd(), current_owner())
        audit.refused(None, " ".join(exc.lines()), env=record.env_of_options(options, os.environ))
    except (errors.VGError, OSError) as failure:
        print(f"vectraguard: warning: this refusal could not be recorded: {failure}", file=sys.stderr)


def _print_help_for(parser: argparse.ArgumentParser, name: str | None) -> None:
    """`vectraguard` or `vectraguard image` alone: show what can follow."""
    if name is not None:
        for action in parser._subparsers._group_actions if parser._subparsers else []:
            chosen = getattr(action, "choices", {}).get(name)
            if chosen is not None:
                chosen.print_help(sys.stderr)
                return
    parser.print_help(sys.stderr)


def _report_bug(exc: Exception) -> int:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="vectraguard-crash-", suffix=".txt", delete=False) as out:
        traceback.print_exception(exc, file=out)
    print(f"vectraguard: internal error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
    print(f"  the details are in {out.name}; please report this as a bug", file=sys.stderr)
    return errors.EXIT_REFUSED
