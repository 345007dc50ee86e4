"""rolling-update-unsafe: an update must never take every replica down at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from readiness.checks._helpers import (
    hpa_min_replicas,
    is_mapping,
    resolve_rolling_update,
    scaled_value,
    shown,
)
from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload, WorkloadClass

ROLLING_CLASSES = frozenset({WorkloadClass.SERVICE, WorkloadClass.DAEMON})


@workload_check(
    id="rolling-update-unsafe",
    category=Category.LIFECYCLE,
    severity=Severity.WARNING,
    title="Update strategy can take every replica down at once",
    message="{problem}",
    rationale="""
A rollout is the most frequent disruption a workload goes through. With `strategy: Recreate`, every old
pod is deleted before any new one starts: each deploy is an outage, and a bad image is a long one. A
RollingUpdate whose `maxUnavailable` covers all replicas does the same in slow motion.

The check resolves `maxUnavailable` and `maxSurge` against the replica count as the controllers do
(percentages of unavailability round down, surge rounds up, and when both resolve to zero one pod may be
unavailable) and fails when every replica may be unavailable at once, or when `maxUnavailable` is 100%.
An autoscaled workload is judged against its HorizontalPodAutoscaler's minReplicas. Unset strategies
(RollingUpdate 25%/25%) pass. DaemonSets fail only on 100%, their node count being unknown.
StatefulSets pass `OnDelete` (deliberate manual updates, common for databases) and single replicas (one
pod is always unavailable while it is replaced; `replicas-too-few` reports that).
""",
    remediation="""
Use a rolling update that keeps capacity, surging new pods first:

```yaml
spec:
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
```
""",
    classes=ROLLING_CLASSES,
    references=("kube-score:deployment-strategy", "kube-linter:no-rolling-update-strategy"),
    depends_on=("HorizontalPodAutoscaler",),
)
def rolling_update_unsafe(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    strategy = workload.strategy
    if not strategy:
        return None  # unset: RollingUpdate with the controllers' safe defaults
    if strategy.get("type") == "Recreate":
        return fail(problem="strategy Recreate stops every pod before starting new ones")
    rolling = strategy.get("rollingUpdate") or strategy.get("canary")  # Argo Rollouts keep it under canary
    if not is_mapping(rolling):
        return None
    max_unavailable = rolling.get("maxUnavailable")
    if max_unavailable == "100%":
        return fail(problem="maxUnavailable 100% lets every pod go down at once")
    if workload.workload_class is WorkloadClass.DAEMON:
        return None
    replicas = hpa_min_replicas(workload, context.hpa_min_replicas) or workload.replicas
    return _all_down(workload, rolling, replicas or 0)


def _all_down(workload: Workload, rolling: Mapping[str, Any], replicas: int) -> Fail | None:
    stateful = workload.ref.kind == "StatefulSet"
    max_unavailable = rolling.get("maxUnavailable", 1 if stateful else "25%")  # the controllers' defaults
    try:
        if stateful:
            if replicas <= 1:
                return None
            unavailable = scaled_value(max_unavailable, replicas, round_up=False)
        else:
            if replicas < 1:
                return None
            surge = rolling.get("maxSurge", "25%")
            unavailable, _surge = resolve_rolling_update(max_unavailable, surge, replicas)
    except ValueError:
        return None  # the API server rejects malformed values; nothing to add here
    if unavailable < replicas:
        return None
    return fail(problem=f"maxUnavailable {shown(max_unavailable)} resolves to {shown(unavailable)} of "
                        f"{replicas} replicas: every pod may be down at once")
