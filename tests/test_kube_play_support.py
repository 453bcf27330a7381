"""The `podman kube play` harness (tests/support/kube_play.py), proved on a
hand-written Pod with exactly the fields `vectraguard kube generate` prints.

The sandbox prints its posture from inside and each property is asserted.
What Podman 4.3 cannot make true from the design's fields alone is an
xfail(strict=True) naming the field and the fix (an annotation or a
`kube play` option), and the fix has its own passing test; so the day
Podman honours a field, the xfail turns into a failure that says so.
Needs root, podman, catatonit and the default image (Debian: prlimit,
python3), which conftest's default_image fixture builds if it is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube_play import POSTURE, Played, play, posture, require_kube_play
from tests.support.vg import DEFAULT_IMAGE_REF

REPO = Path(__file__).resolve().parent.parent
STRICT_SECCOMP = REPO / "profiles" / "seccomp" / "strict.json"
MEMORY = 256 * 1024 * 1024
NPROC, NOFILE = 64, 256
DIGEST = "0" * 64

def pod_yaml(*, command: list[str], annotations: dict[str, str] | None = None,
             run_as_user: int = 1000, deadline_s: int = 60) -> str:
    """The design's Pod (docs: /tmp/briefs/i19-design.md), hand-written; JSON is YAML."""
    import json

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "vectraguard-kubeplay",
            "labels": {
                "app.kubernetes.io/managed-by": "vectraguard",
                "vectraguard.io/session": "kubeplay",
                "vectraguard.io/profile": "default",
                "vectraguard.io/profile-digest": DIGEST[:63],
            },
            "annotations": annotations if annotations is not None else {},
        },
        "spec": {
            "hostUsers": False,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline_s,
            "terminationGracePeriodSeconds": 2,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": run_as_user,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "vectraguard/strict.json"},
            },
            "containers": [{
                "name": "sandbox",
                "image": DEFAULT_IMAGE_REF,
                "imagePullPolicy": "IfNotPresent",
                "command": ["prlimit", f"--nproc={NPROC}", f"--nofile={NOFILE}", "--", *command],
                "workingDir": "/workspace",
                "env": [
                    {"name": "PATH", "value": "/usr/local/bin:/usr/bin:/bin"},
                    {"name": "HOME", "value": "/home/sandbox"},
                    {"name": "TERM", "value": "dumb"},
                    {"name": "LANG", "value": "C.UTF-8"},
                ],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": {
                    "requests": {"cpu": "500m", "memory": str(MEMORY)},
                    "limits": {"cpu": "500m", "memory": str(MEMORY)},
                },
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "home", "mountPath": "/home/sandbox"},
                ],
            }],
            "volumes": [
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "home", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            ],
        },
    }
    return json.dumps(pod, indent=1)


@pytest.fixture(scope="module")
def image(default_image: str) -> str:
    require_kube_play()
    return default_image


@pytest.fixture(scope="module")
def seccomp_root() -> Iterator[Path]:
    """A --seccomp-profile-root holding vectraguard/strict.json, as a node's kubelet would."""
    root = Path(tempfile.mkdtemp(prefix="vg-seccomp-root-"))
    (root / "vectraguard").mkdir()
    shutil.copy(STRICT_SECCOMP, root / "vectraguard" / "strict.json")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def design_only(image: str) -> dict[str, str]:
    """The posture of the design's Pod, played with no annotations and no options."""
    return posture(play(pod_yaml(command=["sh", "-c", POSTURE])))


@pytest.fixture(scope="module")
def design_only_played(image: str) -> Played:
    return play(pod_yaml(command=["true"]))


# -- honoured by Podman 4.3 ---------------------------------------------------------------

def test_run_as_user_and_group(design_only: dict[str, str]) -> None:
    assert (design_only["uid"], design_only["gid"]) == ("1000", "1000")


def test_capabilities_drop_all(design_only: dict[str, str]) -> None:
    assert design_only["CapEff"] == design_only["CapBnd"] == "0000000000000000"


def test_allow_privilege_escalation_false_sets_no_new_privs(design_only: dict[str, str]) -> None:
    assert design_only["NoNewPrivs"] == "1"


def test_read_only_root_filesystem(design_only: dict[str, str]) -> None:
    # /workspace is the sandbox user's own directory in the image (no volume here):
    # only a read-only root refuses the write.
    assert design_only["rootwrite"] == "refused"
    assert design_only["rootmount"] == "ro"


def test_prlimit_in_the_command_sets_nofile_and_nproc(design_only: dict[str, str]) -> None:
    assert (design_only["nofile"], design_only["nproc"]) == (str(NOFILE), str(NPROC))


def test_memory_and_cpu_limits_reach_the_cgroup(design_only: dict[str, str]) -> None:
    assert design_only["memory"] == str(MEMORY)
    assert design_only["cpu"] in ("50000/100000",)


def test_host_users_false_gives_a_user_namespace(design_only: dict[str, str]) -> None:
    # hostUsers: false -> --userns=auto (play.go:373-377 at v4.3.1): container root is
    # an unprivileged host uid, not 0.
    inside, outside, _count = design_only["uidmap"].split(":")
    assert inside == "0" and outside != "0", design_only["uidmap"]


def test_empty_dirs_are_writable_by_the_sandbox_user(design_only: dict[str, str]) -> None:
    # fsGroup is ignored (kube.go:591-657 reads runAsUser/runAsGroup/supplementalGroups
    # only): the volumes are writable because Podman copies the image's directory
    # (its mode and owner) into a new volume.
    assert (design_only["write/tmp"], design_only["write/home/sandbox"]) == ("ok", "ok")


def test_restart_policy_never(design_only_played: Played) -> None:
    assert design_only_played.inspect["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_the_sandbox_runs_under_a_seccomp_filter(design_only: dict[str, str]) -> None:
    assert design_only["Seccomp"] == "2"  # filter mode; which profile: see below


# -- ignored by Podman 4.3: each names its fix, which is tested after it -----------------

@pytest.mark.xfail(strict=True, reason="Podman 4.3 ignores securityContext.seccompProfile and uses its "
                   "default profile; fix: annotation seccomp.security.alpha.kubernetes.io/pod: "
                   "localhost/strict.json with --seccomp-profile-root NODE_ROOT/vectraguard")
def test_design_fields_alone_give_the_strict_seccomp_profile(design_only: dict[str, str]) -> None:
    assert design_only["af_alg"] == "1"  # EPERM


def test_the_seccomp_annotation_gives_the_strict_seccomp_profile(image: str, seccomp_root: Path) -> None:
    annotations = {"seccomp.security.alpha.kubernetes.io/pod": "localhost/strict.json"}
    played = play(pod_yaml(command=["sh", "-c", POSTURE], annotations=annotations),
                  extra_args=["--seccomp-profile-root", str(seccomp_root / "vectraguard")])
    assert posture(played)["af_alg"] == "1"


def test_the_container_seccomp_annotation_gives_the_strict_seccomp_profile(image: str,
                                                                         seccomp_root: Path) -> None:
    annotations = {"container.seccomp.security.alpha.kubernetes.io/sandbox": "localhost/strict.json"}
    played = play(pod_yaml(command=["sh", "-c", POSTURE], annotations=annotations),
                  extra_args=["--seccomp-profile-root", str(seccomp_root / "vectraguard")])
    assert posture(played)["af_alg"] == "1"


def test_a_nested_localhost_seccomp_path_is_cut_at_its_first_directory(image: str, seccomp_root: Path) -> None:
    # verifySeccompPath keeps only the first element after "localhost/"
    # (pkg/specgen/generate/kube/seccomp.go:80-82 at v4.3.1): "localhost/vectraguard/strict.json"
    # names ROOT/vectraguard, a directory, and the container cannot start.
    annotations = {"seccomp.security.alpha.kubernetes.io/pod": "localhost/vectraguard/strict.json"}
    played = play(pod_yaml(command=["true"], annotations=annotations),
                  extra_args=["--seccomp-profile-root", str(seccomp_root)])
    assert played.play_rc != 0
    assert f"read {seccomp_root}/vectraguard: is a directory" in played.play_output


@pytest.mark.xfail(strict=True, reason="Podman 4.3 ignores runAsNonRoot (kube.go setupSecurityContext reads "
                   "runAsUser/runAsGroup only); no annotation or option: the generator must never "
                   "emit uid 0 (it refuses security.user root itself)")
def test_run_as_non_root_refuses_uid_0(image: str) -> None:
    played = play(pod_yaml(command=["sh", "-c", "id -u"], run_as_user=0))
    assert played.play_rc != 0 or played.exit_code != 0 or played.stdout.strip() != "0", played


@pytest.mark.xfail(strict=True, reason="Podman 4.3 makes an emptyDir a disk volume "
                   "(volume.go:237: no medium, no sizeLimit); no annotation or option")
def test_empty_dir_medium_memory_is_a_tmpfs(design_only: dict[str, str]) -> None:
    assert design_only["tmpfs"] == "tmpfs"


@pytest.mark.xfail(strict=True, reason="Podman 4.3 ignores terminationGracePeriodSeconds (stop timeout "
                   "stays 10 s); no annotation; `podman kube down`/`pod stop -t` take it at stop time")
def test_termination_grace_period_is_the_stop_timeout(design_only_played: Played) -> None:
    assert design_only_played.inspect["Config"]["StopTimeout"] == 2


@pytest.mark.xfail(strict=True, reason="Podman 4.3 ignores activeDeadlineSeconds; no annotation or option: "
                   "the caller enforces it (poll with a deadline, then `podman pod stop`/`kube down`)")
def test_active_deadline_ends_the_pod(image: str) -> None:
    played = play(pod_yaml(command=["sh", "-c", "sleep 4; echo outlived"], deadline_s=1))
    assert played.play_rc == 0, played.play_output
    assert "outlived" not in played.stdout


def test_podman_refuses_annotation_values_over_63_characters(image: str) -> None:
    # define.MaxKubeAnnotation = 63, checked on every pod annotation (play.go:194-198
    # at v4.3.1): the design's 64-hex profile-digest annotation is refused.
    played = play(pod_yaml(command=["true"], annotations={"vectraguard.io/profile-digest": DIGEST}))
    assert played.play_rc != 0
    assert "value length exceeds Kubernetetes max 63" in played.play_output
