"""host-namespaces: pods must not share the node's network, process or IPC namespaces."""

from __future__ import annotations

from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload

HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


@workload_check(
    id="host-namespaces",
    category=Category.SECURITY,
    severity=Severity.ERROR,
    title="Pod shares the node's namespaces",
    message="pod shares the node's namespaces: {namespaces}",
    rationale="""
`hostNetwork` exposes every port the pod listens on at the node's address and lets it sniff and bind the
node's interfaces, bypassing NetworkPolicies. `hostPID` lets it see and signal every process on the node
(and read their environment through /proc). `hostIPC` lets it read other processes' shared memory.
Each one breaks the isolation the other security settings rely on.
""",
    remediation="""
Remove the field (all default to false). Node agents that truly need one belong in a dedicated namespace
with an explicit, reasoned exemption:

```yaml
spec:
  hostNetwork: false
  hostPID: false
  hostIPC: false
```
""",
    references=("polaris:hostNetworkSet", "polaris:hostPIDSet", "polaris:hostIPCSet",
                "kube-linter:host-network", "kube-linter:host-pid", "kube-linter:host-ipc",
                "checkov:CKV_K8S_17", "checkov:CKV_K8S_18", "checkov:CKV_K8S_19",
                "psa:baseline/hostNamespaces"),
)
def host_namespaces(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    spec = workload.pod_spec
    if not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")):
        return None
    return fail(namespaces=", ".join(key for key in HOST_NAMESPACES if spec.get(key) is True))
