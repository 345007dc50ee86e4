"""Issue 11, item 10 (admission): an Argo Rollout with `spec.workloadRef` is judged at admission through the
object it references when the webhook can read it; when it cannot (that object may come later in the same
apply), admission says "not yet" and never denies on it.

Before: every such Rollout got only "not judged: spec.workloadRef: the referenced pod template is not
known here", whatever the webhook could see.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf

from readiness.checks import CATALOG
from readiness.engine import Engine
from readiness.policy import ReadinessPolicy
from readiness.webhook import (
    Review,
    WebhookSettings,
    _referenced_object,
    _Runtime,
    reference_path,
    review,
)
from readiness.workload import WorkloadRef

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}


def engine(enforcement: str) -> Engine:
    checks = {cid: {"enabled": cid == "readiness-probe-missing"} for cid in CATALOG}
    return Engine(ReadinessPolicy.model_validate({"metadata": {"name": "rollouts"}, "spec": {
        "enforcement": enforcement, "match": {"kinds": ["Rollout", "Deployment"]}, "checks": checks}}))


def rollout(kind: str = "Deployment", name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "workloadRef": {"apiVersion": "apps/v1", "kind": kind, "name": name,
                                     "scaleDown": "onsuccess"}}}


def template(probe: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "shop/web:1.4.2"}
    if probe:
        container["readinessProbe"] = PROBE
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}


def deployment(probe: bool) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": template(probe)}}


def pod_template(probe: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "web", "namespace": "shop"},
            "template": template(probe)}


def test_a_rollout_is_denied_through_the_referenced_deployments_template() -> None:
    verdict = review([engine("deny")], rollout(), {}, "CREATE", NOW, referenced=deployment(probe=False))
    assert not verdict.allowed
    assert "Rollout shop/web" in verdict.message and "readiness-probe-missing" in verdict.message


def test_a_rollout_whose_referenced_template_complies_is_admitted_without_warnings() -> None:
    assert review([engine("deny")], rollout(), {}, "CREATE", NOW,
                  referenced=deployment(probe=True)) == Review(True, "", [])


def test_a_pod_template_reference_is_judged_through_its_template() -> None:
    warned = review([engine("warn")], rollout("PodTemplate"), {}, "CREATE", NOW,
                    referenced=pod_template(probe=False))
    assert warned.allowed and any("readiness-probe-missing" in w for w in warned.warnings)
    assert review([engine("deny")], rollout("PodTemplate"), {}, "CREATE", NOW,
                  referenced=pod_template(probe=True)) == Review(True, "", [])


def test_an_unseen_reference_is_not_yet_judged_and_never_denied() -> None:
    verdict = review([engine("deny")], rollout(), {}, "CREATE", NOW)
    assert verdict.allowed
    assert verdict.warnings == [
        "[readiness] Rollout/web: not yet judged: spec.workloadRef Deployment shop/web not readable yet (the "
        "audit judges it)"]


def test_an_update_is_not_denied_for_what_the_rollout_already_ran() -> None:
    old = rollout()
    new = rollout()
    new["spec"]["replicas"] = 5
    verdict = review([engine("deny")], new, {}, "UPDATE", NOW, old=old, referenced=deployment(probe=False))
    assert verdict.allowed and any("readiness-probe-missing" in w for w in verdict.warnings)


def test_a_referenced_object_without_a_pod_template_is_not_judged_but_admitted() -> None:
    empty = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}}
    verdict = review([engine("deny")], rollout(), {}, "CREATE", NOW, referenced=empty)
    assert verdict.allowed
    assert verdict.warnings == [
        "[readiness] Rollout/web: not judged: spec.workloadRef: Deployment web has no pod template"]


def test_reference_paths() -> None:
    deployments = reference_path(WorkloadRef("Deployment", "shop", "web"))
    assert deployments == "/apis/apps/v1/namespaces/shop/deployments/web"
    templates = reference_path(WorkloadRef("PodTemplate", "shop", "web"))
    assert templates == "/api/v1/namespaces/shop/podtemplates/web"


def _runtime(tmp_path: Path) -> _Runtime:
    return _Runtime(WebhookSettings(), source=None,  # type: ignore[arg-type]
                    api=None, registry=kopf.OperatorRegistry(), context=lambda _ns: None,  # type: ignore[arg-type,return-value]
                    kubeconfig=str(tmp_path / "missing-kubeconfig"))


def test_an_unreadable_reference_is_none_not_an_error(tmp_path: Path) -> None:
    found = asyncio.run(_referenced_object(_runtime(tmp_path), rollout(), [engine("deny")]))
    assert found is None


def test_no_read_when_no_policy_acts_at_admission(tmp_path: Path, monkeypatch: Any) -> None:
    async def forbidden(*_: Any) -> None:
        raise AssertionError("read although every policy is in audit mode")
    monkeypatch.setattr("readiness.webhook._read_object", forbidden)
    assert asyncio.run(_referenced_object(_runtime(tmp_path), rollout(), [engine("audit")])) is None
