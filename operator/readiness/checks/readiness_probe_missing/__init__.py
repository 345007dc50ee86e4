"""readiness-probe-missing: a container that receives traffic must say when it is ready for it."""

from __future__ import annotations

from readiness.checks.base import (
    APP_AND_SIDECARS,
    FAIL,
    LONG_RUNNING,
    Category,
    Fail,
    NoParams,
    Severity,
    container_check,
)
from readiness.workload import Container, Workload


@container_check(
    id="readiness-probe-missing",
    category=Category.PROBES,
    severity=Severity.ERROR,
    title="Container has no readiness probe",
    message="container {container} has no readinessProbe",
    rationale="""
Without a readiness probe, Kubernetes sends traffic to a pod as soon as its containers start, long before
the application has loaded its configuration, warmed its caches or connected to its database. During every
rollout and every restart, users see errors. A readiness probe also takes an overloaded or disconnected
pod out of the Service's endpoints until it recovers, without killing it.

Long-running workloads are judged, ReplicationControllers included. Jobs, CronJobs and bare Pods that
run to completion (`restartPolicy: Never` or `OnFailure`) are not: they serve no traffic, and their
containers are meant to exit.
""",
    remediation="""
Add a readinessProbe that checks the application can serve, typically an HTTP endpoint that verifies its
critical dependencies:

```yaml
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
  failureThreshold: 3
```
""",
    params=NoParams,
    classes=LONG_RUNNING,
    roles=APP_AND_SIDECARS,
    references=("polaris:readinessProbeMissing", "kube-score:pod-probes", "kube-linter:no-readiness-probe",
                "checkov:CKV_K8S_9"),
)
def readiness_probe_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if not container.spec.get("readinessProbe") else None
