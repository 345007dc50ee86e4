"""The catalog's cross-references to peers (issue 11): every `references=(...)` entry names a check that
exists in the peer's own source and means what ours means. Each reference below was read in the peer's
source; the comment names the file. An invented id, or a real one filed under the wrong check, fails.

To add a reference: read the peer's source, add it here with the file it came from, then to the check.
"""

from __future__ import annotations

from readiness.checks import all_checks

# kube-score (zegl/kube-score): the id is the registered name lowercased, spaces as dashes
# (machineFriendlyName in score/checks/checks.go).
KUBE_SCORE: dict[str, tuple[str, ...]] = {
    # score/probes/probes.go: "Pod Probes" (readiness and liveness only, no startup probe)
    "kube-score:pod-probes": ("liveness-probe-missing", "readiness-probe-missing"),
    # score/probes/probes.go: "Pod Probes Identical"
    "kube-score:pod-probes-identical": ("liveness-probe-too-aggressive",),
    # score/container/container.go: "Container Resources" (requests and limits of cpu and memory)
    "kube-score:container-resources": ("cpu-limit-missing", "cpu-request-missing", "memory-limit-missing",
                                       "memory-request-missing"),
    # score/container/container.go: the optional "Container Resource Requests Equal Limits",
    # "Container CPU Requests Equal Limits", "Container Memory Requests Equal Limits" (maxRatio 1)
    "kube-score:container-resource-requests-equal-limits": ("limit-request-ratio",),
    "kube-score:container-cpu-requests-equal-limits": ("limit-request-ratio",),
    "kube-score:container-memory-requests-equal-limits": ("limit-request-ratio",),
    # score/container/container.go, scorecard/scorecard.go: "Container Ephemeral Storage Request and Limit"
    "kube-score:container-ephemeral-storage-request-and-limit": ("ephemeral-storage-request-missing",),
    # score/security/security.go: "Container Security Context Privileged", "... User Group ID",
    # "... ReadOnlyRootFilesystem", "Container Seccomp Profile"
    "kube-score:container-security-context-privileged": ("privileged-container",),
    "kube-score:container-security-context-user-group-id": ("run-as-root",),
    "kube-score:container-security-context-readonlyrootfilesystem": ("writable-root-filesystem",),
    "kube-score:container-seccomp-profile": ("seccomp-profile-missing",),
    # score/container/container.go: "Container Image Tag"
    "kube-score:container-image-tag": ("image-tag-mutable",),
    # score/deployment/deployment.go: "Deployment Strategy", "Deployment Replicas"
    "kube-score:deployment-strategy": ("rolling-update-unsafe",),
    "kube-score:deployment-replicas": ("replicas-too-few",),
    # score/disruptionbudget/disruptionbudget.go: "Deployment has PodDisruptionBudget",
    # "StatefulSet has PodDisruptionBudget"
    "kube-score:deployment-has-poddisruptionbudget": ("pod-disruption-budget-missing",),
    "kube-score:statefulset-has-poddisruptionbudget": ("pod-disruption-budget-missing",),
    # score/apps/apps.go: "Deployment has host PodAntiAffinity", "StatefulSet has host PodAntiAffinity"
    "kube-score:deployment-has-host-podantiaffinity": ("topology-spread-missing",),
    "kube-score:statefulset-has-host-podantiaffinity": ("topology-spread-missing",),
    # score/podtopologyspreadconstraints/podtopologyspreadconstraints.go: "Pod Topology Spread Constraints"
    "kube-score:pod-topology-spread-constraints": ("topology-spread-missing",),
}

# kube-linter (stackrox/kube-linter): the `name:` of pkg/builtinchecks/yamls/<file>.yaml.
KUBE_LINTER: dict[str, tuple[str, ...]] = {
    "kube-linter:no-liveness-probe": ("liveness-probe-missing",),  # no-liveness-probe.yaml
    "kube-linter:no-readiness-probe": ("readiness-probe-missing",),  # no-readiness-probe.yaml
    "kube-linter:no-startup-probe": ("startup-probe-missing",),  # no-startup-probe.yaml
    # liveness-port.yaml, readiness-port.yaml, startup-port.yaml: a probe on a port the container
    # does not declare
    "kube-linter:liveness-port": ("probe-cannot-fail",),
    "kube-linter:readiness-port": ("probe-cannot-fail",),
    "kube-linter:startup-port": ("probe-cannot-fail",),
    # unset-cpu-requirements.yaml: requirementsType "request" since stackrox/kube-linter#734 (issue #694)
    "kube-linter:unset-cpu-requirements": ("cpu-request-missing",),
    # unset-memory-requirements.yaml: requirementsType "limit" since stackrox/kube-linter#734 (issue #695)
    "kube-linter:unset-memory-requirements": ("memory-limit-missing",),
    "kube-linter:drop-net-raw-capability": ("capabilities-not-dropped",),  # drop-net-raw-capability.yaml
    "kube-linter:host-network": ("host-namespaces",),  # hostnetwork.yaml
    "kube-linter:host-pid": ("host-namespaces",),  # hostpid.yaml
    "kube-linter:host-ipc": ("host-namespaces",),  # hostipc.yaml
    "kube-linter:sensitive-host-mounts": ("host-path-volume",),  # host-mounts.yaml
    "kube-linter:docker-sock": ("host-path-volume",),  # docker-sock.yaml
    # privilege-escalation.yaml
    "kube-linter:privilege-escalation-container": ("privilege-escalation-allowed",),
    "kube-linter:privileged-container": ("privileged-container",),  # privileged.yaml
    "kube-linter:unsafe-proc-mount": ("proc-mount",),  # unsafe-proc-mount.yaml
    "kube-linter:run-as-non-root": ("run-as-root",),  # run-as-non-root.yaml
    "kube-linter:no-read-only-root-fs": ("writable-root-filesystem",),  # read-only-root-fs.yaml
    "kube-linter:no-rolling-update-strategy": ("rolling-update-unsafe",),  # no-rolling-update-strategy.yaml
    # pdbs-max-unavailable.yaml, pdbs-min-available.yaml: a PDB too restrictive for the replicas
    "kube-linter:pdb-max-unavailable": ("pdb-blocks-evictions",),
    "kube-linter:pdb-min-available": ("pdb-blocks-evictions",),
    "kube-linter:minimum-three-replicas": ("replicas-too-few",),  # minimum-replicas.yaml
    "kube-linter:no-anti-affinity": ("topology-spread-missing",),  # no-anti-affinity.yaml
    "kube-linter:latest-tag": ("image-tag-mutable",),  # latest-tag.yaml
    "kube-linter:env-var-secret": ("secret-in-env",),  # env-var-secret.yaml
}

# Polaris (FairwindsOps/polaris): the check ids of pkg/config/default.yaml (checks/<id>.yaml).
POLARIS: dict[str, tuple[str, ...]] = {
    "polaris:livenessProbeMissing": ("liveness-probe-missing",),
    "polaris:readinessProbeMissing": ("readiness-probe-missing",),
    "polaris:cpuRequestsMissing": ("cpu-request-missing",),
    "polaris:cpuLimitsMissing": ("cpu-limit-missing",),
    "polaris:memoryRequestsMissing": ("memory-request-missing",),
    "polaris:memoryLimitsMissing": ("memory-limit-missing",),
    "polaris:insecureCapabilities": ("capabilities-not-dropped",),
    "polaris:dangerousCapabilities": ("dangerous-capabilities",),
    "polaris:hostNetworkSet": ("host-namespaces",),
    "polaris:hostPIDSet": ("host-namespaces",),
    "polaris:hostIPCSet": ("host-namespaces",),
    "polaris:hostPathSet": ("host-path-volume",),
    "polaris:hostPortSet": ("host-port",),
    "polaris:privilegeEscalationAllowed": ("privilege-escalation-allowed",),
    "polaris:runAsPrivileged": ("privileged-container",),
    "polaris:procMount": ("proc-mount",),
    "polaris:runAsRootAllowed": ("run-as-root",),
    "polaris:linuxHardening": ("seccomp-profile-missing",),
    "polaris:automountServiceAccountToken": ("service-account-token-automount",),
    "polaris:notReadOnlyRootFilesystem": ("writable-root-filesystem",),
    "polaris:pdbDisruptionsIsZero": ("pdb-blocks-evictions",),
    "polaris:pdbMinAvailableGreaterThanOrEqualToHPAMinReplicas": ("pdb-blocks-evictions",),
    "polaris:missingPodDisruptionBudget": ("pod-disruption-budget-missing",),
    "polaris:deploymentMissingReplicas": ("replicas-too-few",),
    "polaris:topologySpreadConstraint": ("topology-spread-missing",),
    "polaris:tagNotSpecified": ("image-tag-mutable",),
    "polaris:sensitiveContainerEnvVar": ("secret-in-env",),
}

# Checkov (bridgecrewio/checkov): `id = "CKV_K8S_n"` in checkov/kubernetes/checks/resource/k8s/<file>.py.
CHECKOV: dict[str, tuple[str, ...]] = {
    "checkov:CKV_K8S_8": ("liveness-probe-missing",),  # LivenessProbe.py
    "checkov:CKV_K8S_9": ("readiness-probe-missing",),  # ReadinessProbe.py
    "checkov:CKV_K8S_10": ("cpu-request-missing",),  # CPURequests.py
    "checkov:CKV_K8S_11": ("cpu-limit-missing",),  # CPULimits.py
    "checkov:CKV_K8S_12": ("memory-request-missing",),  # MemoryRequests.py
    "checkov:CKV_K8S_13": ("memory-limit-missing",),  # MemoryLimits.py
    "checkov:CKV_K8S_14": ("image-tag-mutable",),  # ImageTagFixed.py
    "checkov:CKV_K8S_16": ("privileged-container",),  # PrivilegedContainers.py
    "checkov:CKV_K8S_17": ("host-namespaces",),  # ShareHostPID.py
    "checkov:CKV_K8S_18": ("host-namespaces",),  # ShareHostIPC.py
    "checkov:CKV_K8S_19": ("host-namespaces",),  # SharedHostNetworkNamespace.py
    "checkov:CKV_K8S_20": ("privilege-escalation-allowed",),  # AllowPrivilegeEscalation.py
    "checkov:CKV_K8S_22": ("writable-root-filesystem",),  # ReadOnlyFilesystem.py
    "checkov:CKV_K8S_23": ("run-as-root",),  # RootContainers.py
    "checkov:CKV_K8S_26": ("host-port",),  # HostPort.py
    "checkov:CKV_K8S_27": ("host-path-volume",),  # DockerSocketVolume.py
    "checkov:CKV_K8S_28": ("capabilities-not-dropped",),  # DropCapabilities.py (NET_RAW)
    "checkov:CKV_K8S_31": ("seccomp-profile-missing",),  # Seccomp.py
    # Not CKV_K8S_35 (Secrets.py, "Prefer using secrets as files over secrets as environment variables"):
    # it flags secretKeyRef in env, never a literal value, so it means something else than secret-in-env.
    "checkov:CKV_K8S_37": ("capabilities-not-dropped",),  # MinimizeCapabilities.py (drop ALL)
    "checkov:CKV_K8S_38": ("service-account-token-automount",),  # ServiceAccountTokens.py
    "checkov:CKV_K8S_39": ("dangerous-capabilities",),  # AllowedCapabilitiesSysAdmin.py
    "checkov:CKV_K8S_40": ("run-as-root",),  # RootContainersHighUID.py
    "checkov:CKV_K8S_43": ("image-digest-missing",),  # ImageDigest.py
}

# Pod Security Standards: `psa:<level>/<check>`, the checks of kubernetes/kubernetes
# staging/src/k8s.io/pod-security-admission/policy/check_<check>[_<level>].go.
PSA: dict[str, tuple[str, ...]] = {
    "psa:baseline/privileged": ("privileged-container",),  # check_privileged.go
    "psa:baseline/hostNamespaces": ("host-namespaces",),  # check_hostNamespaces.go
    "psa:baseline/hostPathVolumes": ("host-path-volume",),  # check_hostPathVolumes.go
    "psa:baseline/hostPorts": ("host-port",),  # check_hostPorts.go
    "psa:baseline/procMount": ("proc-mount",),  # check_procMount.go
    "psa:baseline/capabilities": ("dangerous-capabilities",),  # check_capabilities_baseline.go
    "psa:restricted/capabilities": ("capabilities-not-dropped",),  # check_capabilities_restricted.go
    # check_allowPrivilegeEscalation.go
    "psa:restricted/allowPrivilegeEscalation": ("privilege-escalation-allowed",),
    "psa:restricted/runAsNonRoot": ("run-as-root",),  # check_runAsNonRoot.go
    "psa:restricted/seccompProfile": ("seccomp-profile-missing",),  # check_seccompProfile_restricted.go
}

# Kubernetes API: LimitRangeItem.maxLimitRequestRatio (k8s.io/api/core/v1 types.go).
KUBERNETES: dict[str, tuple[str, ...]] = {
    "kubernetes:LimitRange maxLimitRequestRatio": ("limit-request-ratio",),
}

VERIFIED: dict[str, tuple[str, ...]] = {
    **KUBE_SCORE, **KUBE_LINTER, **POLARIS, **CHECKOV, **PSA, **KUBERNETES,
}
"""Every verified peer reference -> the checks of ours that may cite it."""


def filed() -> dict[str, set[str]]:
    """Reference -> the checks that cite it, as the catalog declares."""
    result: dict[str, set[str]] = {}
    for check in all_checks():
        for reference in check.references:
            result.setdefault(reference, set()).add(check.id)
    return result


def test_every_reference_is_a_verified_peer_id() -> None:
    unknown = {ref: sorted(checks) for ref, checks in filed().items() if ref not in VERIFIED}
    assert unknown == {}, "not verified against the peer's source: add it to VERIFIED with its file"


def test_every_reference_is_filed_under_the_check_it_means() -> None:
    misfiled = {ref: sorted(checks - set(VERIFIED[ref]))
                for ref, checks in filed().items() if ref in VERIFIED and checks - set(VERIFIED[ref])}
    assert misfiled == {}


def test_every_verified_reference_is_cited() -> None:
    """The list is the catalog's, not a wish list: each verified id is cited where it was verified."""
    cited = filed()
    missing = {ref: sorted(set(checks) - cited.get(ref, set()))
               for ref, checks in VERIFIED.items() if set(checks) - cited.get(ref, set())}
    assert missing == {}


def test_references_have_a_tool_and_an_id() -> None:
    tools = {ref.partition(":")[0] for ref in VERIFIED}
    assert tools == {"kube-score", "kube-linter", "polaris", "checkov", "psa", "kubernetes"}
    assert all(ref.partition(":")[2] for ref in VERIFIED)
