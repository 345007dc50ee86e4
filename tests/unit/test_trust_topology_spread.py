"""topology-spread-missing counts only spreading that spreads the workload's own pods, as the scheduler
counts them: a selector for other labels, no selector, or another namespace spreads nothing (issue 11,
item 6)."""

from __future__ import annotations

from typing import Any

import pytest

from readiness.context import AuditContext
from readiness.engine import Engine
from readiness.workload import project

OWN = {"matchLabels": {"app": "web"}}
OTHER = {"matchLabels": {"app": "cache"}}
NAME_LABEL = "kubernetes.io/metadata.name"
NOTHING = ("Deployment shop/web is not spread across nodes or zones: "
           "no topologySpreadConstraints or podAntiAffinity")


def deployment(**pod_spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "web", "image": "web:1.0"}], **pod_spec}}}}


def spread(**constraint: Any) -> dict[str, Any]:
    return {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                           "whenUnsatisfiable": "ScheduleAnyway", **constraint}]}


def anti(term: dict[str, Any], preferred: bool = False) -> dict[str, Any]:
    term = {"topologyKey": "kubernetes.io/hostname", **term}
    if preferred:
        return {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}]}}}
    return {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}


def messages(workload: dict[str, Any]) -> list[str]:
    evaluation = Engine.builtin().evaluate(project(workload), AuditContext())
    return [f.message for f in evaluation.findings if f.check == "topology-spread-missing"]


@pytest.mark.parametrize(("pod_spec", "why"), [
    (spread(), "topologySpreadConstraints[0] has no labelSelector: it matches no pods"),
    (spread(matchLabelKeys=["pod-template-hash"]), "topologySpreadConstraints[0] has no labelSelector"),
    (spread(labelSelector=OTHER), "topologySpreadConstraints[0] selects none of the workload's own pods "
                                  "(app=web, tier=front)"),
    (spread(labelSelector={"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}),
     "topologySpreadConstraints[0] selects none"),
    (anti({}), "podAntiAffinity.required[0] has no labelSelector"),
    (anti({"labelSelector": OTHER}, preferred=True), "podAntiAffinity.preferred[0] selects none"),
    (anti({"labelSelector": OWN, "namespaces": ["other"]}),
     "podAntiAffinity.required[0] looks in other namespaces, not 'shop'"),
    (anti({"labelSelector": OWN, "namespaceSelector": {"matchLabels": {NAME_LABEL: "x"}}}),
     "looks in other namespaces"),
    (anti({"labelSelector": OWN, "mismatchLabelKeys": ["tier"]}),
     "excludes the workload's own pods (mismatchLabelKeys tier)"),
])
def test_spreading_that_spreads_nothing_is_missing_spreading(pod_spec: dict[str, Any], why: str) -> None:
    (message,) = messages(deployment(**pod_spec))
    assert message.startswith("Deployment shop/web is not spread across nodes or zones: ")
    assert why in message


def test_the_finding_names_every_constraint_that_spreads_nothing() -> None:
    pod_spec = {**spread(labelSelector=OTHER), **anti({"labelSelector": OWN, "namespaces": ["other"]})}
    (message,) = messages(deployment(**pod_spec))
    assert "topologySpreadConstraints[0] selects none" in message
    assert "podAntiAffinity.required[0] looks in other namespaces" in message


@pytest.mark.parametrize("pod_spec", [
    spread(labelSelector=OWN),
    spread(labelSelector={"matchLabels": {"tier": "front"}}),
    spread(labelSelector={}),  # an empty selector selects every pod, the own ones included
    spread(labelSelector=OWN, matchLabelKeys=["pod-template-hash"]),  # values come from the own pod
    anti({"labelSelector": OWN}),
    anti({"labelSelector": OWN}, preferred=True),
    anti({"labelSelector": OWN, "namespaces": ["shop", "other"]}),
    anti({"labelSelector": OWN, "namespaceSelector": {}}),  # every namespace
    anti({"labelSelector": OWN, "namespaceSelector": {"matchLabels": {NAME_LABEL: "shop"}}}),
    anti({"labelSelector": OWN, "namespaceSelector": {"matchLabels": {"team": "a"}}}),  # unknown: benefit
    anti({"labelSelector": OWN, "mismatchLabelKeys": ["pod-template-hash"]}),
    {**spread(labelSelector=OTHER), **anti({"labelSelector": OWN})},  # one that spreads is enough
])
def test_spreading_of_the_own_pods_passes(pod_spec: dict[str, Any]) -> None:
    assert messages(deployment(**pod_spec)) == []


def test_no_spreading_at_all_says_so() -> None:
    assert messages(deployment()) == [NOTHING]
