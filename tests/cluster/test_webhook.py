"""The admission webhook, end to end: the real kube-apiserver calls it on 127.0.0.1 and real kubectl prints
its warnings and rejections.

The webhook runs in a real Kopf operator (KopfRunner) whose only startup step is
`readiness.webhook.configure`, with `policy_source=api`: it reads the policies from the API server, as the
chart's standby replicas do. It manages its own ValidatingWebhookConfiguration (url https://127.0.0.1:PORT).

So the API server must reach this machine's 127.0.0.1: true of the local control plane, not of kind (its
API server runs inside a node container). With `--use-existing-cluster` these tests skip, saying so; on
kind, the chart's in-cluster release (`make kind-deploy`) is what serves admission.
"""

from __future__ import annotations

import json
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from readiness.envtest import ControlPlane, Kubectl, wait_established
from readiness.envtest.controlplane import free_port
from readiness.tls import Authority, write_serving_certificate
from readiness.webhook import WebhookSettings, configure

pytestmark = pytest.mark.cluster

LOCAL_ONLY = ("the API server of an existing cluster (--use-existing-cluster, e.g. kind) cannot call a "
              "webhook on this machine's 127.0.0.1; on kind the in-cluster release serves admission")


@pytest.fixture(autouse=True)
def _api_server_reaches_localhost(control_plane: ControlPlane) -> None:
    if control_plane.settings.use_existing_cluster:
        pytest.skip(LOCAL_ONLY)

REPO = Path(__file__).resolve().parents[2]
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}


class _NoState:
    """The webhook-only operator has no audit state: with policy_source=api it is never consulted."""

    def engines(self) -> list[Any]:
        return []

    def namespace_labels(self, name: str) -> None:
        return None


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)


def webhook_operator(control_plane: ControlPlane, settings: WebhookSettings) -> KopfRunner:
    from readiness.controller import client
    from readiness.controller.settings import OperatorSettings

    ours = OperatorSettings(kubeconfig=str(control_plane.kubeconfig), metrics_port=0)
    ours.extra["webhook"] = settings
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return client.connection_info(await client.load_configuration(ours))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, ours, _NoState(), registry=registry)

    kopf_settings = kopf.OperatorSettings()
    kopf_settings.posting.enabled = False
    return KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, settings=kopf_settings,
                      timeout=60)


@pytest.fixture(scope="module")
def crd(control_plane: ControlPlane) -> None:
    kubectl = control_plane.kubectl
    crd_file = str(REPO / "crds" / "readinesspolicies.yaml")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", crd_file)
    wait_established(kubectl, "readinesspolicies.readiness.dev")


@pytest.fixture(scope="module")
def own_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """Plays the operator's namespace: always excluded from the webhook."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def outage_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """The outage test's namespace: the shared webhook below (still running) excludes it, so that only
    the outage test's own, stopped operator could judge it."""
    name = f"outage-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def webhook(control_plane: ControlPlane, crd: None, own_namespace: str, outage_namespace: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.SimpleNamespace]:
    name = f"wh-{uuid.uuid4().hex[:8]}.readiness.dev"
    cert_dir = tmp_path_factory.mktemp("webhook-tls")
    authority = Authority.create()
    write_serving_certificate(cert_dir, ["127.0.0.1"], authority)
    settings = WebhookSettings(
        addr="127.0.0.1", host="127.0.0.1", port=free_port(), managed_config=name,
        certfile=cert_dir / "tls.crt", pkeyfile=cert_dir / "tls.key", cafile=cert_dir / "ca.crt",
        cert_check_interval=1.0, operator_namespace=own_namespace, policy_source="api",
        policy_refresh_seconds=0.0, excluded_namespaces=("kube-system", outage_namespace),
    )
    runner = webhook_operator(control_plane, settings)
    with runner:
        wait_for(lambda: control_plane.kubectl("get", "validatingwebhookconfiguration", name,
                                               check=False).returncode == 0, what="webhook configuration")
        yield types.SimpleNamespace(name=name, settings=settings, cert_dir=cert_dir, runner=runner)
    control_plane.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)


def policy(kubectl: Kubectl, namespace: str, enforcement: str, **spec: Any) -> str:
    name = f"{enforcement}-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "metadata": {"name": name},
            "spec": {"enforcement": enforcement, "match": {"namespaces": [namespace]}, **spec}}
    kubectl("apply", "-f", "-", input=json.dumps(body))
    return name


@pytest.fixture
def policies(kubectl: Kubectl) -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for name in created:
        kubectl("delete", "readinesspolicy", name, "--ignore-not-found", "--wait=false", check=False)


def deployment(name: str, namespace: str, **container: Any) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1.27", **container}]}}},
    })


def apply(kubectl: Kubectl, manifest: str, *extra: str) -> Any:
    return kubectl("apply", *extra, "-f", "-", input=manifest, check=False)


def test_warn_policy_prints_kubectl_warnings(webhook: Any, kubectl: Kubectl, namespace: str,
                                             policies: list[str]) -> None:
    policies.append(name := policy(kubectl, namespace, "warn"))
    result = apply(kubectl, deployment("web", namespace))
    assert result.returncode == 0, result.stderr
    assert f"Warning: [{name}] Deployment/web: readiness-probe-missing:" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: [")]
    assert warnings and all(len(line) <= len("Warning: ") + 120 for line in warnings)


def test_deny_policy_rejects_with_a_readable_message(webhook: Any, kubectl: Kubectl, namespace: str,
                                                     policies: list[str]) -> None:
    policies.append(name := policy(kubectl, namespace, "deny"))
    result = apply(kubectl, deployment("web", namespace))
    assert result.returncode != 0
    assert f"workloads.{webhook.name}" in result.stderr and "denied the request" in result.stderr
    assert f"[{name}] readiness-probe-missing (app)" in result.stderr
    assert "Fix: Add a readinessProbe" in result.stderr
    assert kubectl("get", "deployment", "web", "-n", namespace, check=False).returncode != 0


def test_dry_run_is_judged_too(webhook: Any, kubectl: Kubectl, namespace: str, policies: list[str]) -> None:
    policies.append(policy(kubectl, namespace, "deny"))
    rejected = apply(kubectl, deployment("web", namespace), "--dry-run=server")
    assert rejected.returncode != 0 and "readiness-probe-missing" in rejected.stderr
    fixed = apply(kubectl, deployment("web", namespace, readinessProbe=PROBE, securityContext={
        "runAsNonRoot": True, "runAsUser": 10001}), "--dry-run=server")
    assert fixed.returncode == 0, fixed.stderr
    assert "Warning: [" in fixed.stderr  # lesser findings of a deny policy are warnings


def test_exempted_workload_passes(webhook: Any, kubectl: Kubectl, namespace: str,
                                  policies: list[str]) -> None:
    policies.append(policy(kubectl, namespace, "deny", exemptions=[
        {"names": ["legacy-*"], "checks": ["*"], "reason": "vendor chart, replaced in Q3"}]))
    assert apply(kubectl, deployment("legacy-app", namespace)).returncode == 0
    assert apply(kubectl, deployment("new-app", namespace)).returncode != 0


def test_audit_policy_has_no_effect(webhook: Any, kubectl: Kubectl, namespace: str,
                                    policies: list[str]) -> None:
    policies.append(policy(kubectl, namespace, "audit"))
    result = apply(kubectl, deployment("web", namespace))
    assert result.returncode == 0, result.stderr
    assert "Warning: [" not in result.stderr


def test_update_of_a_grandfathered_workload_is_allowed(webhook: Any, kubectl: Kubectl, namespace: str,
                                                        policies: list[str]) -> None:
    assert apply(kubectl, deployment("old", namespace)).returncode == 0  # before the policy existed
    policies.append(policy(kubectl, namespace, "deny"))
    result = kubectl("annotate", "deployment", "old", "-n", namespace, "team=payments", check=False)
    assert result.returncode == 0, result.stderr
    assert "readiness-probe-missing" in result.stderr  # still told, as a warning


def test_operator_namespace_is_excluded(webhook: Any, kubectl: Kubectl, own_namespace: str,
                                        policies: list[str]) -> None:
    policies.append(policy(kubectl, own_namespace, "deny"))
    config = json.loads(kubectl("get", "validatingwebhookconfiguration", webhook.name, "-o", "json").stdout)
    (hook,) = config["webhooks"]
    assert own_namespace in hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"], hook["sideEffects"]) == ("Ignore", 5, "None")
    assert apply(kubectl, deployment("operator-itself", own_namespace)).returncode == 0


def test_rotated_certificate_is_reloaded(webhook: Any, kubectl: Kubectl, namespace: str,
                                         policies: list[str]) -> None:
    def ca_bundle() -> str:
        return str(kubectl("get", "validatingwebhookconfiguration", webhook.name,
                           "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}").stdout)

    before = ca_bundle()
    write_serving_certificate(webhook.cert_dir, ["127.0.0.1"], Authority.create())  # a new CA, too
    wait_for(lambda: ca_bundle() != before, timeout=30, what="the new caBundle")
    policies.append(policy(kubectl, namespace, "deny"))
    result = wait_for(lambda: (r := apply(kubectl, deployment("web", namespace))).returncode != 0 and r,
                      timeout=30, what="a rejection served with the new certificate")
    assert "readiness-probe-missing" in result.stderr


def test_operator_outage_does_not_block_applies(control_plane: ControlPlane, crd: None, kubectl: Kubectl,
                                                outage_namespace: str, policies: list[str],
                                                tmp_path: Path) -> None:
    namespace = outage_namespace
    name = f"outage-{uuid.uuid4().hex[:8]}.readiness.dev"
    settings = WebhookSettings(addr="127.0.0.1", port=free_port(), managed_config=name, cert_dir=tmp_path,
                               policy_source="api", policy_refresh_seconds=0.0)
    policies.append(policy(kubectl, namespace, "deny"))
    try:
        with webhook_operator(control_plane, settings):
            wait_for(lambda: kubectl("get", "validatingwebhookconfiguration", name,
                                     check=False).returncode == 0, what="webhook configuration")
            wait_for(lambda: apply(kubectl, deployment("blocked", namespace)).returncode != 0,
                     timeout=30, what="the running webhook to deny")
        # The operator is gone; its configuration (failurePolicy Ignore) still points at the dead port.
        assert kubectl("get", "validatingwebhookconfiguration", name, check=False).returncode == 0
        result = apply(kubectl, deployment("during-outage", namespace))
        assert result.returncode == 0, result.stderr
    finally:
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False)
