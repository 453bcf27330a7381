"""`vectraguard kube generate [RUN OPTIONS] [KUBE OPTIONS] -- CMD` and `kube seccomp NAME`.

`generate` resolves the profile exactly as `run` does (layers, trust, the
system policy and its ceilings) and judges CMD as `check` does, as an argv,
the way `run` executes it. Only an allowed command is generated:

- allow (or a remembered approval): the manifests on stdout, exit 0;
- ask: refused, exit 125, with the `approvals grant` line that approves it
  (nothing is submitted that a run would have asked about; there is no
  terminal on the cluster to ask at);
- deny: refused, exit 125.

Every decision is recorded first, as `check` records it (a `checked`
record), under the session id the manifests are labelled with, so that the
objects, the gateway's log and the audit trail join on it. If the record
cannot be written, nothing is generated (125).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import sys
from typing import Any

from vectraguard import errors
from vectraguard.audit import record
from vectraguard.audit.checked import Checked, record_checked
from vectraguard.commands.check import MAX_AGENT, label
from vectraguard.kube import differences, generate, pod, references, render
from vectraguard.risk.judged import judge

# A DNS-1123 subdomain: what names a PersistentVolumeClaim, ConfigMap, Secret or RuntimeClass.
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
def main(args: argparse.Namespace) -> int:
    if args.kube_command == "seccomp":
        return _seccomp(args)
    return _generate(args)


def _generate(args: argparse.Namespace) -> int:
    for option, value in (("--volume-claim", args.volume_claim), ("--config-map", args.config_map),
                          ("--env-secret", args.env_secret), ("--runtime-class", args.runtime_class)):
        _check_object_name(option, value)
    for option, value in (("--image", args.image), ("--gateway-image", args.gateway_image)):
        if value is not None:
            references.check(value, option)
    if args.volume_claim and args.config_map:
        raise errors.UsageError("vectraguard kube generate: --volume-claim and --config-map both name the workspace",
                                hint="give one of them")
    if args.workdir is not None and (not args.workdir.startswith("/") or "\0" in args.workdir):
        raise errors.UsageError(f"vectraguard kube generate: --workdir {args.workdir!r}: must be an absolute path")
    downgrade = differences.check_names(args.downgrade)
    agent = label(args.agent if args.agent is not None else os.environ.get("VECTRAGUARD_AGENT") or None,
                  "--agent" if args.agent is not None else "$VECTRAGUARD_AGENT", MAX_AGENT, "kube generate")
    _pass_by_name(args)
    judged = judge(args, "kube generate", argv=True)
    argv = tuple(args.command)
    _refuse_unless_exact(argv)
    session = record.new_session_id()
    decision = judged.decision
    remembered = judged.remembered() if decision.verdict == "ask" else None
    unused = ""
    if remembered is not None and remembered.files:
        # Bound to files as they are here; the cluster runs the volume's.
        unused = (f"remembered approval {remembered.id} not used: it is bound to this host's "
                  f"{', '.join(f.path for f in remembered.files)}, and the cluster runs the volume's")
        remembered = None
    summary = decision.summary() + (f"; {unused}" if unused else "")
    verdict = "allow" if remembered is not None else decision.verdict
    reason = ("remembered approval " + remembered.id) if remembered is not None else summary
    profile = judged.profile
    generated = None
    refusal: errors.VGError | None = None
    if verdict == "allow":
        try:
            generated = _generated(args, judged, argv, session, downgrade)
        except errors.VGError as exc:  # on the record too: a decision was made, and nothing was generated
            refusal = exc
            reason = f"kube generate refused: {' '.join(exc.lines())}"
        else:
            reason = f"kube generate {' '.join(_chosen(args, generated))}: {reason}"
    findings = [j.as_dict() for j in decision.judged]
    record_checked(Checked(
        agent=agent, hook_session=None, command=argv, cwd=judged.cwd, profile=profile.name,
        profile_digest=judged.digest, decision=verdict, exit_status=0 if generated else errors.EXIT_REFUSED,
        findings=findings, remembered=None if remembered is None else {"id": remembered.id,
                                                                       "expires_at": remembered.expires_at},
        reason=reason), args.env, args.set, session_id=session, verb="kube generate")
    if refusal is not None:
        raise refusal
    if generated is None:
        raise _refusal(verdict, argv, findings, args, unused)
    try:
        sys.stdout.write(render.dump(generated.documents, generated.header))
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise errors.VGError(f"vectraguard kube generate: the manifests could not be written to stdout "
                             f"({exc.strerror}); the audit record {session} says they were generated") from None
    return 0


def _chosen(args: argparse.Namespace, generated: generate.Generated) -> list[str]:
    """What the record keeps of the choices that shape the manifests beyond the profile."""
    words = ["--format", args.format]
    if generated.downgraded:
        words += ["--downgrade", ",".join(generated.downgraded)]
    if args.seccomp != "localhost":
        words += ["--seccomp", args.seccomp]
    for option, value in (("--runtime-class", args.runtime_class), ("--image", args.image),
                          ("--volume-claim", args.volume_claim), ("--config-map", args.config_map),
                          ("--gateway-image", args.gateway_image), ("--gateway-ip", args.gateway_ip)):
        if value is not None:
            words += [option, value]
    return words


def _generated(args: argparse.Namespace, judged: Any, argv: tuple[str, ...], session: str,
               downgrade: frozenset[str]) -> generate.Generated:
    profile, policy = judged.profile, judged.policy
    host_path = policy is not None and bool(policy.get("kube.host_path_roots"))
    return generate.generate(generate.Request(
        profile=profile, digest=judged.digest, argv=argv, session=session, format=args.format,
        pod=pod.PodOptions(image=args.image or profile.image, session=session, seccomp=args.seccomp,
                           runtime_class=args.runtime_class,
                           workspace=pod.WorkspaceSource(args.volume_claim, args.config_map),
                           env_secret=args.env_secret, host_path=host_path, workdir=args.workdir),
        downgrade=downgrade, gateway_image=args.gateway_image, gateway_ip=args.gateway_ip,
        now=datetime.datetime.now(datetime.UTC), policy=policy, files_run=_files_run(argv, judged.cwd)))


def _files_run(argv: tuple[str, ...], cwd: str) -> tuple[str, ...]:
    from vectraguard.approvals.script_files import named

    return tuple(dict.fromkeys(found.text for found in named(argv, cwd)))


def _pass_by_name(args: argparse.Namespace) -> None:
    """`--env NAME` (no value) passes NAME from the caller's environment: on a cluster that is a name
    the Secret provides (env.allow), never this host's value written into the YAML."""
    names = [word for word in args.env if "=" not in word]
    args.env = [word for word in args.env if "=" in word]
    args.set = [*args.set, *(f"env.allow+={name}" for name in names)]


def _refusal(verdict: str, argv: tuple[str, ...], findings: list[dict[str, Any]],
             args: argparse.Namespace, unused: str = "") -> errors.VGError:
    why = "; ".join(f"{f['class']} ({f['rule']}): {f['reason']}" for f in findings) or "the profile's decision"
    why += f"; {unused}" if unused else ""
    command = shlex.join(argv)
    if verdict == "deny":
        return errors.PolicyError(f"vectraguard kube generate: {command} is denied ({why}); nothing was generated")
    options = " ".join(shlex.quote(word) for word in _run_option_words(args))
    return errors.PolicyError(
        f"vectraguard kube generate: {command} needs approval ({why}), and a cluster has no terminal to ask at; "
        "nothing was generated",
        hint=f"approve it first: vectraguard approvals grant {options + ' ' if options else ''}-- {command}")


# kube generate's own options (each takes a value): not part of the run options an approval is bound to.
_KUBE_OPTIONS = ("--format", "--volume-claim", "--config-map", "--downgrade", "--seccomp", "--runtime-class",
                 "--env-secret", "--gateway-image", "--gateway-ip")


def _run_option_words(args: argparse.Namespace) -> list[str]:
    """The run options as given after `kube generate` (for the `approvals grant` hint)."""
    words = list(getattr(args, "option_words", ()))
    if "generate" in words:
        words = words[words.index("generate") + 1:]
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in _KUBE_OPTIONS:
            skip = True
        elif not word.startswith(tuple(f"{option}=" for option in _KUBE_OPTIONS)):
            kept.append(word)
    return kept


def _refuse_unless_exact(argv: tuple[str, ...]) -> None:
    """A manifest is UTF-8 text: an argument that is not (bytes os.fsdecode
    kept as surrogates) would reach the cluster as another command."""
    for word in argv:
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise errors.UsageError(
                f"vectraguard kube generate: the argument {word.encode('utf-8', 'backslashreplace').decode()!r} is not "
                "UTF-8, and a manifest carries only UTF-8 text; nothing was generated") from None


def _check_object_name(option: str, value: str | None) -> None:
    if value is not None and (len(value) > 253 or not _OBJECT_NAME.fullmatch(value)):
        raise errors.UsageError(
            f"vectraguard kube generate: {option} {value!r} is not a Kubernetes object name",
            hint="lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")


def _seccomp(args: argparse.Namespace) -> int:
    """Print the shipped seccomp profile, for the nodes' kubelet seccomp directory."""
    import json

    from vectraguard import resources

    text = resources.seccomp_path(args.name, noexec=args.noexec).read_text()
    if args.gvisor:
        from vectraguard.isolation.gvisor import for_gvisor

        text = json.dumps(for_gvisor(json.loads(text)), indent=1) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
