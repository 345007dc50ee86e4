"""ephemeral-storage-request-missing: off by default; for clusters where node disks fill up."""

from __future__ import annotations

from readiness.checks._helpers import resource
from readiness.checks.base import APP_AND_SIDECARS, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="ephemeral-storage-request-missing",
    category=Category.RESOURCES,
    severity=Severity.INFO,
    title="Container has no ephemeral-storage request",
    message="container {container} has no resources.requests.ephemeral-storage",
    rationale="""
Logs, emptyDir volumes and the writable layer live on the node's disk. When it fills, the kubelet evicts
pods, starting with those using more ephemeral storage than they requested: a pod without a request is
evicted first, and the scheduler cannot avoid placing it on an almost-full node.

An ephemeral-storage limit without a request is a request: the API server copies limits into unset
requests on every pod it stores.

Off by default: most workloads write little to local disk. Enable it where disk-pressure evictions happen.
""",
    remediation="""
Request (and limit) the local disk the container writes to:

```yaml
resources:
  requests:
    ephemeral-storage: 1Gi
  limits:
    ephemeral-storage: 2Gi
```
""",
    enabled_by_default=False,
    roles=APP_AND_SIDECARS,
    references=("kube-score:container-ephemeral-storage-request-and-limit",),
)
def ephemeral_storage_request_missing(container: Container, workload: Workload, params: NoParams,
                                      ) -> Fail | None:
    return FAIL if resource(container, "requests", "ephemeral-storage") is None else None
