"""The operator's memory: Kopf's indexes (filled from watches) plus what we last audited and wrote.

Nothing here calls the API. The admission webhook reads `engines()` and `namespace_labels()`: keep
those two stable.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from readiness.context import AuditContext, DisruptionBudget
from readiness.controller.output import OUR_ANNOTATIONS, OUR_LABELS, FindingKey, Outputs
from readiness.engine import Engine, Evaluation
from readiness.workload import TemplateRef, Workload, WorkloadRef

log = logging.getLogger(__name__)

IGNORED_ANNOTATION_PREFIXES = ("kopf.zalando.org/",)
"""Besides our own output keys: annotations that say nothing about the workload's design."""


@dataclass(frozen=True, slots=True)
class IndexedWorkload:
    """One workload in the index: the projection, its fingerprint and our keys as last seen on it."""

    workload: Workload
    fingerprint: str
    outputs: Outputs
    plural: str

    @property
    def ref(self) -> WorkloadRef:
        return self.workload.ref


@dataclass(frozen=True, slots=True)
class LentTemplate:
    """The pod template of an object a Rollout's `spec.workloadRef` names that is not a watched workload
    (a PodTemplate; a Deployment or ReplicaSet whose kind the operator does not watch)."""

    template: Mapping[str, Any]
    fingerprint: str


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One ReadinessPolicy in the index: compiled when valid, with the one-line error when not."""

    name: str
    uid: str
    generation: int
    engine: Engine | None
    error: str | None
    interval: float

    @property
    def owner(self) -> dict[str, str]:
        return {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "name": self.name,
                "uid": self.uid}


def fingerprint(body: Mapping[str, Any]) -> str:
    """A hash of what the verdict depends on: spec, labels and annotations minus our own output keys
    (so our patches never look like a change) and minus Kopf's bookkeeping."""
    meta = body.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in OUR_LABELS}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in OUR_ANNOTATIONS and not k.startswith(IGNORED_ANNOTATION_PREFIXES)}
    data = orjson.dumps({"s": body.get("spec"), "l": labels, "a": annotations}, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def first(store: Any) -> Any:
    """The single value of a Kopf index Store (our keys are unique), or None."""
    return next(iter(store), None) if store is not None else None


@dataclass
class State:
    """Shared by handlers; all mutation happens on the operator's event loop (no locks needed)."""

    workloads: dict[WorkloadRef, IndexedWorkload] = field(default_factory=dict)
    """Every watched workload's projection, filled by the workloads' `on.event` handlers (not a Kopf
    index: see handlers.py for why)."""
    policies: Mapping[str, Any] = field(default_factory=dict)
    """Kopf index: policy name -> Store[PolicyEntry]."""
    namespaces: Mapping[str, Any] = field(default_factory=dict)
    """Kopf index: namespace -> Store[labels]."""
    pdbs: Mapping[str, Any] = field(default_factory=dict)
    """Kopf index: namespace -> Store[DisruptionBudget]."""
    hpas: Mapping[str, Any] = field(default_factory=dict)
    """Kopf index: namespace -> Store[((namespace, kind, name), minReplicas, maxReplicas or None)]."""
    service_accounts: Mapping[str, Any] = field(default_factory=dict)
    """Kopf index: namespace -> Store[(name, automountServiceAccountToken)], for accounts that set it."""

    audited: dict[WorkloadRef, str] = field(default_factory=dict)
    """Fingerprint each workload had when last audited: an event with the same one is not a change."""
    known: dict[WorkloadRef, Outputs] = field(default_factory=dict)
    """Our keys on each workload as last seen in a watch event or last written by us."""
    reported: dict[WorkloadRef, tuple[frozenset[FindingKey], int]] = field(default_factory=dict)
    """Findings last announced (for Events), and how many a truncated annotation hid."""
    results: dict[str, dict[WorkloadRef, Evaluation]] = field(default_factory=dict)
    """policy -> workload -> latest evaluation: status, PolicyReports and metrics come from here."""
    by_namespace: dict[str, set[WorkloadRef]] = field(default_factory=dict)
    seen_namespace_labels: dict[str, Mapping[str, str]] = field(default_factory=dict)
    seen_context: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, AuditContext] = field(default_factory=dict)
    malformed: dict[WorkloadRef, str] = field(default_factory=dict)
    """Workloads that could not be projected, with the message logged once."""
    template_refs: dict[WorkloadRef, TemplateRef] = field(default_factory=dict)
    """Argo Rollouts that run another workload's pod template (`spec.workloadRef`), by the Rollout."""
    rollout_bodies: dict[WorkloadRef, Mapping[str, Any]] = field(default_factory=dict)
    """Their compact bodies, re-projected when the referenced workload changes."""
    unlinked: set[WorkloadRef] = field(default_factory=set)
    """Workloads a Rollout stopped referencing since the last event: judged on their own again."""
    lent_templates: dict[WorkloadRef, LentTemplate] = field(default_factory=dict)
    """Pod templates Rollouts may reference that are not in `workloads`: every PodTemplate (watched when
    Rollouts are), and unwatched Deployments and ReplicaSets a Rollout names (read once per Rollout
    change)."""
    fetched_for: dict[WorkloadRef, str] = field(default_factory=dict)
    """Rollout -> its fingerprint when its unwatched target was last read: one GET per Rollout change."""

    # -- the webhook's interface (stable) --------------------------------------------------------------

    def engines(self) -> list[Engine]:
        """Current engines of the valid policies, by name."""
        entries = (first(store) for store in self.policies.values())
        return sorted((e.engine for e in entries if e is not None and e.engine is not None),
                      key=lambda engine: engine.name)

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """A namespace's labels; None when it is unknown (namespaceSelectors then do not match)."""
        labels: Mapping[str, str] | None = first(self.namespaces.get(name))
        return labels

    # -- lookups ---------------------------------------------------------------------------------------

    def policy(self, name: str) -> PolicyEntry | None:
        entry: PolicyEntry | None = first(self.policies.get(name))
        return entry

    def workload(self, ref: WorkloadRef) -> IndexedWorkload | None:
        return self.workloads.get(ref)

    def all_workloads(self) -> Iterator[IndexedWorkload]:
        yield from list(self.workloads.values())

    def workload_count(self) -> int:
        return len(self.workloads)

    def context(self, namespace: str) -> AuditContext:
        """PDBs, HPAs and ServiceAccounts' token flags of one namespace, rebuilt only after one changed."""
        cached = self.contexts.get(namespace)
        if cached is None:
            budgets: tuple[DisruptionBudget, ...] = tuple(self.pdbs.get(namespace) or ())
            autoscalers = tuple(self.hpas.get(namespace) or ())
            hpas = {target: low for target, low, _high in autoscalers}
            hpa_maxes = {target: high for target, _low, high in autoscalers if high is not None}
            automount = {(namespace, name): flag for name, flag in self.service_accounts.get(namespace) or ()}
            cached = AuditContext({namespace: budgets} if budgets else {}, hpas, token_automount=automount,
                                  hpa_max_replicas=hpa_maxes)
            self.contexts[namespace] = cached
        return cached

    def refs_in(self, namespace: str) -> list[WorkloadRef]:
        return list(self.by_namespace.get(namespace, ()))

    def matched_by(self, policy: str) -> set[WorkloadRef]:
        return set(self.results.get(policy, {}))

    def remember(self, ref: WorkloadRef) -> None:
        self.by_namespace.setdefault(ref.namespace, set()).add(ref)

    def forget(self, ref: WorkloadRef) -> None:
        refs = self.by_namespace.get(ref.namespace)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del self.by_namespace[ref.namespace]
        self.workloads.pop(ref, None)
        for mapping in (self.audited, self.known, self.reported):
            mapping.pop(ref, None)
