"""memory-request-missing: without one, the pod is the first evicted under memory pressure."""

from __future__ import annotations

from readiness.checks._helpers import resource
from readiness.checks.base import APP_AND_SIDECARS, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="memory-request-missing",
    category=Category.RESOURCES,
    severity=Severity.WARNING,
    title="Container has no memory request",
    message="container {container} has no resources.requests.memory",
    rationale="""
The scheduler places pods by their memory requests, and the kubelet evicts pods that use more than they
requested first when a node runs short. A container without a memory request lets nodes be overcommitted
and makes its pod the first victim of memory pressure (BestEffort or Burstable QoS).

App containers and native sidecars are judged; plain init containers are not, because the pod reserves
max(largest init request, sum of the others) and an init container without a request runs within the
reservation made for the app.

A memory limit without a request is a request: the API server copies limits into unset requests on every
pod it stores, so the pod requests its limit (a Deployment's stored template still shows no request).
""",
    remediation="""
Request the memory the container uses at steady state:

```yaml
resources:
  requests:
    memory: 256Mi
```
""",
    roles=APP_AND_SIDECARS,
    references=("polaris:memoryRequestsMissing", "kube-score:container-resources", "checkov:CKV_K8S_12"),
)
def memory_request_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if resource(container, "requests", "memory") is None else None
