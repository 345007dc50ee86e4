"""run-as-root: containers must run as a non-root user, whatever the image says."""

from __future__ import annotations

from readiness.checks._helpers import pod_security_context, security_context
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload


@container_check(
    id="run-as-root",
    category=Category.SECURITY,
    severity=Severity.ERROR,
    title="Container may run as root",
    message="container {container} {problem}",
    rationale="""
A process running as root (UID 0) inside a container is one kernel or runtime bug away from root on the
node, and can write anywhere in its image and mounted volumes. Most images default to root unless told
otherwise, so the manifest must say it.

The effective settings are judged the way the kubelet applies them: the container's `securityContext`
overrides the pod's, field by field. An explicit `runAsUser: 0` always fails (even next to
`runAsNonRoot: true`, where the kubelet would refuse to start the container). Otherwise
`runAsNonRoot: true` or a non-zero `runAsUser` passes. Init containers and native sidecars are judged like
app containers: they run on the same node with the same privileges.
""",
    remediation="""
Require a non-root user at pod level, and give one explicitly when the image does not set a numeric USER:

```yaml
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
```
""",
    roles=ALL_ROLES,
    references=("polaris:runAsRootAllowed", "kube-score:container-security-context-user-group-id",
                "kube-linter:run-as-non-root", "checkov:CKV_K8S_23", "checkov:CKV_K8S_40",
                "psa:restricted/runAsNonRoot"),
)
def run_as_root(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    sc = security_context(container)
    pod_sc = pod_security_context(workload)
    user = sc.get("runAsUser")
    if user is None:
        user = pod_sc.get("runAsUser")
    if user.__class__ is int and user == 0:
        return fail(problem="runs as root (runAsUser: 0)")
    non_root = sc.get("runAsNonRoot")
    if non_root is True or (non_root is None and pod_sc.get("runAsNonRoot") is True):
        return None
    if user.__class__ is int and user > 0:
        return None
    return fail(problem="may run as root: set runAsNonRoot: true or a non-zero runAsUser")
