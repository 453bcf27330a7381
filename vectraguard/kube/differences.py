"""Where a profile cannot be given faithfully on Kubernetes, and what is done instead.

Fail closed: a setting with no faithful equivalent refuses the generation
(exit 125, one line per setting) unless `--downgrade NAME` accepts the named
replacement; every accepted downgrade, and every note on what a cluster must
provide, is listed in the generated YAML's comment header. A downgrade never
makes the sandbox quietly weaker than its profile says: it is named by the
person generating, and written where the person applying reads.
"""

from __future__ import annotations

from vectraguard import errors
from vectraguard.config.problems import Origin
from vectraguard.config.resolved import ResolvedProfile
from vectraguard.records import record


@record
class Difference:
    """One setting given differently on Kubernetes."""

    name: str  # the --downgrade word that accepts it
    setting: str  # the profile key, e.g. "isolation"
    value: str  # its value, as a profile file writes it
    instead: str  # what the generated objects do instead


# --downgrade word -> what it accepts (for --help, errors and the man page).
DOWNGRADES = {
    "isolation-lite": "isolation lite runs as an ordinary container (runc or the RuntimeClass given)",
    "workspace-overlay": "an overlay workspace is mounted read-only (writes fail; nothing to review)",
    "noexec-tmpfs": "/tmp and $HOME allow execution (emptyDir has no noexec; seccomp still refuses memfd_create)",
    "mounts": "the profile's host mounts are left out (no hostPath outside the policy's kube.host_path_roots)",
    "hosts-file": "network.hosts_file is left out: the gateway resolves names through the cluster's DNS",
    "upstream-proxy": "network.upstream_proxy is left out: the gateway connects directly",
    "host-ca": "network.trust_host_ca is left out: the sandbox gets no host CA bundle",
}


def find(profile: ResolvedProfile, *, host_path: bool) -> list[Difference]:
    """The settings of `profile` that need a --downgrade; `host_path`: the
    system policy names node directories for hostPath volumes (kube.host_path_roots;
    then read-only mounts need none, and kube/paths.py checks each)."""
    found: list[Difference] = []
    if profile.isolation == "lite":
        found.append(Difference("isolation-lite", "isolation", "lite", DOWNGRADES["isolation-lite"]))
    if profile.workspace_mode == "overlay":
        found.append(Difference("workspace-overlay", "filesystem.workspace.mode", "overlay",
                                DOWNGRADES["workspace-overlay"]))
    if profile.noexec_tmpfs:
        found.append(Difference("noexec-tmpfs", "filesystem.noexec_tmpfs", "true", DOWNGRADES["noexec-tmpfs"]))
    unfaithful = [m for m in profile.mounts if m.mode == "rw" or not host_path]
    if unfaithful:
        why = "read-write host mounts have no equivalent" if host_path else DOWNGRADES["mounts"]
        found.append(Difference("mounts", "filesystem.mounts",
                                ", ".join(f"{m.source}:{m.target}:{m.mode}" for m in unfaithful), why))
    if profile.network_mode == "allowlist":
        if profile.network_hosts_file:
            found.append(Difference("hosts-file", "network.hosts_file", profile.network_hosts_file,
                                    DOWNGRADES["hosts-file"]))
        if profile.network_upstream_proxy:
            from vectraguard.config.upstream import redact

            found.append(Difference("upstream-proxy", "network.upstream_proxy",
                                    str(redact(profile.network_upstream_proxy)), DOWNGRADES["upstream-proxy"]))
    if profile.network_mode in ("allowlist", "full") and profile.network_trust_host_ca:
        found.append(Difference("host-ca", "network.trust_host_ca", "true", DOWNGRADES["host-ca"]))
    return found


def check_names(words: list[str]) -> frozenset[str]:
    """The --downgrade words (each may be a comma-separated list); UsageError for an unknown one."""
    names = {name.strip() for word in words for name in word.split(",") if name.strip()}
    unknown = sorted(names - DOWNGRADES.keys())
    if unknown:
        from vectraguard.suggest import did_you_mean

        raise errors.UsageError(
            f"vectraguard kube generate: --downgrade {unknown[0]!r} names no setting"
            f"{did_you_mean(unknown[0], DOWNGRADES)}",
            hint=f"one of: {', '.join(DOWNGRADES)}")
    return frozenset(names)


def refuse_unaccepted(found: list[Difference], accepted: frozenset[str], profile: ResolvedProfile) -> None:
    """UsageError (exit 125), one line per setting Kubernetes cannot give, unless accepted."""
    refused = [d for d in found if d.name not in accepted]
    if not refused:
        return
    lines = [f"{_origin(profile, d.setting)}: {d.setting}: {d.value} has no faithful Kubernetes equivalent; "
             f"nothing was generated (to accept that {d.instead}: --downgrade {d.name})" for d in refused]
    raise errors.UsageError(f"vectraguard kube generate: profile {profile.name!r}, {lines[0]}", details=lines[1:])


def _origin(profile: ResolvedProfile, key: str) -> str:
    return str(profile.provenance.get(key, Origin("<profile>")))
