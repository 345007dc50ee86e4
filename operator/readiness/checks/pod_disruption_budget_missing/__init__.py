"""pod-disruption-budget-missing: node drains must not evict every replica at once."""

from __future__ import annotations

from readiness.checks._helpers import expected_replicas
from readiness.checks.base import FAIL, Category, Fail, NoParams, Severity, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload, WorkloadClass


@workload_check(
    id="pod-disruption-budget-missing",
    category=Category.AVAILABILITY,
    severity=Severity.WARNING,
    title="No PodDisruptionBudget covers the workload",
    message="no PodDisruptionBudget selects the pods of {workload}",
    rationale="""
Node drains (upgrades, autoscaler scale-downs, maintenance) evict pods through the eviction API, which
only slows down for a PodDisruptionBudget. Without one, draining two nodes at once can evict every replica
of a workload together, however many replicas it has.

Deployments, StatefulSets, ReplicaSets and Rollouts are judged (StatefulSets too: a quorum-based
database is the workload that needs a budget most), when they run more than one replica or are
autoscaled. A single replica is left alone: a budget cannot protect it without blocking drains forever
(`replicas-too-few` reports it). DaemonSets are not judged: drains leave their pods in place. The check
stays silent when the auditor cannot see PodDisruptionBudgets, rather than guess.
""",
    remediation="""
Add a budget that selects the workload's pods and allows some disruption:

```yaml
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: web}
```
""",
    classes=frozenset({WorkloadClass.SERVICE}),
    references=("polaris:missingPodDisruptionBudget", "kube-score:deployment-has-poddisruptionbudget",
                "kube-score:statefulset-has-poddisruptionbudget"),
    depends_on=("PodDisruptionBudget", "HorizontalPodAutoscaler"),
)
def pod_disruption_budget_missing(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    if not context.pdbs_known:
        return None
    replicas, autoscaled = expected_replicas(workload, context.hpa_min_replicas)
    if replicas <= 1 and not autoscaled:
        return None
    labels = workload.pod_labels
    for budget in context.pdbs.get(workload.ref.namespace, ()):
        if budget.selects(labels):
            return None
    return FAIL
