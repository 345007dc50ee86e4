"""Issue 12, item 10, through the real kube-apiserver: objects whose AdmissionReview is over aiohttp's
default 1 MiB are judged, not answered 413 (which failurePolicy Ignore turns into an admission).

`kubectl create`/`replace`, not `apply`: apply would copy the object into the last-applied annotation,
which the API server caps at 256 KiB before any webhook is called.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from readiness.envtest import Kubectl

from . import test_webhook as shared

# The fixtures of test_webhook (a webhook operator for this module, its namespaces, policy clean-up).
_api_server_reaches_localhost = shared._api_server_reaches_localhost
crd, own_namespace, outage_namespace = shared.crd, shared.own_namespace, shared.outage_namespace
webhook, policies, policy, PROBE = shared.webhook, shared.policies, shared.policy, shared.PROBE

pytestmark = pytest.mark.cluster

NON_ROOT = {"runAsNonRoot": True, "runAsUser": 10001}


def big_deployment(name: str, namespace: str, padding: int, compliant: bool) -> str:
    container: dict[str, Any] = {"name": "app", "image": "nginx:1.27",
                                 "env": [{"name": "PADDING", "value": "x" * padding}]}
    if compliant:
        container |= {"readinessProbe": PROBE, "securityContext": NON_ROOT}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}},
    })


def test_a_noncompliant_deployment_over_a_mebibyte_is_denied(webhook: Any, kubectl: Kubectl, namespace: str,
                                                             policies: list[str]) -> None:
    policies.append(name := policy(kubectl, namespace, "deny"))
    manifest = big_deployment("big", namespace, 1_100_000, compliant=False)
    result = kubectl("create", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0, "a 1.1 MB non-compliant Deployment was admitted in deny mode"
    assert "denied the request" in result.stderr and f"[{name}] readiness-probe-missing" in result.stderr
    assert kubectl("get", "deployment", "big", "-n", namespace, check=False).returncode != 0


def test_a_600_kb_update_to_noncompliant_is_denied(webhook: Any, kubectl: Kubectl, namespace: str,
                                                   policies: list[str]) -> None:
    """The API server sends the old object too: 1.2 MB for this UPDATE."""
    policies.append(policy(kubectl, namespace, "deny"))
    created = kubectl("create", "-f", "-", input=big_deployment("web", namespace, 600_000, compliant=True),
                      check=False)
    assert created.returncode == 0, created.stderr
    result = kubectl("replace", "-f", "-", input=big_deployment("web", namespace, 600_000, compliant=False),
                     check=False)
    assert result.returncode != 0, "a 600 KB compliant-to-non-compliant UPDATE was admitted in deny mode"
    assert "denied the request" in result.stderr and "readiness-probe-missing" in result.stderr
    container = json.loads(kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)[
        "spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" in container
