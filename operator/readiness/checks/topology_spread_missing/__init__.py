"""topology-spread-missing: replicas on one node or zone fail together."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from readiness.checks._helpers import expected_replicas, is_mapping, mapping
from readiness.checks.base import Category, Fail, NoParams, Severity, fail, workload_check
from readiness.context import AuditContext
from readiness.selectors import compile_selector
from readiness.workload import Workload, WorkloadClass

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace: the one namespace label a manifest can be judged on."""


@workload_check(
    id="topology-spread-missing",
    category=Category.AVAILABILITY,
    severity=Severity.WARNING,
    title="Replicas are not spread across nodes or zones",
    message="{workload} is not spread across nodes or zones: {why}",
    rationale="""
Replicas only protect against failures they do not share. Nothing stops the scheduler from packing every
replica onto the same node or zone: the cluster's default spreading is a soft preference that gives way
to bin-packing and to whatever capacity is free during a rollout. One node failure or zone outage then
takes down the whole workload.

Only replicated services running more than one replica (or autoscaled) are judged: a single replica has
nothing to spread, and DaemonSets are spread by construction (Polaris #911). A `topologySpreadConstraints`
entry or a `podAntiAffinity` term (required or preferred) passes only if it spreads the workload's own
pods, as the scheduler counts them:

- its `labelSelector` selects the pod template's labels. Without a `labelSelector` a spread constraint
  or an anti-affinity term matches no pods at all, and a selector for another app's labels spreads this
  one relative to that app, not relative to itself. `matchLabelKeys` takes its values from the incoming
  pod's own labels, so it never stops the own pods from matching (it narrows the count to one revision);
  an anti-affinity term's `mismatchLabelKeys` on one of the pod's own labels excludes the own pods.
- for anti-affinity, its namespaces include the workload's: no `namespaces` and no `namespaceSelector`
  means the pod's own namespace; a `namespaces` list must name it (or a `namespaceSelector` may select
  it). A `namespaceSelector` is judged on the `kubernetes.io/metadata.name` label the API server sets;
  one on other namespace labels, which the manifest cannot show, is given the benefit of the doubt.

The finding names each constraint or term that spreads nothing, and why.
""",
    remediation="""
Spread replicas across zones and nodes, selecting the pod template's own labels:

```yaml
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector: {matchLabels: {app: web}}
          matchLabelKeys: [pod-template-hash]
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector: {matchLabels: {app: web}}
          matchLabelKeys: [pod-template-hash]
```
""",
    classes=frozenset({WorkloadClass.SERVICE}),
    references=("polaris:topologySpreadConstraint", "kube-score:deployment-has-host-podantiaffinity",
                "kube-score:statefulset-has-host-podantiaffinity",
                "kube-score:pod-topology-spread-constraints", "kube-linter:no-anti-affinity"),
    depends_on=("HorizontalPodAutoscaler",),
)
def topology_spread_missing(workload: Workload, params: NoParams, context: AuditContext) -> Fail | None:
    replicas, autoscaled = expected_replicas(workload, context.hpa_min_replicas)
    if replicas <= 1 and not autoscaled:
        return None
    spreading = list(_spreading_terms(workload.pod_spec))
    if not spreading:
        return fail(why="no topologySpreadConstraints or podAntiAffinity")
    ineffective = []
    for where, term, anti_affinity in spreading:
        why = _spreads_nothing(term, workload, anti_affinity)
        if why is None:
            return None
        ineffective.append(f"{where} {why}")
    return fail(why="; ".join(ineffective))


def _spreading_terms(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(where, term, is an anti-affinity term) for every spread constraint and podAntiAffinity term."""
    constraints = spec.get("topologySpreadConstraints")
    for index, constraint in enumerate(constraints if isinstance(constraints, list) else ()):
        yield f"topologySpreadConstraints[{index}]", mapping(constraint), False
    anti = mapping(mapping(spec.get("affinity")).get("podAntiAffinity"))
    required = anti.get("requiredDuringSchedulingIgnoredDuringExecution")
    for index, term in enumerate(required if isinstance(required, list) else ()):
        yield f"podAntiAffinity.required[{index}]", mapping(term), True
    preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution")
    for index, weighted in enumerate(preferred if isinstance(preferred, list) else ()):
        yield f"podAntiAffinity.preferred[{index}]", mapping(mapping(weighted).get("podAffinityTerm")), True


def _spreads_nothing(term: Mapping[str, Any], workload: Workload, anti_affinity: bool) -> str | None:
    """Why the term counts none of the workload's own pods; None when it does count them."""
    selector = term.get("labelSelector")
    if not is_mapping(selector):
        return "has no labelSelector: it matches no pods"
    labels = workload.pod_labels
    try:
        selects_own_pods = compile_selector(selector)(labels)
    except ValueError as error:
        return f"has an invalid labelSelector ({error})"
    if not selects_own_pods:
        return f"selects none of the workload's own pods ({_shown(labels)})"
    mismatched = [k for k in _strings(term.get("mismatchLabelKeys")) if k in labels] if anti_affinity else []
    if mismatched:
        return f"excludes the workload's own pods (mismatchLabelKeys {', '.join(mismatched)})"
    if anti_affinity and not _includes_namespace(term, workload.ref.namespace):
        return f"looks in other namespaces, not {workload.ref.namespace!r}"
    return None


def _includes_namespace(term: Mapping[str, Any], namespace: str) -> bool:
    """Whether the term's namespaces contain `namespace`, as far as the manifest can tell."""
    names = _strings(term.get("namespaces"))
    selector = term.get("namespaceSelector")
    if not names and selector is None:
        return True  # the pod's own namespace
    if not namespace or namespace in names:
        return True  # an unnamed namespace (offline input) cannot be judged
    if not is_mapping(selector):
        return False
    known = {NAMESPACE_NAME_LABEL: namespace}
    try:
        if compile_selector(selector)(known):
            return True
    except ValueError:
        return False
    # False on the name label alone is a verdict; other namespace labels are unknown here.
    return not _only_name_label(selector)


def _only_name_label(selector: Mapping[str, Any]) -> bool:
    keys: set[Any] = set(mapping(selector.get("matchLabels")))
    expressions = selector.get("matchExpressions")
    keys |= {mapping(e).get("key") for e in (expressions if isinstance(expressions, list) else ())}
    return keys <= {NAMESPACE_NAME_LABEL}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _shown(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "the pod template has no labels"
