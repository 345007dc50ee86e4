"""What a check may know beyond the workload itself: the objects around it in the same namespace.

The CLI builds it from the other documents in its input, the operator from its indexes. Checks never
fetch anything: the context is handed to them, which keeps the engine pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from readiness.selectors import LabelMatcher, compile_selector, type_phrase


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """A PodDisruptionBudget, reduced to what the availability checks need."""

    namespace: str
    name: str
    selects: LabelMatcher
    blocks_all_evictions: bool
    """maxUnavailable: 0 or minAvailable: 100%: node drains hang forever (Polaris' pdbDisruptionsIsZero)."""
    min_available: int | str | None = None
    """spec.minAvailable as written (an integer or "N%"); None when unset or when maxUnavailable is set,
    which the disruption controller reads first."""

    def pods_required(self, pods: int) -> int | None:
        """How many of `pods` pods minAvailable keeps up (the disruption controller's desiredHealthy): an
        integer as written, a percentage of the pods rounded up; None without a usable minAvailable."""
        value = self.min_available
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
            return -(-int(value[:-1]) * pods // 100)
        return None


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
    token_automount: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    """ServiceAccounts' automountServiceAccountToken by (namespace, name), for those that set it: a pod
    that leaves the field unset inherits it (the pod's own value wins)."""
    hpa_max_replicas: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    """HorizontalPodAutoscaler maxReplicas, keyed as hpa_min_replicas: the most pods an autoscaled
    workload can ever run (what a PodDisruptionBudget's minAvailable must stay below)."""

    def account_automounts(self, namespace: str, account: str) -> bool | None:
        """The ServiceAccount's automountServiceAccountToken; None when unset or the account is unknown."""
        return self.token_automount.get((namespace, account)) if self.token_automount else None

    def budgets_for(self, namespace: str, pod_labels: Mapping[str, str]) -> list[DisruptionBudget]:
        return [b for b in self.pdbs.get(namespace, ()) if b.selects(pod_labels)]

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]], pdbs_known: bool = True) -> AuditContext:
        """Index the PodDisruptionBudgets, HorizontalPodAutoscalers and ServiceAccounts among `objects`;
        ignore the rest."""
        pdbs: dict[str, list[DisruptionBudget]] = {}
        hpas: dict[tuple[str, str, str], int] = {}
        hpa_maxes: dict[tuple[str, str, str], int] = {}
        automount: dict[tuple[str, str], bool] = {}
        for obj in objects:
            kind = obj.get("kind")
            if kind == "PodDisruptionBudget":
                budget = disruption_budget(obj)
                if budget is not None:
                    pdbs.setdefault(budget.namespace, []).append(budget)
            elif kind == "HorizontalPodAutoscaler":
                found = autoscaler(obj)
                if found is not None:
                    key, minimum, maximum = found
                    hpas[key] = minimum
                    if maximum is not None:
                        hpa_maxes[key] = maximum
            elif kind == "ServiceAccount":
                account = service_account_automount(obj)
                if account is not None:
                    automount[account[0]] = account[1]
        return cls({ns: tuple(b) for ns, b in pdbs.items()}, hpas, pdbs_known, token_automount=automount,
                   hpa_max_replicas=hpa_maxes)


def disruption_budget(obj: Mapping[str, Any]) -> DisruptionBudget | None:
    """Project a PodDisruptionBudget manifest; None when it is too malformed to select anything."""
    read = _read_budget(obj)
    return read if isinstance(read, DisruptionBudget) else None


def disruption_budget_problem(obj: Mapping[str, Any]) -> str | None:
    """Why a PodDisruptionBudget manifest cannot be read (the API server would reject it), in one line
    naming the field; None when `disruption_budget` can read it. The audit reports it as an input error:
    such a budget protects no pods, and the checks then judge the workloads without it."""
    read = _read_budget(obj)
    return read if isinstance(read, str) else None


def _read_budget(obj: Mapping[str, Any]) -> DisruptionBudget | str | None:
    """The budget; or why its metadata, spec or selector cannot be read (a line naming the field); or None
    when it is malformed elsewhere (names, counts), which `_budget` ignores quietly."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if not isinstance(meta, Mapping):
        return f"metadata: expected a mapping, got {type_phrase(meta)}"
    if not isinstance(spec, Mapping):
        return f"spec: expected a mapping, got {type_phrase(spec)}"
    selector = spec.get("selector")
    if selector is not None and not isinstance(selector, Mapping):
        return f"spec.selector: expected a mapping, got {type_phrase(selector)}"
    try:
        # policy/v1: a null selector selects no pods, an empty one selects every pod in the namespace.
        selects = compile_selector(selector) if selector is not None else (lambda _labels: False)
    except ValueError as error:
        return f"spec.selector.{error}"
    return _budget(meta, spec, selects)


def _budget(meta: Mapping[str, Any], spec: Mapping[str, Any], selects: LabelMatcher,
            ) -> DisruptionBudget | None:
    blocks = spec.get("maxUnavailable") in (0, "0", "0%") or spec.get("minAvailable") == "100%"
    minimum = spec.get("minAvailable") if spec.get("maxUnavailable") is None else None
    if isinstance(minimum, bool) or not isinstance(minimum, int | str) or (
            isinstance(minimum, int) and not _is_int(minimum)):
        minimum = None
    names = _names(meta.get("namespace"), meta.get("name"))
    return DisruptionBudget(names[0], names[1], selects, blocks, minimum) if names else None


def service_account_automount(obj: Mapping[str, Any]) -> tuple[tuple[str, str], bool] | None:
    """((namespace, name), automountServiceAccountToken) of a ServiceAccount that sets the field; None
    for one that leaves it unset (pods then mount the token) or is malformed."""
    meta = obj.get("metadata")
    flag = obj.get("automountServiceAccountToken")
    if not isinstance(meta, Mapping) or not isinstance(flag, bool):
        return None
    names = _names(meta.get("namespace"), meta.get("name"))
    return ((names[0], names[1]), flag) if names else None


def autoscaler(obj: Mapping[str, Any]) -> tuple[tuple[str, str, str], int, int | None] | None:
    """((namespace, target kind, target name), minReplicas, maxReplicas) of a HorizontalPodAutoscaler
    (minReplicas defaults to 1; maxReplicas None when not an integer); None when malformed. The CLI and
    the operator's index both read HPAs through this."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        return None
    target = spec.get("scaleTargetRef") or {}
    if not isinstance(target, Mapping):
        return None
    minimum = spec.get("minReplicas", 1)
    if not _is_int(minimum):
        return None
    maximum = spec.get("maxReplicas")
    key = _names(meta.get("namespace"), target.get("kind"), target.get("name"))
    if key is None:
        return None
    return (key[0], key[1], key[2]), minimum, maximum if _is_int(maximum) else None


def _is_int(value: Any) -> TypeGuard[int]:
    """An int32, as replica counts and minAvailable are: larger ones the API server rejects."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


def _names(*values: Any) -> tuple[str, ...] | None:
    """Names read as strings (unset: ""); None when one cannot be printed (an integer of over 4,300
    digits): the object is malformed, and ignored like the others."""
    try:
        return tuple("" if not value else value if isinstance(value, str) else str(value) for value in values)
    except ValueError:
        return None
