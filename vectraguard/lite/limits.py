"""What isolation `lite` cannot give, said before anything starts (compile.py).

- an `overlay` workspace: its layer is mounted for a container's mapped
  ids by workspace/ (kernel overlayfs or fuse-overlayfs driven through
  Podman's id mapping); bubblewrap 0.8 has no overlay of its own.
- `network: full`: there is no engine to give the sandbox a NAT'ed network
  of its own, and the host's own network namespace (bubblewrap without
  --unshare-net) would show it the host's loopback services.
- an agent's persistent `$HOME` volume: Podman volumes are Podman's.
- rootless, cgroup limits: Vectra Guard makes a `lite` sandbox's cgroup
  itself, which only root can do here; a profile must accept best-effort
  limits (as for rootless Podman without delegated controllers).
"""

from __future__ import annotations

from vectraguard.config.resolved import ResolvedProfile


def what_lite_cannot_give(profile: ResolvedProfile) -> str:
    """"" when every setting of the profile has its `lite` equivalent, else which one does not and why."""
    def where(key: str) -> str:
        origin = profile.provenance.get(key)
        return f" (set by {origin})" if origin is not None else ""

    if profile.workspace_mode == "overlay":
        return (f"an overlay workspace{where('filesystem.workspace.mode')}: bubblewrap has no overlay; "
                "run it with --workspace ro, rw or none")
    if profile.network_mode == "full":
        return (f"network full{where('network.mode')}: without a container engine the sandbox would share the "
                "host's network namespace; use --network none or an allowlist (--allow HOST)")
    if profile.agent is not None and profile.agent.home == "volume":
        return f"the agent's persistent $HOME volume{where('agent.home')}: volumes are Podman's"
    return ""


def why_not_enforced(rootless: bool) -> str:
    """"" when a `lite` sandbox's cpu, memory and pids limits are enforced (rootful: a cgroup of its own)."""
    return "isolation lite makes cgroups only as root; rootless it has none" if rootless else ""
