"""cpu-limit-missing: off by default, because CPU limits throttle more than they protect."""

from __future__ import annotations

from readiness.checks._helpers import resource
from readiness.checks.base import APP_AND_SIDECARS, FAIL, Category, Fail, NoParams, Severity, container_check
from readiness.workload import Container, Workload


@container_check(
    id="cpu-limit-missing",
    category=Category.RESOURCES,
    severity=Severity.INFO,
    title="Container has no CPU limit",
    message="container {container} has no resources.limits.cpu",
    rationale="""
A CPU limit caps a container's CPU time per scheduling period (CFS quota). It makes usage predictable and
is required for the Guaranteed QoS class, which some platforms mandate for CPU pinning.

Off by default: CPU is compressible, so a container above its request only borrows idle CPU and gives it
back under contention, while a limit throttles it even on an idle node and commonly causes latency spikes.
Enable it where your platform requires limits (multi-tenant clusters, CPU manager static policy).
""",
    remediation="""
Set a CPU limit, equal to the request for Guaranteed QoS:

```yaml
resources:
  requests:
    cpu: "1"
  limits:
    cpu: "1"
```
""",
    enabled_by_default=False,
    roles=APP_AND_SIDECARS,
    references=("polaris:cpuLimitsMissing", "kube-score:container-resources", "checkov:CKV_K8S_11"),
)
def cpu_limit_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    return FAIL if resource(container, "limits", "cpu") is None else None
