"""ReplicationControllers are workloads (issue 11, item 11): with its default settings the operator
watches them, judges them under a policy that leaves `match.kinds` at its default (which the CRD and
the model both make include them), writes its verdict on them, and the chart's RBAC lets it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml

from readiness.controller import output
from readiness.envtest import Kubectl

from .conftest import OperatorHandle, annotations_of, policy_yaml, wait_until
from .test_rbac import can_i, identity  # noqa: F401  (identity: the chart's rendered RBAC, a fixture)

pytestmark = pytest.mark.cluster
Start = Callable[..., AbstractContextManager[OperatorHandle]]


def replication_controller(name: str, namespace: str, probe: bool) -> str:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1.0"}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 0, "selector": {"app": name},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}})


def verdict(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    value: str | None = annotations_of(kubectl, namespace, name, "replicationcontroller").get(output.VERDICT)
    return value


def test_the_operator_judges_replication_controllers_by_default(
        kubectl: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    kubectl("apply", "-f", "-", input=policy_yaml(f"rc-{unique}", [namespace]))
    stored = kubectl("get", "readinesspolicy", f"rc-{unique}", "-o", "jsonpath={.spec.match.kinds}").stdout
    assert "ReplicationController" in stored  # the CRD's default
    kubectl("apply", "-f", "-", input=replication_controller("legacy", namespace, probe=False))
    kubectl("apply", "-f", "-", input=replication_controller("fixed", namespace, probe=True))
    with start_operator():
        wait_until(lambda: verdict(kubectl, namespace, "legacy") == "violating", 30, "the RC's verdict")
        wait_until(lambda: verdict(kubectl, namespace, "fixed") == "compliant", 30, "the compliant verdict")


@pytest.mark.parametrize("verb", ["list", "watch", "patch"])
def test_the_chart_lets_the_operator_judge_replication_controllers(
        kubectl: Kubectl, identity: dict[str, str], verb: str) -> None:  # noqa: F811
    assert can_i(kubectl, identity, verb, "replicationcontrollers", "-A")
