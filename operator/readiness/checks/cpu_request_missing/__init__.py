"""cpu-request-missing: the scheduler places pods by their requests."""

from __future__ import annotations

from readiness.checks._helpers import resource
from readiness.checks.base import APP_AND_SIDECARS, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="cpu-request-missing",
    category=Category.RESOURCES,
    severity=Severity.WARNING,
    title="Container has no CPU request",
    message="container {container} has no resources.requests.cpu",
    rationale="""
The scheduler places pods by their requests, and the kernel shares CPU under contention in proportion to
them. A container without a CPU request is scheduled as if it needed nothing: nodes get overcommitted and
it is the first to be starved when a neighbour gets busy, so latency becomes unpredictable.

App containers and native sidecars are judged: both run for the pod's whole life and their requests add
up. Plain init containers are not: they run before the others, and the pod reserves
max(largest init request, sum of the others), so an init container without a request runs within the
reservation made for the app.

A CPU limit without a request is a request: the API server copies limits into unset requests on every
pod it stores, so the pod requests its limit (a Deployment's stored template still shows no request).
""",
    remediation="""
Request the CPU the container needs under normal load (measure it, for example with the VPA recommender):

```yaml
resources:
  requests:
    cpu: 250m
```
""",
    roles=APP_AND_SIDECARS,
    references=("polaris:cpuRequestsMissing", "kube-score:container-resources",
                "kube-linter:unset-cpu-requirements", "checkov:CKV_K8S_10"),
)
def cpu_request_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if resource(container, "requests", "cpu") is None else None
