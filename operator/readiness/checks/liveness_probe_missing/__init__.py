"""liveness-probe-missing: a container that can hang must let the kubelet restart it."""

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
    id="liveness-probe-missing",
    category=Category.PROBES,
    severity=Severity.WARNING,
    title="Container has no liveness probe",
    message="container {container} has no livenessProbe",
    rationale="""
A process that deadlocks, leaks into a stuck state or loses its event loop keeps running: without a
liveness probe the kubelet only restarts it when it exits, so the pod stays up and broken until someone
notices. A liveness probe turns "hung" into "restarted".

A liveness probe must check the process itself, never its dependencies: when a shared database is slow,
every pod would be killed at once. See `liveness-probe-too-aggressive`. Native sidecars are judged too
(they serve traffic or ship data for the pod's whole life) unless the policy sets
`includeNativeSidecars: false`. Plain init containers are never judged, nor is anything that runs to
completion: Jobs, CronJobs and bare Pods with `restartPolicy: Never` or `OnFailure`, whose containers
are meant to exit.
""",
    remediation="""
Add a cheap livenessProbe on an endpoint that only checks the process is responsive, with thresholds
looser than the readiness probe's:

```yaml
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  failureThreshold: 6
```
""",
    classes=LONG_RUNNING,
    roles=APP_AND_SIDECARS,
    references=("polaris:livenessProbeMissing", "kube-score:pod-probes", "kube-linter:no-liveness-probe",
                "checkov:CKV_K8S_8"),
)
def liveness_probe_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if not container.spec.get("livenessProbe") else None
