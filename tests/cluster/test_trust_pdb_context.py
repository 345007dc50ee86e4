"""pdb-blocks-evictions in the operator (issue 11, item 5): its context comes from the operator's
indexes, which must keep a budget's minAvailable and an HPA's maxReplicas, as the CLI's does."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
import yaml

from readiness.controller import output
from readiness.envtest import Kubectl

from .conftest import OperatorHandle, annotations_of, deployment_yaml, policy_yaml, wait_until

pytestmark = pytest.mark.cluster
Start = Callable[..., AbstractContextManager[OperatorHandle]]


def findings(kubectl: Kubectl, namespace: str, name: str) -> list[str] | None:
    annotations = annotations_of(kubectl, namespace, name)
    if output.VIOLATIONS not in annotations:
        return [] if annotations.get(output.VERDICT) == "compliant" else None
    return [v["message"] for v in json.loads(annotations[output.VIOLATIONS])]


def test_a_min_available_above_the_hpa_maximum_blocks_evictions(
        kubectl: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "web", "namespace": namespace},
              "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": namespace},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 2}}
    kubectl("apply", "-f", "-", input=policy_yaml(f"pdb-{unique}", [namespace], ("pdb-blocks-evictions",)))
    kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace, probe=True))  # 2 replicas
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([budget, hpa]))
    with start_operator():
        wait_until(lambda: findings(kubectl, namespace, "web") == [
            "PodDisruptionBudget web (minAvailable 3 with an HPA maxReplicas of 2) allows no disruption: "
            "node drains will hang"], 30, "the blocking budget")
        hpa["spec"]["maxReplicas"] = 5
        kubectl("apply", "-f", "-", input=yaml.safe_dump(hpa))
        wait_until(lambda: findings(kubectl, namespace, "web") == [], 30, "the verdict once the HPA allows 5")
