"""pdb-blocks-evictions: a budget that allows no disruption makes node drains hang."""

from __future__ import annotations

from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext, DisruptionBudget
from readiness.workload import Workload, WorkloadClass


@workload_check(
    id="pdb-blocks-evictions",
    category=Category.AVAILABILITY,
    severity=Severity.WARNING,
    title="A PodDisruptionBudget blocks every eviction",
    message="PodDisruptionBudget {budgets} allows no disruption: node drains will hang",
    rationale="""
A PodDisruptionBudget that never allows an eviction makes node drains, cluster upgrades and autoscaler
scale-downs wait on it forever, until someone deletes the budget or the pods by hand, which is exactly
the unplanned disruption the budget was meant to prevent. An eviction is allowed only while more pods
are healthy than the budget requires, so a budget blocks every eviction when:

- `maxUnavailable` is `0` or `0%`;
- `minAvailable` is `100%`;
- `minAvailable` is at least the number of pods the workload can ever run: its `replicas` (1 for a bare
  Pod), or its HorizontalPodAutoscaler's `maxReplicas` when one scales it. `minAvailable: 1` with one
  replica, `3` with three, or `10` with an HPA that allows at most 7 can never be satisfied with a pod
  missing. A percentage is rounded up, as the disruption controller does (`90%` of 3 pods is 3).

The finding names the budget and which of these it is. Replicated services, DaemonSets and bare Pods
are judged; Jobs are not. A DaemonSet runs one pod per node, a number the manifest does not say, so
only the first two forms are judged for it. The replica count is this workload's: a budget that also
selects other workloads' pods may still leave room for an eviction.
""",
    remediation="""
Allow at least one pod to be evicted at a time, and run enough replicas for that to be safe (with
`minAvailable`, keep it below the replica count, or below the HPA's `maxReplicas`):

```yaml
spec:
  maxUnavailable: 1
```
""",
    classes=frozenset({WorkloadClass.SERVICE, WorkloadClass.DAEMON, WorkloadClass.POD}),
    references=("polaris:pdbDisruptionsIsZero", "polaris:pdbMinAvailableGreaterThanOrEqualToHPAMinReplicas",
                "kube-linter:pdb-max-unavailable", "kube-linter:pdb-min-available"),
    depends_on=("PodDisruptionBudget", "HorizontalPodAutoscaler"),
)
def pdb_blocks_evictions(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    budgets = context.budgets_for(workload.ref.namespace, workload.pod_labels)
    if not budgets:
        return None
    most_pods = _most_pods(workload, context)
    blocking = [f"{b.name} ({why})" for b in budgets if (why := _why_blocked(b, most_pods))]
    return fail(budgets=", ".join(blocking)) if blocking else None


def _most_pods(workload: Workload, context: AuditContext) -> tuple[int, str] | None:
    """(the most pods the workload can ever run, how that is known); None when the manifest cannot say
    (a DaemonSet's node count, an autoscaled workload whose HPA has no maxReplicas)."""
    if workload.workload_class is WorkloadClass.POD:
        return 1, "a bare Pod"
    ref = workload.ref
    key = (ref.namespace, ref.kind, ref.name)
    if key in context.hpa_min_replicas:
        maximum = context.hpa_max_replicas.get(key)
        return None if maximum is None else (maximum, f"an HPA maxReplicas of {maximum}")
    if workload.replicas is None:
        return None
    return workload.replicas, f"{workload.replicas} replica{'s' if workload.replicas != 1 else ''}"


def _why_blocked(budget: DisruptionBudget, most_pods: tuple[int, str] | None) -> str | None:
    if budget.blocks_all_evictions:
        return "minAvailable 100%" if budget.min_available == "100%" else "maxUnavailable 0"
    if most_pods is None or most_pods[0] < 1:
        return None  # scaled to zero: there is nothing to evict
    pods, how = most_pods
    required = budget.pods_required(pods)
    if required is None or required < pods:
        return None
    written = budget.min_available
    rounded = f" (rounds up to {required})" if isinstance(written, str) else ""
    return f"minAvailable {written}{rounded} with {how}"
