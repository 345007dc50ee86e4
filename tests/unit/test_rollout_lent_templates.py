"""Issue 11, item 10 (operator): a Rollout whose `spec.workloadRef` names an object the operator does not
index as a workload (a PodTemplate) is judged through it once seen, and says so while it is not; a
Deployment that starts lending its template to a Rollout is audited again (its verdict is taken back).

Before: such a Rollout stayed pending without a word, and a Deployment judged before its Rollout appeared
kept its verdict (same fingerprint, so never audited again).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from readiness.controller.handlers import Runtime, lend_template, relink_templates, remember_workload
from readiness.controller.settings import OperatorSettings
from readiness.workload import KindRegistry, WorkloadRef

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "shop/web:1.4.2"}]}}


def rollout(scale_down: str = "onsuccess", kind: str = "Deployment") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "workloadRef": {"kind": kind, "name": "web", "scaleDown": scale_down}}}


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}

ROLLOUT = WorkloadRef("Rollout", "shop", "web")
POD_TEMPLATE = WorkloadRef("PodTemplate", "shop", "web")
DEPLOYMENT = WorkloadRef("Deployment", "shop", "web")


def pod_template() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "web", "namespace": "shop"},
            "template": TEMPLATE}


def test_a_pending_rollout_says_why_once_and_is_judged_when_its_pod_template_comes(
        caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    state = runtime.state
    with caplog.at_level(logging.WARNING):
        remember_workload(runtime, ROLLOUT, rollout(kind="PodTemplate"), "rollouts")
        remember_workload(runtime, ROLLOUT, rollout(kind="PodTemplate"), "rollouts")
    said = [r.getMessage() for r in caplog.records if "not judging yet" in r.getMessage()]
    assert said == ["not judging yet Rollout shop/web: spec.workloadRef: PodTemplate shop/web is not visible "
                    "to the operator (not created yet, or it could not be read): the Rollout is judged "
                    "once it is"]
    assert ROLLOUT not in state.workloads
    lent = lend_template(pod_template())
    assert lent is not None
    state.lent_templates[POD_TEMPLATE] = lent
    assert relink_templates(runtime, POD_TEMPLATE, deleted=False) == [ROLLOUT]
    assert [c.name for c in state.workloads[ROLLOUT].workload.containers] == ["app"]


def test_a_deployment_that_starts_lending_its_template_is_audited_again() -> None:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    state = runtime.state
    remember_workload(runtime, DEPLOYMENT, deployment(replicas=2), "deployments")
    state.audited[DEPLOYMENT] = state.workloads[DEPLOYMENT].fingerprint  # judged on its own, written
    remember_workload(runtime, ROLLOUT, rollout("onsuccess"), "rollouts")
    assert DEPLOYMENT in relink_templates(runtime, ROLLOUT, deleted=False)
    assert state.workloads[DEPLOYMENT].workload.controlled
    assert DEPLOYMENT not in state.audited  # so on_workload_event queues it, and its verdict goes
