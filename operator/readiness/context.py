"""What a check may know beyond the workload itself: the objects around it in the same namespace.

The CLI builds it from the other documents in its input, the operator from its indexes. Checks never
fetch anything: the context is handed to them, which keeps the engine pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from readiness.selectors import LabelMatcher, compile_selector


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """A PodDisruptionBudget, reduced to what the availability checks need."""

    namespace: str
    name: str
    selects: LabelMatcher
    blocks_all_evictions: bool
    """maxUnavailable: 0 or minAvailable: 100%: node drains hang forever (Polaris' pdbDisruptionsIsZero)."""


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Objects in scope, indexed for the checks that need them."""

    pdbs: Mapping[str, tuple[DisruptionBudget, ...]] = field(default_factory=dict)
    """PodDisruptionBudgets by namespace."""
    hpa_min_replicas: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """HorizontalPodAutoscaler minReplicas by (namespace, target kind, target name): an autoscaled
    workload's replica count is the HPA's business, not the manifest's."""
    pdbs_known: bool = True
    """False when the caller could not see PodDisruptionBudgets: the PDB check then stays silent rather
    than report a false positive."""

    def budgets_for(self, namespace: str, pod_labels: Mapping[str, str]) -> list[DisruptionBudget]:
        return [b for b in self.pdbs.get(namespace, ()) if b.selects(pod_labels)]

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]], pdbs_known: bool = True) -> AuditContext:
        """Index the PodDisruptionBudgets and HorizontalPodAutoscalers among `objects`; ignore the rest."""
        pdbs: dict[str, list[DisruptionBudget]] = {}
        hpas: dict[tuple[str, str, str], int] = {}
        for obj in objects:
            kind = obj.get("kind")
            if kind == "PodDisruptionBudget":
                budget = disruption_budget(obj)
                if budget is not None:
                    pdbs.setdefault(budget.namespace, []).append(budget)
            elif kind == "HorizontalPodAutoscaler":
                _add_hpa(obj, hpas)
        return cls({ns: tuple(b) for ns, b in pdbs.items()}, hpas, pdbs_known)


def disruption_budget(obj: Mapping[str, Any]) -> DisruptionBudget | None:
    """Project a PodDisruptionBudget manifest; None when it is too malformed to select anything."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        return None
    selector = spec.get("selector")
    if selector is not None and not isinstance(selector, Mapping):
        return None
    try:
        # policy/v1: a null selector selects no pods, an empty one selects every pod in the namespace.
        selects = compile_selector(selector) if selector is not None else (lambda _labels: False)
    except ValueError:
        return None
    blocks = spec.get("maxUnavailable") in (0, "0", "0%") or spec.get("minAvailable") == "100%"
    return DisruptionBudget(str(meta.get("namespace") or ""), str(meta.get("name") or ""), selects, blocks)


def _add_hpa(obj: Mapping[str, Any], hpas: dict[tuple[str, str, str], int]) -> None:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        return
    target = spec.get("scaleTargetRef") or {}
    if not isinstance(target, Mapping):
        return
    minimum = spec.get("minReplicas", 1)
    if isinstance(minimum, int) and not isinstance(minimum, bool):
        key = (str(meta.get("namespace") or ""), str(target.get("kind") or ""), str(target.get("name") or ""))
        hpas[key] = minimum
