"""privileged-container: a privileged container is root on the node."""

from __future__ import annotations

from readiness.checks._helpers import security_context
from readiness.checks.base import ALL_ROLES, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="privileged-container",
    category=Category.SECURITY,
    severity=Severity.ERROR,
    title="Container is privileged",
    message="container {container} runs privileged",
    rationale="""
A privileged container gets every capability, all host devices and no seccomp or AppArmor confinement:
anyone who controls it controls the node and every pod on it. Init containers and native sidecars are
judged too (a privileged init container is a favourite of charts that "just tune a sysctl").
""",
    remediation="""
Remove `privileged: true`. Grant the one capability really needed instead, or move node tuning to a
node-level tool (a tuned DaemonSet owned by the platform team, the node image):

```yaml
securityContext:
  privileged: false
  capabilities:
    drop: [ALL]
    add: [NET_BIND_SERVICE]
```
""",
    roles=ALL_ROLES,
    references=("polaris:runAsPrivileged", "kube-score:container-security-context-privileged",
                "kube-linter:privileged-container", "checkov:CKV_K8S_16", "psa:baseline/privileged"),
)
def privileged_container(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if security_context(container).get("privileged") is True else None
