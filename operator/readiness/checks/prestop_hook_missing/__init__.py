"""prestop-hook-missing: give endpoints time to forget a pod before it stops serving."""

from __future__ import annotations

from readiness.checks._helpers import is_mapping, mapping
from readiness.checks.base import FAIL, LONG_RUNNING, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, ContainerRole, Workload

HANDLERS = ("exec", "httpGet", "sleep")


@container_check(
    id="prestop-hook-missing",
    category=Category.LIFECYCLE,
    severity=Severity.WARNING,
    title="Container has no preStop hook",
    message="container {container} has no lifecycle.preStop hook",
    rationale="""
When a pod is deleted, the kubelet sends SIGTERM at the same moment as the endpoints controller starts
removing the pod from Services, and kube-proxy, ingress controllers and service meshes take a few more
seconds to notice. An application that exits promptly on SIGTERM keeps receiving connections it no
longer accepts: every rollout produces a burst of 502s and connection resets. A short preStop hook holds
SIGTERM back until the pod has left every load balancer.

Only app containers of long-running workloads are judged. Native sidecars are stopped after the app
containers have exited, so they do not need one; Jobs and CronJobs are not load-balanced. An `exec`,
`httpGet` or native `sleep` action passes.
""",
    remediation="""
Add a preStop delay (the native `sleep` action needs no shell in the image; Kubernetes 1.30+), and keep
terminationGracePeriodSeconds longer than the delay plus the slowest request:

```yaml
lifecycle:
  preStop:
    sleep: {seconds: 10}
```
""",
    classes=LONG_RUNNING,
    roles=frozenset({ContainerRole.APP}),
    references=(),
)
def prestop_hook_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    lifecycle = container.spec.get("lifecycle")
    pre_stop = mapping(lifecycle).get("preStop") if lifecycle else None
    if pre_stop and is_mapping(pre_stop):
        for handler in HANDLERS:
            if pre_stop.get(handler):
                return None
    return FAIL
