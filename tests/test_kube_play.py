"""The Pod `kube generate` prints, run by `podman kube play` (rootful), its posture checked from inside.

What Podman 4.3 does with each field is in tests/test_kube_play_support.py
(and the README's "Kubernetes" section): it honours the user, the user
namespace (hostUsers: false), no capabilities, no-new-privileges, the
read-only root and the cpu/memory limits; it ignores `seccompProfile`,
which its seccomp annotation replaces (given here at play time with
--annotation, the profile's directory as --seccomp-profile-root, as a node's
kubelet root would hold it); it ignores emptyDir's medium and sizeLimit and
activeDeadlineSeconds, and it passes a command and env values as written (the
kubelet reads `$(NAME)` and `$$` in them). The pids and open-file limits come
from the command's prlimit, so they hold under kube play as on a cluster.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.kube_play import (
    POSTURE,
    as_the_kubelet_runs,
    play,
    posture,
    require_kube_play,
)
from tests.support.vg import DEFAULT_IMAGE_REF, Caller
from vectraguard import resources


def test_the_generated_pod_runs_with_the_profiles_posture(root: Caller, workspace: Path, default_image: str) -> None:
    require_kube_play()
    assert default_image  # built (the fixture returns its ID; Podman resolves the pod's image by name)
    generated = root.run(["kube", "generate", "-p", "untrusted", "--workspace", "none", "--image", DEFAULT_IMAGE_REF,
                          "--", "sh", "-c", POSTURE], cwd=workspace)
    assert generated.returncode == 0, generated.stderr.decode()
    [pod] = [d for d in yaml.safe_load_all(generated.stdout) if d and d["kind"] == "Pod"]
    seccomp = pod["spec"]["securityContext"]["seccompProfile"]
    assert seccomp == {"type": "Localhost", "localhostProfile": "vectraguard/strict.json"}
    shipped = resources.seccomp_path("strict", noexec=False)
    # Podman 4.3 passes a command and env values as written, where the kubelet expands them (the generator
    # doubles each `$`: kube/pod.literal): played as the kubelet would run it.
    played = play(as_the_kubelet_runs(generated.stdout.decode()), extra_args=[
        "--seccomp-profile-root", str(shipped.parent),
        "--annotation", f"seccomp.security.alpha.kubernetes.io/pod=localhost/{shipped.name}"])
    inside = posture(played)
    assert (inside["uid"], inside["gid"]) == ("1000", "1000")
    assert inside["CapEff"] == inside["CapBnd"] == "0000000000000000"
    assert inside["NoNewPrivs"] == "1"
    assert inside["Seccomp"] == "2"
    assert inside["af_alg"] == "1", "the strict profile refuses AF_ALG sockets with EPERM"
    assert inside["rootmount"] == "ro" and inside["rootwrite"] == "refused"
    assert not inside["uidmap"].startswith("0:0:"), f"hostUsers: false gives a user namespace ({inside['uidmap']})"
    # untrusted: 1 CPU, 512Mi, 128 processes, 1024 open files.
    assert (inside["nproc"], inside["nofile"]) == ("128", "1024")
    assert int(inside["memory"]) == 512 << 20
    quota, period = (int(part) for part in inside["cpu"].split("/"))
    assert quota == period, inside["cpu"]
    assert inside["write/tmp"] == inside["write/home/sandbox"] == "ok"
