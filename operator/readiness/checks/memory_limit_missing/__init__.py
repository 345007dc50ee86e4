"""memory-limit-missing: one leaking container must not take the node down with it."""

from __future__ import annotations

from readiness.checks._helpers import resource
from readiness.checks.base import APP_AND_SIDECARS, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="memory-limit-missing",
    category=Category.RESOURCES,
    severity=Severity.WARNING,
    title="Container has no memory limit",
    message="container {container} has no resources.limits.memory",
    rationale="""
Memory cannot be throttled, only reclaimed by killing. A container without a memory limit that leaks
grows until the node runs out, and then the kernel's OOM killer or the kubelet's evictions hit other
pods on the node too. A limit confines the damage to the leaking container, which is restarted alone.

App containers and native sidecars are judged; plain init containers are not (they run to completion
before the app starts; set a limit on those that run heavy migrations).
""",
    remediation="""
Set a memory limit, usually equal to the request so the pod's memory is guaranteed:

```yaml
resources:
  requests:
    memory: 256Mi
  limits:
    memory: 256Mi
```
""",
    roles=APP_AND_SIDECARS,
    references=("polaris:memoryLimitsMissing", "kube-score:container-resources",
                "kube-linter:unset-memory-requirements", "checkov:CKV_K8S_13"),
)
def memory_limit_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if resource(container, "limits", "memory") is None else None
