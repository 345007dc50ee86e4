"""pdb-blocks-evictions: a budget that allows no disruption makes node drains hang."""

from __future__ import annotations

from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload, WorkloadClass


@workload_check(
    id="pdb-blocks-evictions",
    category=Category.AVAILABILITY,
    severity=Severity.WARNING,
    title="A PodDisruptionBudget blocks every eviction",
    message="PodDisruptionBudget {budgets} allows no disruption: node drains will hang",
    rationale="""
A PodDisruptionBudget with `maxUnavailable: 0` (or `0%`) or `minAvailable: 100%` never allows an
eviction. Node drains, cluster upgrades and autoscaler scale-downs wait on it forever, until someone
deletes the budget or the pods by hand, which is exactly the unplanned disruption the budget was meant
to prevent. Replicated services, DaemonSets and bare Pods are judged; Jobs are not.
""",
    remediation="""
Allow at least one pod to be evicted at a time, and run enough replicas for that to be safe:

```yaml
spec:
  maxUnavailable: 1
```
""",
    classes=frozenset({WorkloadClass.SERVICE, WorkloadClass.DAEMON, WorkloadClass.POD}),
    references=("polaris:pdbDisruptionsIsZero", "kube-linter:pdb-max-unavailable"),
)
def pdb_blocks_evictions(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    budgets = context.pdbs.get(workload.ref.namespace)
    if not budgets:
        return None
    labels = workload.pod_labels
    blocking = [b.name for b in budgets if b.blocks_all_evictions and b.selects(labels)]
    return fail(budgets=", ".join(blocking)) if blocking else None
