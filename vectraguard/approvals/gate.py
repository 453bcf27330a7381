"""The gate before a run: a Decision becomes a go (with audit entries) or a refusal.

`allow` goes ahead. `deny` is refused, naming the setting that denied.
`ask` goes ahead when, in this order: a remembered approval matches
exactly (the command, directory, profile and the files the command runs:
approvals/bound_files.py); `--yes` was given (unless the policy forbids it); the person at the
terminal says yes; there is no terminal and the policy approves unattended
runs. Otherwise it is refused. Every outcome is an audit entry: what was
decided, by whom (the setting, the flag, the person, the remembered
approval) and when. A refusal carries its entries on the exception, so the
refused record has them too.

`settled` also says whether the terminal had a say and until when a
remembered approval holds: approvals/cached_gate.py reuses only an outcome
no person had a say in, and no longer than the approval it rests on.

`grant` is the same question asked ahead of time (`approvals grant`), for
a command that an agent's hook will meet: only a remembered yes counts.

The question shows the files the command runs, with their digests: a yes
is remembered for that content only. When one of them cannot be read (or
named: `sh "$F"`), the yes cannot be remembered, and the question says so
instead of offering it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vectraguard import units
from vectraguard.approvals import bound_files, prompt
from vectraguard.audit import record
from vectraguard.config.policy import Policy
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.errors import PolicyError
from vectraguard.output import printable
from vectraguard.risk.decide import Decision

if TYPE_CHECKING:
    from vectraguard.approvals.store import Remembered

DEFAULT_REMEMBER_FOR = "24h"


@dataclass(frozen=True)
class Run:
    """What the person is asked about."""

    argv: tuple[str, ...]
    cwd: str
    profile: ResolvedProfile
    digest: str  # of the resolved profile, as the audit record has it
    writable: tuple[str, ...]  # "host path -> sandbox path" of each read-write mount
    network: str

    def command(self) -> str:
        import shlex

        return printable(shlex.join(self.argv))


@dataclass(frozen=True)
class Settled:
    """A run that may go ahead: its audit entries, and what they rest on."""

    entries: tuple[dict[str, Any], ...]
    # Whether the terminal had a say: a person answered, or there was no terminal
    # to ask on. Only an outcome without one may be reused (approvals/cached_gate.py).
    asked: bool = False
    until: float | None = None  # the remembered approval it rests on holds until then (seconds since the epoch)


def settle(decision: Decision, run: Run, *, yes: bool, policy: Policy | None) -> tuple[dict[str, Any], ...]:
    """The audit entries of a run that may go ahead, or PolicyError."""
    return settled(decision, run, yes=yes, policy=policy).entries


def settled(decision: Decision, run: Run, *, yes: bool, policy: Policy | None) -> Settled:
    """`settle`, saying whether the terminal had a say and until when a remembered approval holds."""
    if not decision.judged:
        return Settled(())
    user, _ = record.who()

    def entry(outcome: str, by: str, **extra: Any) -> dict[str, Any]:
        return {"decision": outcome, "by": by, "user": user, "at": record.now(), "verdict": decision.verdict,
                "findings": [j.as_dict() for j in decision.judged], **extra}

    details = _details(decision)
    if decision.verdict == "allow":
        return Settled((entry("allowed", "risk.decisions"),))
    if decision.verdict == "deny":
        raise _denial(run, details, entry("denied", "risk.decisions"))
    from vectraguard.approvals import store  # only a run with findings needs the store

    binding = bound_files.bind(run.argv, run.cwd)
    remembered = store.find(run.argv, run.cwd, run.digest, binding)
    ran = _runs(binding)  # in each entry: the content a yes was given to
    if remembered is not None:
        return Settled((entry("approved", f"remembered approval {remembered.id}", remembered=remembered.id,
                              approved_by=remembered.user, approved_at=remembered.created_at, **ran),),
                       until=remembered.expires_at)
    if yes:
        if _policy(policy, "approvals.allow_yes", True):
            return Settled((entry("approved", "--yes", **ran),))
        details.append(f"--yes is not accepted: {policy.rule('approvals.allow_yes') if policy else ''}")
    remember_for = _remember_for(run.profile, policy) if binding.complete else None
    answer = prompt.ask(_screen(run, details, binding),
                        units.format_duration(remember_for) if remember_for else None)
    if answer is None:
        if _policy(policy, "approvals.without_terminal", "refuse") == "approve":
            assert policy is not None
            return Settled((entry("approved", policy.rule("approvals.without_terminal"), **ran),), asked=True)
        raise _refusal(f"vectraguard: `{run.command()[:200]}` needs approval, and there is no terminal to ask on",
                       details, "run it from a terminal to be asked, or pass --yes",
                       entry("refused", "no terminal", **ran))
    if answer is prompt.Answer.NO:
        raise _refusal(f"vectraguard: `{run.command()[:200]}`: not approved", [], "",
                       entry("declined", "terminal", **ran))
    if answer is prompt.Answer.REMEMBER and remember_for:
        kept = store.remember(run.argv, run.cwd, run.profile.name, run.digest,
                              tuple(j.finding.rule for j in decision.judged), user, record.now(), remember_for,
                              binding.files)
        return Settled((entry("approved", "terminal", remembered=kept.id, **ran),), asked=True)
    return Settled((entry("approved", "terminal", **ran),), asked=True)


def grant(decision: Decision, run: Run, *, policy: Policy | None) -> Remembered | None:
    """`approvals grant`: ask now, on the terminal, and remember the yes for
    when the command comes (through `run`, `check` or an agent's hook).
    None when the command needs no approval."""
    details = _details(decision)
    if decision.verdict == "allow":
        return None
    if decision.verdict == "deny":
        raise _denial(run, details, {})
    remember_for = _remember_for(run.profile, policy)
    if remember_for is None:
        raise PolicyError("vectraguard: approvals cannot be remembered here",
                          hint="the system policy (approvals.remember) or the profile (risk.remember_for: false) "
                          "switches remembering off")
    binding = bound_files.bind(run.argv, run.cwd)
    if not binding.complete:
        raise PolicyError(f"vectraguard: `{run.command()[:200]}` cannot be remembered: a remembered approval is "
                          "bound to the files the command runs, and these cannot be read",
                          details=[printable(p) for p in binding.problems],
                          hint="name the files literally, make them readable regular files, or approve each run")
    answer = prompt.ask(_screen(run, details, binding), units.format_duration(remember_for), once=False)
    if answer is None:
        raise PolicyError("vectraguard: approvals grant asks a person, and there is no terminal to ask on",
                          hint="run it from a terminal (--yes does not apply: the point is that a person says yes)")
    if answer is not prompt.Answer.REMEMBER:
        raise PolicyError(f"vectraguard: `{run.command()[:200]}`: not approved")
    from vectraguard.approvals import store

    user, _ = record.who()
    return store.remember(run.argv, run.cwd, run.profile.name, run.digest,
                          tuple(j.finding.rule for j in decision.judged), user, record.now(), remember_for,
                          binding.files)


def network_summary(profile: ResolvedProfile) -> str:
    if profile.network_mode == "allowlist":
        return "allowlist: " + (", ".join(profile.network_allow) or "(empty)")
    return {"none": "none", "full": "full (any destination)"}.get(profile.network_mode, profile.network_mode)


def _details(decision: Decision) -> list[str]:
    return [f"{j.finding.cls} ({j.finding.rule}): {printable(j.finding.matched)[:200]} — "
            f"{j.finding.reason}; {j.verdict} by {j.by}" for j in decision.judged]


def _denial(run: Run, details: list[str], audit_entry: dict[str, Any]) -> PolicyError:
    return _refusal(f"vectraguard: refused: profile {run.profile.name} denies `{run.command()[:200]}`", details,
                    "choose a profile whose risk.decisions allow it, or change risk.decisions "
                    "(man vectraguard-profile, APPROVALS)", audit_entry)


def _policy(policy: Policy | None, path: str, default: Any) -> Any:
    value = policy.get(path) if policy is not None else None
    return default if value is None else value


def _remember_for(profile: ResolvedProfile, policy: Policy | None) -> float | None:
    """How long a remembered approval lasts; None when remembering is off."""
    if not _policy(policy, "approvals.remember", True):
        return None
    text = (profile.risk or {}).get("remember_for", DEFAULT_REMEMBER_FOR)
    return None if text is False else units.parse_duration(text)


def _runs(binding: bound_files.Binding) -> dict[str, Any]:
    return {"runs": [{"path": f.path, "sha256": f.sha256} for f in binding.files]} if binding.files else {}


def _screen(run: Run, details: list[str], binding: bound_files.Binding) -> str:
    lines = ["", "vectraguard: this run needs your approval",
             f"  command:   {run.command()}",
             f"  directory: {printable(run.cwd)}",
             *(f"  runs:      {printable(f.path)}{_leads_to(f)} (sha256 {f.sha256[:16]})" for f in binding.files),
             *(f"  runs:      {printable(p)} (so this yes cannot be remembered)" for p in binding.problems),
             f"  profile:   {run.profile.name} (digest {run.digest[:12]})",
             f"  writable:  {', '.join(printable(w) for w in run.writable) or 'nothing'}",
             f"  network:   {run.network}",
             "  findings:"]
    lines += [f"    - {d}" for d in details]
    return "\n".join(lines)


def _leads_to(file: bound_files.BoundFile) -> str:
    return f" -> {printable(file.target)}" if file.target != file.path else ""


def _refusal(message: str, details: list[str], hint: str, audit_entry: dict[str, Any]) -> PolicyError:
    error = PolicyError(message, details=details, hint=hint)
    error.approvals = (audit_entry,) if audit_entry else ()  # type: ignore[attr-defined]
    return error
