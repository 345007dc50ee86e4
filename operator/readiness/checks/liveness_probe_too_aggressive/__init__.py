"""liveness-probe-too-aggressive: liveness must never kill what readiness merely takes out of rotation."""

from __future__ import annotations

from readiness.checks._helpers import is_mapping, liveness_at_least_as_strict, probe_field, same_handler
from readiness.checks.base import (
    APP_AND_SIDECARS,
    LONG_RUNNING,
    Category,
    Fail,
    NoParams,
    Severity,
    container_check,
    fail,
)
from readiness.workload import Container, Workload


@container_check(
    id="liveness-probe-too-aggressive",
    category=Category.PROBES,
    severity=Severity.WARNING,
    title="Liveness probe is at least as strict as the readiness probe on the same endpoint",
    message="container {container}: livenessProbe gives up after {liveness_window}s, no later than the "
            "readinessProbe ({readiness_window}s) on the same endpoint",
    rationale="""
When the liveness and readiness probes hit the same endpoint and liveness gives up no later than
readiness, a slow dependency (a database stall, a GC pause, a burst of traffic) makes the pod fail both
at once: instead of being taken out of rotation until it recovers, it is killed and restarted, usually
all replicas together, turning a slowdown into an outage and a restart storm.

The check fails when both probes use the same handler (same `httpGet` path and port, `tcpSocket` port,
`grpc` port and service, or `exec` command; named ports are resolved) and liveness is at least as strict:
its failure window `periodSeconds x failureThreshold` is no longer than readiness's **and** its
`timeoutSeconds` is no longer. Unset fields take the Kubernetes defaults (periodSeconds 10,
failureThreshold 3, timeoutSeconds 1). Identical handlers with looser liveness thresholds pass: that is a
sound pattern (kube-score #41, #285).
""",
    remediation="""
Give liveness its own cheap endpoint that only checks the process, or keep the shared endpoint and make
liveness clearly more patient than readiness:

```yaml
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
  failureThreshold: 3     # out of rotation after 15s
livenessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 10
  failureThreshold: 6     # restarted only after 60s
  timeoutSeconds: 5
```
""",
    classes=LONG_RUNNING,
    roles=APP_AND_SIDECARS,
    references=("kube-score:pod-probes-identical",),
)
def liveness_probe_too_aggressive(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    spec = container.spec
    liveness = spec.get("livenessProbe")
    readiness = spec.get("readinessProbe")
    if not liveness or not readiness or not is_mapping(liveness) or not is_mapping(readiness):
        return None
    if not same_handler(liveness, readiness, container):
        return None
    if not liveness_at_least_as_strict(liveness, readiness):
        return None
    return fail(
        liveness_window=probe_field(liveness, "periodSeconds") * probe_field(liveness, "failureThreshold"),
        readiness_window=probe_field(readiness, "periodSeconds") * probe_field(readiness, "failureThreshold"),
    )
