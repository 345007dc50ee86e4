"""startup-probe-missing: slow starters need a startup probe, not a long initialDelaySeconds."""

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
    id="startup-probe-missing",
    category=Category.PROBES,
    severity=Severity.INFO,
    title="Container has no startup probe",
    message="container {container} has no startupProbe",
    rationale="""
Applications that start slowly (JVMs, large caches, migrations at boot) are often given a long
`initialDelaySeconds` on their liveness probe instead, which delays the detection of a hang for the whole
life of the pod, or a liveness probe that kills them before they ever finish starting. A startup probe
holds the other probes back until the application has started, then gets out of the way.

Off by default: fast-starting services do not need one, and a readiness probe already keeps traffic away
during startup. Jobs, CronJobs and bare Pods that run to completion (`restartPolicy: Never` or
`OnFailure`) are not judged.
""",
    remediation="""
Add a startupProbe on the liveness endpoint that allows for the slowest start
(`failureThreshold x periodSeconds`), and keep the liveness probe tight:

```yaml
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 5
  failureThreshold: 60   # up to 5 minutes to start
```
""",
    enabled_by_default=False,
    classes=LONG_RUNNING,
    roles=APP_AND_SIDECARS,
    references=("kube-linter:no-startup-probe",),
)
def startup_probe_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if not container.spec.get("startupProbe") else None
