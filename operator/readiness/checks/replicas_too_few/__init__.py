"""replicas-too-few: one replica is one node drain away from an outage."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge

from readiness.checks._helpers import expected_replicas
from readiness.checks.base import Category, CheckParams, Fail, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload, WorkloadClass


class Params(CheckParams):
    """The smallest acceptable replica count."""

    min_replicas: Annotated[int, Ge(1)] = 2
    """Fail below this many replicas (or HPA minReplicas). 2 survives one pod's loss; 3 also survives a
    rollout during a node drain."""


@workload_check(
    id="replicas-too-few",
    category=Category.AVAILABILITY,
    severity=Severity.WARNING,
    title="Too few replicas",
    message="{source} is {replicas}, below minReplicas {min_replicas}",
    rationale="""
A single replica is down whenever its pod is: during every node drain, node failure, eviction and
crash loop. Two replicas on different nodes survive any one of those.

Only replicated services (Deployments, StatefulSets, ReplicaSets, Rollouts) are judged: DaemonSets have
one pod per node, and Jobs, CronJobs and bare Pods have no replica count. When a HorizontalPodAutoscaler
targets the workload, its `minReplicas` is judged instead of the manifest's `replicas`, which the HPA
overrides. A workload scaled to zero passes: it serves nothing, on purpose.
""",
    remediation="""
```yaml
spec:
  replicas: 2
```

or, when autoscaled, raise the HorizontalPodAutoscaler's `minReplicas` to 2.
""",
    params=Params,
    classes=frozenset({WorkloadClass.SERVICE}),
    references=("polaris:deploymentMissingReplicas", "kube-score:deployment-replicas",
                "kube-linter:minimum-three-replicas"),
    depends_on=("HorizontalPodAutoscaler",),
)
def replicas_too_few(workload: Workload, params: Params, context: AuditContext) -> Fail | None:
    replicas, autoscaled = expected_replicas(workload, context.hpa_min_replicas)
    if replicas >= params.min_replicas or (replicas == 0 and not autoscaled):
        return None
    return fail(replicas=replicas, source="HPA minReplicas" if autoscaled else "replicas")
