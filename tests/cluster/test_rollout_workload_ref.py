"""Issue 11, item 10 in the real cluster: an Argo Rollout with `spec.workloadRef` gets the verdict of the
referenced object's pod template, whatever that object is: a watched Deployment (which, scaled down by
Argo, gets no verdict of its own), a PodTemplate (watched when Rollouts are), or a ReplicaSet the operator
does not watch (read once per change of the Rollout). Uses Argo Rollouts' own Rollout CRD (pinned).

Before: a Rollout naming a PodTemplate, or a ReplicaSet with ReplicaSets not watched, stayed pending
forever, without a verdict or a word.
"""

from __future__ import annotations

import json
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml

from readiness.controller import output
from readiness.envtest import ControlPlane, Kubectl, upstream_crds
from readiness.envtest.controlplane import free_port
from readiness.tls import Authority, write_serving_certificate
from readiness.webhook import WebhookSettings
from support.cluster import wait_until

from .conftest import OperatorHandle, annotations_of, only_checks, policy_yaml
from .test_rbac import can_i, identity  # noqa: F401  (identity: the chart's rendered RBAC, a fixture)
from .test_webhook import LOCAL_ONLY, crd, webhook_operator  # noqa: F401  (crd: a fixture)

pytestmark = pytest.mark.cluster
Start = Callable[..., AbstractContextManager[OperatorHandle]]
KINDS = ("Deployment", "Rollout")
"""What the operator watches here: not ReplicaSets (nor, as a workload, PodTemplates)."""


@pytest.fixture
def rollouts(kubectl: Kubectl) -> Kubectl:
    upstream_crds.install(kubectl, upstream_crds.ROLLOUT)
    return kubectl


def template(name: str, probe: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1.0"}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}


def rollout(name: str, namespace: str, kind: str, target: str, scale_down: str = "onsuccess") -> str:
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": target}},
                 "workloadRef": {"apiVersion": "v1" if kind == "PodTemplate" else "apps/v1", "kind": kind,
                                 "name": target, "scaleDown": scale_down}}})


def deployment(name: str, namespace: str, probe: bool) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": template(name, probe)}})


def replica_set(name: str, namespace: str, probe: bool) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": template(name, probe)}})


def pod_template(name: str, namespace: str, probe: bool) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "PodTemplate",
                           "metadata": {"name": name, "namespace": namespace},
                           "template": template(name, probe)})


def verdict(kubectl: Kubectl, namespace: str, name: str, kind: str = "rollout") -> str | None:
    value: str | None = annotations_of(kubectl, namespace, name, kind).get(output.VERDICT)
    return value


def policy(unique: str, namespace: str) -> str:
    return policy_yaml(f"ref-{unique}", [namespace], match={"namespaces": [namespace], "kinds": list(KINDS)})


def test_a_rollout_gets_the_verdict_of_the_referenced_deployment_which_gets_none(
        rollouts: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    kubectl = rollouts
    kubectl("apply", "-f", "-", input=policy(unique, namespace))
    with start_operator(kinds=KINDS):
        kubectl("apply", "-f", "-", input=deployment("web", namespace, probe=False))
        kubectl("apply", "-f", "-", input=rollout("web", namespace, "Deployment", "web"))
        kubectl("apply", "-f", "-", input=deployment("lone", namespace, probe=False))  # judged by itself
        wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 30, "the Rollout's verdict")
        wait_until(lambda: verdict(kubectl, namespace, "lone", "deployment") == "violating", 30, "a control")
        # Scaled down by Argo: judged through the Rollout, not alerted on (a verdict written before the
        # Rollout appeared is taken back).
        wait_until(lambda: verdict(kubectl, namespace, "web", "deployment") is None, 30, "no own verdict")
        kubectl("apply", "-f", "-", input=deployment("web", namespace, probe=True))
        wait_until(lambda: verdict(kubectl, namespace, "web") == "compliant", 30, "the template's fix")
        assert verdict(kubectl, namespace, "web", "deployment") is None


def test_a_rollout_referencing_a_pod_template_is_judged_through_it(
        rollouts: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    kubectl = rollouts
    kubectl("apply", "-f", "-", input=policy(unique, namespace))
    kubectl("apply", "-f", "-", input=pod_template("early", namespace, probe=False))
    kubectl("apply", "-f", "-", input=rollout("early", namespace, "PodTemplate", "early"))
    with start_operator(kinds=KINDS):
        wait_until(lambda: verdict(kubectl, namespace, "early") == "violating", 30, "the Rollout's verdict")
        # The Rollout first, its PodTemplate later (as in one apply): judged once the template exists.
        kubectl("apply", "-f", "-", input=rollout("late", namespace, "PodTemplate", "late"))
        kubectl("apply", "-f", "-", input=pod_template("late", namespace, probe=True))
        wait_until(lambda: verdict(kubectl, namespace, "late") == "compliant", 30, "the late template")
        kubectl("apply", "-f", "-", input=pod_template("early", namespace, probe=True))
        wait_until(lambda: verdict(kubectl, namespace, "early") == "compliant", 30, "the template change")


def test_a_rollout_referencing_an_unwatched_replica_set_is_judged_through_it(
        rollouts: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    kubectl = rollouts
    kubectl("apply", "-f", "-", input=policy(unique, namespace))
    kubectl("apply", "-f", "-", input=replica_set("rs", namespace, probe=False))
    with start_operator(kinds=KINDS):
        kubectl("apply", "-f", "-", input=rollout("rs", namespace, "ReplicaSet", "rs"))
        wait_until(lambda: verdict(kubectl, namespace, "rs") == "violating", 30, "the Rollout's verdict")


@pytest.mark.parametrize(("verb", "resource"), [
    ("list", "podtemplates"), ("watch", "podtemplates"), ("get", "podtemplates"),
    ("get", "replicasets.apps"), ("get", "deployments.apps")])
def test_the_chart_lets_the_operator_read_what_rollouts_reference(
        kubectl: Kubectl, identity: dict[str, str], verb: str, resource: str) -> None:  # noqa: F811
    assert can_i(kubectl, identity, verb, resource, "-A")


# -- admission: the webhook reads the referenced object (one GET) ------------------------------------------


@pytest.fixture(scope="module")
def rollout_webhook(control_plane: ControlPlane, crd: None,  # noqa: F811
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.SimpleNamespace]:
    """A webhook (policy_source=api, as in test_webhook) that also judges Rollouts."""
    if control_plane.settings.use_existing_cluster:
        pytest.skip(LOCAL_ONLY)
    upstream_crds.install(control_plane.kubectl, upstream_crds.ROLLOUT)
    name = f"ro-{uuid.uuid4().hex[:8]}.readiness.dev"
    cert_dir = tmp_path_factory.mktemp("rollout-webhook-tls")
    write_serving_certificate(cert_dir, ["127.0.0.1"], Authority.create())
    settings = WebhookSettings(
        addr="127.0.0.1", host="127.0.0.1", port=free_port(), managed_config=name, kinds=KINDS,
        certfile=cert_dir / "tls.crt", pkeyfile=cert_dir / "tls.key", cafile=cert_dir / "ca.crt",
        policy_source="api", policy_refresh_seconds=0.0, excluded_namespaces=("kube-system",))
    with webhook_operator(control_plane, settings):
        wait_until(lambda: control_plane.kubectl("get", "validatingwebhookconfiguration", name,
                                                 check=False).returncode == 0, 60, "webhook configuration")
        yield types.SimpleNamespace(name=name)
    control_plane.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)


@pytest.fixture
def deny_rollouts(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A deny-mode policy on Rollouts only: their Deployments are admitted, whatever their template."""
    name = f"deny-{uuid.uuid4().hex[:8]}"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "metadata": {"name": name},
        "spec": {"enforcement": "deny", "match": {"namespaces": [namespace], "kinds": ["Rollout"]},
                 "checks": only_checks("readiness-probe-missing")}}))
    yield name
    kubectl("delete", "readinesspolicy", name, "--ignore-not-found", "--wait=false", check=False)


def apply_all(kubectl: Kubectl, *documents: str) -> Any:
    return kubectl("apply", "-f", "-", input="---\n".join(documents), check=False)


def test_admission_judges_a_rollout_through_the_deployment_applied_with_it(
        rollout_webhook: Any, kubectl: Kubectl, namespace: str, deny_rollouts: str) -> None:
    admitted = apply_all(kubectl, deployment("good", namespace, probe=True),
                         rollout("good", namespace, "Deployment", "good"))
    assert admitted.returncode == 0, admitted.stderr
    assert "not yet judged" not in admitted.stderr and "not judged" not in admitted.stderr
    denied = apply_all(kubectl, deployment("bad", namespace, probe=False),
                       rollout("bad", namespace, "Deployment", "bad"))
    assert denied.returncode != 0
    assert f"[{deny_rollouts}] readiness-probe-missing (app)" in denied.stderr
    assert kubectl("get", "rollout", "bad", "-n", namespace, check=False).returncode != 0


def test_admission_says_not_yet_and_admits_a_rollout_whose_reference_comes_later(
        rollout_webhook: Any, kubectl: Kubectl, namespace: str, deny_rollouts: str) -> None:
    result = apply_all(kubectl, rollout("later", namespace, "PodTemplate", "later"),
                       pod_template("later", namespace, probe=False))
    assert result.returncode == 0, result.stderr
    assert ("Warning: [readiness] Rollout/later: not yet judged: spec.workloadRef PodTemplate "
            f"{namespace}/later not readable yet") in result.stderr
