"""Requests defaulted from limits (issue 11): the API server copies a container's limits into its unset
requests on every Pod it stores (SetDefaults_Pod), though not into a Deployment's pod template. So a
manifest, the object the server stores and the pods it runs must all get the same verdict from the
resource checks, and no "request missing" finding for a resource that has a limit.

Everything goes through server-side dry run: the real kube-apiserver's defaulting, nothing persisted.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from readiness.checks import CATALOG
from readiness.checks._helpers import parse_quantity, requests
from readiness.checks.base import Category
from readiness.engine import Engine
from readiness.envtest import Kubectl
from readiness.policy import ReadinessPolicy
from readiness.workload import Workload, project

pytestmark = pytest.mark.cluster

POD_SPEC: dict[str, Any] = {
    "initContainers": [
        # plain init container: a request for one resource, a limit for another
        {"name": "migrate", "image": "registry.example/migrate:1.0",
         "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "128Mi"}}},
        # native sidecar: limits only
        {"name": "proxy", "image": "registry.example/proxy:1.0", "restartPolicy": "Always",
         "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}},
    ],
    "containers": [
        # limits only, including ephemeral storage and an extended resource
        {"name": "app", "image": "registry.example/app:1.0",
         "resources": {"limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi",
                                  "example.com/device": "1"}}},
        # a declared request wins over the limit: the ratio is still 20x
        {"name": "burst", "image": "registry.example/burst:1.0",
         "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "2", "memory": "256Mi"}}},
    ],
}

RESOURCE_CHECKS = tuple(c.id for c in CATALOG.values() if c.category is Category.RESOURCES)


def resource_engine() -> Engine:
    """Every resource check on, including those off by default, on Pods and Deployments."""
    checks = {cid: {"enabled": cid in RESOURCE_CHECKS} for cid in CATALOG}
    return Engine(ReadinessPolicy.model_validate({
        "metadata": {"name": "resources"},
        "spec": {"match": {"kinds": ["Deployment", "Pod"], "excludeNamespaces": []}, "checks": checks},
    }))


def deployment(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "limits-only", "namespace": namespace},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "limits-only"}},
                     "template": {"metadata": {"labels": {"app": "limits-only"}},
                                  "spec": copy.deepcopy(POD_SPEC)}}}


def pod(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "limits-only", "namespace": namespace, "labels": {"app": "limits-only"}},
            "spec": copy.deepcopy(POD_SPEC)}


def stored(kubectl: Kubectl, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the API server would store: defaulted, validated, admitted, not persisted."""
    reply = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(manifest))
    result: dict[str, Any] = json.loads(reply.stdout)
    return result


def verdict(engine: Engine, workload: Workload) -> set[tuple[str, str | None, str]]:
    evaluation = engine.evaluate(workload)
    assert not evaluation.errors, evaluation.errors
    return {(f.check, f.container, f.message) for f in evaluation.findings}


def in_base_units(values: Any) -> dict[str, float]:
    return {name: parse_quantity(value) for name, value in (values or {}).items()}


def test_stored_pod_requests_are_what_we_judge(kubectl: Kubectl, namespace: str) -> None:
    """Our reading of requests is the server's defaulting rule, container by container."""
    server = project(stored(kubectl, pod(namespace)))
    ours = project(pod(namespace))
    for theirs, mine in zip(server.containers, ours.containers, strict=True):
        assert theirs.name == mine.name
        assert in_base_units(theirs.spec["resources"].get("requests")) == in_base_units(requests(mine)), \
            theirs.name


def test_manifest_stored_object_and_pods_get_one_verdict(kubectl: Kubectl, namespace: str) -> None:
    engine = resource_engine()
    verdicts = {
        "deployment manifest": verdict(engine, project(deployment(namespace))),
        "stored deployment": verdict(engine, project(stored(kubectl, deployment(namespace)))),
        "pod manifest": verdict(engine, project(pod(namespace))),
        "stored pod": verdict(engine, project(stored(kubectl, pod(namespace)))),
    }
    expected = verdicts["stored pod"]  # what the kubelet and the scheduler will actually see
    assert {name: v for name, v in verdicts.items() if v != expected} == {}, expected
    # every request the containers judged here lack is one they have no limit for either
    assert {(check, container) for check, container, _ in expected} == {
        ("ephemeral-storage-request-missing", "proxy"),
        ("ephemeral-storage-request-missing", "burst"),
        ("limit-request-ratio", "burst"),
    }
