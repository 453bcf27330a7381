"""The system policy (/etc/vectraguard/policy.yaml) and every profile against it.

A run reads the policy with config/policy.load and refuses everything while
it is invalid; it lowers shipped defaults above a ceiling (config/ceilings.py)
and refuses values someone set beyond one (config/policy.check_profile).
Doctor does the same for every known profile, so that an administrator sees
what the policy does before users do:

- "system policy": fails when the file is invalid (every run is refused);
- "policy: profile NAME": one row per profile the policy refuses, with each
  reason located; a fail for `default` (what a run without -p uses), a
  warning for the others. A value set in the system's own profiles.d is
  named as such: the administrator can fix both files.
- "a run here": the mounts a run of the default profile from this
  directory would make, checked as the run checks them (built-in deny
  rules, the policy's mount_roots and denied_paths): a policy whose
  mount_roots admit nothing refused every run while the rows above said
  ready. A fail when the system policy is what refuses; a warning when it
  is only this directory (a home directory itself, /tmp ...).
"""

from __future__ import annotations

import os

from vectraguard import errors, paths
from vectraguard.config import ceilings, policy
from vectraguard.config.problems import Problem
from vectraguard.doctor.context import DEFAULT_PROFILE, Context
from vectraguard.doctor.finding import Finding, fail, ok, warn

CHECK = "system policy"


def policy_file(ctx: Context) -> Finding:
    path = paths.system_dir() / policy.FILE_NAME
    if ctx.policy_error is not None:
        error = ctx.policy_error
        detail = "; ".join(line.strip() for line in error.details) or error.message.removeprefix("vectraguard: ")
        return fail(CHECK, f"{path} is invalid, so every run is refused: {detail}",
                    f"fix {path} (`vectraguard profile validate {path}` lists every problem)")
    if ctx.policy is None:
        return ok(CHECK, f"none ({path} does not exist): no ceilings beyond the built-in rules")
    unreadable = _unparsed_ceilings(ctx.policy)
    if unreadable:
        return fail(CHECK, f"{path} is invalid, so every run is refused: {'; '.join(map(str, unreadable))}",
                    f"fix {path}")
    lowered = sorted({f"{item.key} -> {item.ceiling}" for profile in ctx.profiles.values()
                      for item in ceilings.lower_shipped(profile, ctx.policy)[1]})
    note = f"; shipped defaults lowered to its ceilings: {', '.join(lowered)}" if lowered else ""
    return ok(CHECK, f"{path} is valid{note}")


def _unparsed_ceilings(system_policy: policy.Policy) -> list[Problem]:
    """Ceilings the schema lets through but no unit reading accepts (e.g. `memory: lots`)."""
    problems = []
    for rule_path, (_, parse, *_) in ceilings.CEILINGS.items():
        written = system_policy.get(rule_path)
        try:
            if written is not None:
                parse(written)
        except (ValueError, TypeError) as exc:
            problems.append(Problem(system_policy.layer.origin(rule_path), rule_path, str(exc)))
    return problems


def refused_profiles(ctx: Context) -> list[Finding]:
    """One finding per profile the policy refuses (none when there is no valid policy)."""
    if ctx.policy is None:
        return []
    findings = []
    for name, profile in sorted(ctx.profiles.items()):
        within, _ = ceilings.lower_shipped(profile, ctx.policy)
        problems = sorted(set(policy.check_profile(within, ctx.policy)))
        if problems:
            findings.append(_refused(name, problems))
    return findings


def refused_names(findings: list[Finding]) -> list[str]:
    """The profile names of refused_profiles' findings."""
    return [finding.check.removeprefix(CHECK_PREFIX) for finding in findings]


CHECK_PREFIX = "policy: profile "


def _refused(name: str, problems: list[Problem]) -> Finding:
    system_profiles = str(paths.system_dir() / "profiles.d") + "/"
    in_system = sorted({p.origin.source for p in problems if p.origin.source.startswith(system_profiles)})
    detail = f"refused by the system policy: {'; '.join(map(str, problems))}"
    if in_system:
        hint = f"the system profile {', '.join(in_system)} sets a value beyond the policy: change one of the two"
    else:
        hint = "change the file named (or the policy); runs of this profile are refused until then"
    check = f"{CHECK_PREFIX}{name}"
    if name == DEFAULT_PROFILE:
        return fail(check, detail + " (runs without -p use it)", hint)
    return warn(check, detail, hint)


HERE = "a run here"


def run_here(ctx: Context) -> Finding | None:
    """Whether a run of this directory's default profile would get its mounts
    (sandbox/mount_plan.py, the run's own checks; nothing is created)."""
    if ctx.policy_error is not None:
        return None  # "system policy" has already failed: every run is refused
    from vectraguard.config import profiles
    from vectraguard.sandbox import mount_plan
    from vectraguard.sandbox.request import RunRequest

    cwd, name = os.getcwd(), DEFAULT_PROFILE
    try:
        sources = profiles.Sources.for_directory(cwd, ignore_project=False)
        name = sources.default_name()
        profile = profiles.resolve(name, [], sources)
        if ctx.policy is not None:
            profile = ceilings.lower_shipped(profile, ctx.policy)[0]
        request = RunRequest(argv=("true",), profile=name, cwd=cwd, host_env=tuple(os.environ.items()),
                             session_id="doctor", owner="doctor")
        mount_plan.resolve_mounts(profile, request, ctx.policy)
    except errors.VGError as exc:
        detail = "; ".join([exc.message.removeprefix("vectraguard: "), *(line.strip() for line in exc.details)])
        hint = exc.hint or "run from a project directory, or change the file named"
        if "system policy" in exc.message:
            return fail(HERE, f"a run of profile {name} from {cwd} is refused: {detail}", hint)
        return warn(HERE, f"a run from {cwd} is refused (this directory; elsewhere it may not be): {detail}", hint)
    return ok(HERE, f"a run of profile {name} from {cwd} gets its mounts")
