"""topology-spread-missing: replicas on one node or zone fail together."""

from __future__ import annotations

from readiness.checks._helpers import expected_replicas, mapping
from readiness.checks.base import FAIL, Category, Fail, NoParams, Severity, workload_check
from readiness.context import AuditContext
from readiness.workload import Workload, WorkloadClass


@workload_check(
    id="topology-spread-missing",
    category=Category.AVAILABILITY,
    severity=Severity.WARNING,
    title="Replicas are not spread across nodes or zones",
    message="{workload} has no topologySpreadConstraints or podAntiAffinity",
    rationale="""
Replicas only protect against failures they do not share. Nothing stops the scheduler from packing every
replica onto the same node or zone: the cluster's default spreading is a soft preference that gives way
to bin-packing and to whatever capacity is free during a rollout. One node failure or zone outage then
takes down the whole workload.

Only replicated services running more than one replica (or autoscaled) are judged: a single replica has
nothing to spread, and DaemonSets are spread by construction (Polaris #911). Either
`topologySpreadConstraints` or a `podAntiAffinity` passes.
""",
    remediation="""
Spread replicas across zones and nodes:

```yaml
spec:
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: ScheduleAnyway
      labelSelector: {matchLabels: {app: web}}
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector: {matchLabels: {app: web}}
```
""",
    classes=frozenset({WorkloadClass.SERVICE}),
    references=("polaris:topologySpreadConstraint", "kube-score:deployment-pod-anti-affinity",
                "kube-score:deployment-topology-spread-constraints", "kube-linter:no-anti-affinity"),
)
def topology_spread_missing(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    spec = workload.pod_spec
    if spec.get("topologySpreadConstraints"):
        return None
    affinity = spec.get("affinity")
    if affinity and mapping(affinity).get("podAntiAffinity"):
        return None
    replicas, autoscaled = expected_replicas(workload, context.hpa_min_replicas)
    return FAIL if replicas > 1 or autoscaled else None
