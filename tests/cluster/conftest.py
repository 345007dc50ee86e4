"""Operator fixtures: the real operator (kopf.testing.KopfRunner, in a thread) against the control plane.

- `operator_runner`: a running operator with test settings (fresh metrics port, standalone, short status
  debounce); `start_operator(**settings)` starts more (or differently configured) ones.
- `wait_until(predicate, timeout, message)`: poll a condition.
- `api_writes(kubectl)`: the API server's write counters (`apiserver_request_total`).
- `policy_yaml(...)` / `deployment_yaml(...)`: test objects.
"""

from __future__ import annotations

import contextlib
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from prometheus_client.parser import text_string_to_metric_families

from readiness.checks import CATALOG
from readiness.controller import OperatorSettings, build
from readiness.controller.handlers import Runtime
from readiness.envtest import ControlPlane, Kubectl, wait_established
from readiness.envtest.controlplane import free_port
from support.cluster import get_json, wait_until

ROOT = Path(__file__).parents[2]
OPERATOR_NAMESPACE = "readiness-system"
TEST_LABEL = "readiness.dev/test"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "CREATE", "UPDATE", "DELETE"})
OUR_RESOURCES = frozenset({"deployments", "statefulsets", "daemonsets", "events", "readinesspolicies",
                           "prometheusrules", "configmaps", "policyreports"})
"""Everything the operator may write. Leases (written by the control plane itself) are left out."""


def only_checks(*ids: str) -> dict[str, Any]:
    """A spec.checks that enables exactly these checks: test verdicts stay easy to reason about."""
    return {cid: {"enabled": cid in ids} for cid in CATALOG}


def policy_yaml(name: str, namespaces: list[str], checks: tuple[str, ...] = ("readiness-probe-missing",),
                **spec: Any) -> str:
    body = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": name, "labels": {TEST_LABEL: "true"}},
            "spec": {"match": {"namespaces": namespaces}, "checks": only_checks(*checks), **spec}}
    return yaml.safe_dump(body)


def deployment_yaml(name: str, namespace: str, probe: bool = False, labels: dict[str, str] | None = None,
                    annotations: dict[str, str] | None = None) -> str:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1.0"}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container]}}}}
    return yaml.safe_dump(body)


def annotations_of(kubectl: Kubectl, namespace: str, name: str, kind: str = "deployment") -> dict[str, str]:
    meta = get_json(kubectl, kind, name, "-n", namespace)["metadata"]
    return dict(meta.get("annotations") or {})


def api_writes(kubectl: Kubectl, resources: frozenset[str] = OUR_RESOURCES) -> dict[str, float]:
    """`apiserver_request_total` write counts by (verb resource), for the resources we may write."""
    text = kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        # scope="resource": requests on one named object, as all of ours are; the namespace controller's
        # collection deletes (scope="namespace") of earlier tests' namespaces are not ours.
        if (labels.get("verb") in WRITE_VERBS and labels.get("resource") in resources
                and labels.get("scope") == "resource"):
            key = f"{labels['verb']} {labels['resource']}/{labels.get('subresource', '')}"
            counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def writes_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


@dataclass
class OperatorHandle:
    runner: KopfRunner
    runtime: Runtime
    settings: OperatorSettings
    metrics_port: int
    policies: list[str] = field(default_factory=list)

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as reply:
            text: str = reply.read().decode()
            return text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
        total = 0.0
        for family in text_string_to_metric_families(self.scrape()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    @property
    def evaluations(self) -> float:
        return self.metric("readiness_evaluations_total")

    def ready(self) -> bool:
        auditor = self.runtime.auditor
        return auditor is not None and self.runtime.metrics_port is not None


OperatorContext = contextlib.AbstractContextManager[OperatorHandle]


@pytest.fixture(scope="session")
def operator_cluster(control_plane: ControlPlane) -> ControlPlane:
    """The control plane with our CRD and the operator's namespace."""
    crd = ROOT / "crds" / "readinesspolicies.yaml"
    if crd.exists():
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    else:
        from readiness.crd import render_yaml
        control_plane.kubectl("apply", "--server-side", "-f", "-", input=render_yaml())
    wait_established(control_plane.kubectl, "readinesspolicies.readiness.dev")
    existing = control_plane.kubectl("get", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found",
                                     "-o", "name")
    if not existing.stdout.strip():
        control_plane.kubectl("create", "namespace", OPERATOR_NAMESPACE)
    return control_plane


def uninstall_crd(kubectl: Kubectl, name: str) -> None:
    kubectl("delete", "crd", name, "--ignore-not-found", "--timeout=60s")


def _delete_test_policies(kubectl: Kubectl) -> None:
    kubectl("delete", "readinesspolicies", "-l", f"{TEST_LABEL}=true", "--timeout=30s", "--ignore-not-found",
            check=False)


def _strip_finalizers(kubectl: Kubectl) -> None:
    """Policies left behind by a crashed operator keep Kopf's finalizer: free them so nothing hangs."""
    names = kubectl("get", "readinesspolicies", "-l", f"{TEST_LABEL}=true", "-o", "name", check=False).stdout
    for name in names.split():
        kubectl("patch", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)


@contextlib.contextmanager
def running_operator(control_plane: ControlPlane, **overrides: Any) -> Iterator[OperatorHandle]:
    port = free_port()
    values: dict[str, Any] = {"metrics_port": port, "metrics_address": "127.0.0.1",
                              "kubeconfig": str(control_plane.kubeconfig), "status_interval": 0.5,
                              "event_settle_seconds": 0.0,
                              "operator_namespace": OPERATOR_NAMESPACE, "standalone": True}
    values.update(overrides)
    settings = OperatorSettings(**values)
    registry, kopf_settings, runtime = build(settings)
    runner = KopfRunner(["run", "--all-namespaces", "--standalone"], registry=registry,
                        settings=kopf_settings, timeout=60)
    with runner:
        handle = OperatorHandle(runner, runtime, settings, port)
        wait_until(handle.ready, 30, "the operator to start")
        try:
            yield handle
        finally:
            _delete_test_policies(control_plane.kubectl)
    _strip_finalizers(control_plane.kubectl)


@pytest.fixture
def start_operator(operator_cluster: ControlPlane) -> Iterator[Callable[..., OperatorContext]]:
    """`with start_operator(events=False) as op:`: an operator with overridden settings."""
    def start(**overrides: Any) -> OperatorContext:
        return running_operator(operator_cluster, **overrides)
    yield start


@pytest.fixture
def operator_runner(operator_cluster: ControlPlane) -> Iterator[OperatorHandle]:
    """A running operator with the test settings; stopped (and its test policies deleted) afterwards."""
    with running_operator(operator_cluster) as handle:
        yield handle


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
