"""A command judged as `vectraguard run` would judge it, without preparing a run:
what `check` reports and what `approvals grant` asks about.

A single argument is a command line, as agents' shell tools give it (a
shell reads `rm${IFS}-rf${IFS}/` as three words); several are an argv.
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass

from vectraguard import errors
from vectraguard.approvals import store
from vectraguard.config import flags, policy, profiles
from vectraguard.config.problems import raise_if_any
from vectraguard.config.resolved import ResolvedProfile, digest
from vectraguard.risk.assess import assess
from vectraguard.risk.decide import Decision


@dataclass(frozen=True)
class Judged:
    command: tuple[str, ...] | str  # an argv, or a command line
    cwd: str
    profile: ResolvedProfile
    digest: str
    decision: Decision
    policy: policy.Policy | None

    def text(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    def argvs(self) -> list[tuple[str, ...]]:
        """The argvs an approval of this command is bound to: a line runs as
        `vectraguard run -- sh -c LINE`, or, when it is plain words, as those words."""
        if not isinstance(self.command, str):
            return [self.command]
        argvs: list[tuple[str, ...]] = [("sh", "-c", self.command)]
        try:
            words = tuple(shlex.split(self.command))
        except ValueError:
            return argvs
        if words and shlex.join(words) == self.command:  # nothing a shell would expand or redirect
            argvs.append(words)
        return argvs

    def remembered(self) -> store.Remembered | None:
        for argv in self.argvs():
            found = store.find(argv, self.cwd, self.digest)
            if found is not None:
                return found
        return None

    def writable(self) -> tuple[str, ...]:
        """What the profile would mount read-write (the run's own list comes from its mount plan)."""
        workspace = (f"{self.cwd} -> {self.profile.workspace_target}",) if self.profile.workspace_mode == "rw" else ()
        return workspace + tuple(f"{m.source} -> {m.target}" for m in self.profile.mounts if m.mode == "rw")


def judge(args: argparse.Namespace, verb: str, *, argv: bool = False) -> Judged:
    """Resolve the profile with the run options in `args` and judge `args.command`
    (`verb`, e.g. "check", names the command in messages); with `argv`, a single
    argument is a program, as `run` executes it, not a command line."""
    if not args.command or not any(word.strip() for word in args.command):
        raise errors.UsageError(f"vectraguard {verb}: no command given",
                                hint=f"vectraguard {verb} [OPTIONS] -- CMD [ARG...]   or   "
                                f"vectraguard {verb} [OPTIONS] -- 'CMD LINE'")
    cwd = os.path.realpath(os.getcwd())
    command: tuple[str, ...] | str = args.command[0] if len(args.command) == 1 and not argv else tuple(args.command)
    sources = profiles.Sources.for_directory(cwd, ignore_project=args.ignore_project)
    profile = profiles.resolve(args.profile or sources.default_name(), [flags.flags_layer(args)], sources)
    system_policy = policy.load()
    if system_policy is not None:  # judged as a run would run it: shipped defaults within the ceilings
        from vectraguard.config import ceilings

        profile, _ = ceilings.lower_shipped(profile, system_policy)
    raise_if_any(policy.check_profile(profile, system_policy),
                 "vectraguard: the system policy refuses this run", error=errors.PolicyError)
    decision = assess(command, cwd, profile, args, sources, system_policy)
    return Judged(command, cwd, profile, digest(profile), decision, system_policy)
