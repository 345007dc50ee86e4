"""capabilities-not-dropped: start from no capabilities and add back the few needed."""

from __future__ import annotations

from readiness.checks._helpers import mapping, security_context
from readiness.checks.base import ALL_ROLES, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="capabilities-not-dropped",
    category=Category.SECURITY,
    severity=Severity.WARNING,
    title="Container does not drop all capabilities",
    message="container {container} does not drop ALL capabilities",
    rationale="""
Container runtimes grant a default set of Linux capabilities (NET_RAW, CHOWN, SETUID, DAC_OVERRIDE...)
that almost no application needs; NET_RAW alone allows spoofing packets on the node's network. Dropping
ALL and adding back only what is needed is the least-privilege baseline and what the restricted Pod
Security Standard requires. `ALL` is matched case-insensitively. Init containers and native sidecars are
judged too.
""",
    remediation="""
```yaml
securityContext:
  capabilities:
    drop: [ALL]
    add: [NET_BIND_SERVICE]   # only if the process binds a port below 1024
```
""",
    roles=ALL_ROLES,
    references=("polaris:insecureCapabilities", "kube-linter:drop-net-raw-capability", "checkov:CKV_K8S_28",
                "checkov:CKV_K8S_37", "psa:restricted/capabilities"),
)
def capabilities_not_dropped(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    drop = mapping(security_context(container).get("capabilities")).get("drop")
    if isinstance(drop, list):
        for name in drop:
            if isinstance(name, str) and name.upper() == "ALL":
                return None
    return FAIL
