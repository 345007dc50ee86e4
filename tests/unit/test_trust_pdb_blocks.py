"""pdb-blocks-evictions means what the disruption controller means: a minAvailable that the workload's
pods can never exceed blocks every eviction, whether it says 100% or not (issue 11, item 5)."""

from __future__ import annotations

from typing import Any

import pytest

from readiness.context import AuditContext
from readiness.controller.handlers import index_hpa, index_pdb
from readiness.controller.state import State
from readiness.engine import Engine
from readiness.workload import project


def deployment(replicas: int | None = None, kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "web", "image": "web:1.0"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "namespace": "shop"},
            "spec": spec}


def budget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-pdb", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def hpa(minimum: int, maximum: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": minimum, "maxReplicas": maximum}}


def messages(workload: dict[str, Any], context: AuditContext) -> list[str]:
    evaluation = Engine.builtin().evaluate(project(workload), context)
    return [f.message for f in evaluation.findings if f.check == "pdb-blocks-evictions"]


@pytest.mark.parametrize(("workload", "objects", "why"), [
    (deployment(), [budget(minAvailable=1)], "minAvailable 1 with 1 replica"),
    (deployment(3), [budget(minAvailable=3)], "minAvailable 3 with 3 replicas"),
    (deployment(3), [budget(minAvailable=5)], "minAvailable 5 with 3 replicas"),
    (deployment(3), [budget(minAvailable="90%")], "minAvailable 90% (rounds up to 3) with 3 replicas"),
    (deployment(2), [budget(minAvailable=10), hpa(3, 7)], "minAvailable 10 with an HPA maxReplicas of 7"),
    (deployment(2), [budget(minAvailable=7), hpa(3, 7)], "minAvailable 7 with an HPA maxReplicas of 7"),
    (deployment(3, "StatefulSet"), [budget(minAvailable=3)], "minAvailable 3 with 3 replicas"),
])
def test_a_min_available_the_replicas_never_exceed_blocks_every_eviction(
        workload: dict[str, Any], objects: list[dict[str, Any]], why: str) -> None:
    found = messages(workload, AuditContext.from_objects(objects))
    assert found == [f"PodDisruptionBudget web-pdb ({why}) allows no disruption: node drains will hang"]


def test_a_bare_pod_with_min_available_one_cannot_be_evicted() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop",
                                                           "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "web:1.0"}]}}
    (message,) = messages(pod, AuditContext.from_objects([budget(minAvailable=1)]))
    assert "minAvailable 1 with a bare Pod" in message


@pytest.mark.parametrize(("workload", "objects"), [
    (deployment(3), [budget(minAvailable=2)]),
    (deployment(3), [budget(minAvailable="50%")]),  # 1.5 rounds up to 2: one pod may go
    (deployment(3), [budget(minAvailable="66%")]),  # 1.98 rounds up to 2
    (deployment(2), [budget(minAvailable=5), hpa(3, 7)]),  # blocks at 3 pods, not at 7
    (deployment(0), [budget(minAvailable=1)]),  # scaled to zero: nothing to evict
    (deployment(3), [budget(maxUnavailable=1)]),
    (deployment(3), [budget(maxUnavailable="10%")]),  # rounds up to 1
])
def test_a_budget_that_leaves_room_passes(workload: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    assert messages(workload, AuditContext.from_objects(objects)) == []


def test_daemonsets_are_judged_only_on_what_the_manifest_says() -> None:
    daemon = deployment(kind="DaemonSet")
    # deployment() without replicas: a DaemonSet has none
    assert messages(daemon, AuditContext.from_objects([budget(minAvailable=3)])) == []
    assert messages(daemon, AuditContext.from_objects([budget(maxUnavailable=0)])) == [
        "PodDisruptionBudget web-pdb (maxUnavailable 0) allows no disruption: node drains will hang"]


def test_the_operator_context_keeps_the_budget_and_the_hpa_maximum() -> None:
    """The operator builds the context from its Kopf indexes (a Store is iterable, like these lists)."""
    (namespace, entry), = index_hpa(hpa(3, 7)).items()
    (pdb_namespace, kept), = index_pdb(budget(minAvailable=10)).items()
    state = State(pdbs={pdb_namespace: [kept]}, hpas={namespace: [entry]})
    context = state.context("shop")
    assert context.hpa_min_replicas == {("shop", "Deployment", "web"): 3}
    assert context.hpa_max_replicas == {("shop", "Deployment", "web"): 7}
    assert messages(deployment(2), context) == messages(
        deployment(2), AuditContext.from_objects([hpa(3, 7), budget(minAvailable=10)]))
    assert messages(deployment(2), context)
