"""Issue 12, items 17-18 on the real control plane: a workload whose annotations leave too little room for
ours still gets its label and verdict (the API server rejects a write past 256 KiB of annotations whole),
says so once, and expected 404s of existence probes are not counted as API errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import yaml

from readiness.checks import CATALOG
from readiness.controller import client, output
from readiness.controller.settings import OperatorSettings
from readiness.controller.writer import Writer, resource_path
from readiness.envtest import Kubectl
from readiness.workload import WorkloadRef
from support.cluster import get_json, wait_until

from .conftest import OperatorHandle, annotations_of, deployment_yaml, policy_yaml

pytestmark = pytest.mark.cluster
Start = Callable[..., AbstractContextManager[OperatorHandle]]
LIMIT = 256 * 1024
"""Kubernetes' bound on all of an object's annotations together (keys plus values, in bytes)."""
TRUNCATED = "ReadinessOutputTruncated"
BLOB = "example.com/blob"
ROOM = 1500
"""Bytes the workload's own annotations leave for ours: less than its violations list needs."""


def crowded_deployment(name: str, namespace: str) -> str:
    """A Deployment whose annotations are within ROOM bytes of the 256 KiB total (about 254 KiB)."""
    blob = "x" * (LIMIT - ROOM - len(BLOB))
    return deployment_yaml(name, namespace, annotations={BLOB: blob})


def size(annotations: dict[str, str]) -> int:
    return sum(len(key.encode()) + len(value.encode()) for key, value in annotations.items())


def label(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    meta = get_json(kubectl, "deployment", name, "-n", namespace)["metadata"]
    return (meta.get("labels") or {}).get(output.COMPLIANT_LABEL)


def truncation_events(kubectl: Kubectl, namespace: str) -> list[str]:
    items = get_json(kubectl, "events", "-n", namespace, "--field-selector",
                     f"reason={TRUNCATED}")["items"]
    return [item["message"] for item in items]


def test_a_crowded_workload_gets_its_label_verdict_and_what_fits(
        kubectl: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    """On HEAD: PATCH 422, no label, no verdict."""
    # `kubectl create`: `apply` would copy the whole object into last-applied-configuration, past the limit.
    kubectl("create", "-f", "-", input=crowded_deployment("crowded", namespace))
    # Without the test label, which the fixture deletes when an operator stops: this one outlives the first.
    policy = yaml.safe_load(policy_yaml(f"crowded-{unique}", [namespace], checks=tuple(CATALOG)))
    del policy["metadata"]["labels"]
    kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
    try:
        judged_twice(kubectl, namespace, start_operator)
    finally:
        kubectl("delete", "readinesspolicy", policy["metadata"]["name"], "--wait=false", check=False)
        kubectl("patch", "readinesspolicy", policy["metadata"]["name"], "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}', check=False)


def judged_twice(kubectl: Kubectl, namespace: str, start_operator: Start) -> None:
    with start_operator() as operator:
        wait_until(lambda: label(kubectl, namespace, "crowded") == "false", 30, "the compliant label")
        ref = WorkloadRef("Deployment", namespace, "crowded")
        audited = operator.runtime.state.audited.get(ref)
        ours = annotations_of(kubectl, namespace, "crowded")
        assert ours[output.VERDICT] == "violating"
        listed = json.loads(ours[output.VIOLATIONS])
        assert listed[-1].get("truncated", 0) > 0, listed  # shortened, worst first, the rest counted
        assert size(ours) <= LIMIT
        wait_until(lambda: truncation_events(kubectl, namespace), 20, "the truncation Event")
        [message] = truncation_events(kubectl, namespace)
        assert f"{output.VIOLATIONS} cut to" in message, message
        assert operator.metric("readiness_writes_truncated_total") == 1
        assert operator.metric("readiness_api_errors_total", code="422") == 0  # handled, not an error
        assert operator.metric("readiness_api_errors_total", code="404") == 0  # existence probes

        # A re-audit that changes nothing we write (a new label: the room is the same) neither rewrites
        # nor re-announces.
        kubectl("label", "deployment", "crowded", "-n", namespace, "touched=1")
        wait_until(lambda: operator.runtime.state.audited.get(ref) != audited, 10, "the re-audit")
        time.sleep(2)
        assert operator.metric("readiness_writes_truncated_total") == 1
        assert len(truncation_events(kubectl, namespace)) == 1
    cut = annotations_of(kubectl, namespace, "crowded")

    # A restart finding the cut state on the object says nothing again and writes nothing.
    with start_operator() as operator:
        wait_until(lambda: ref in operator.runtime.state.audited, 30, "the start-up audit")
        time.sleep(2)
        assert operator.metric("readiness_writes_truncated_total") == 0
        assert len(truncation_events(kubectl, namespace)) == 1
        assert annotations_of(kubectl, namespace, "crowded") == cut

        # Room again: the whole list is written.
        kubectl("annotate", "deployment", "crowded", "-n", namespace, f"{BLOB}-")

        def whole() -> bool:
            violations = annotations_of(kubectl, namespace, "crowded").get(output.VIOLATIONS, "[]")
            return len(violations.encode()) > ROOM
        wait_until(whole, 20, "the whole violations list")
        assert operator.metric("readiness_writes_truncated_total") == 0


async def probes(kubeconfig: Path, namespace: str, counter: Counted) -> tuple[bool, object]:
    api = await client.api_client(OperatorSettings(kubeconfig=str(kubeconfig)))
    writer = Writer(api, counter, concurrency=2, attempts=2, base_delay=0.01, max_delay=0.01, event_rate=1.0,
                    event_burst=1, request_timeout=10.0)
    try:
        installed = await writer.crd_installed("nothings.example.com")
        await writer.delete("delete_rules", resource_path("v1", "configmaps", namespace, "gone"))
        missing = await writer.read("read_rules", resource_path("v1", "configmaps", namespace, "gone"))
        return installed, missing
    finally:
        await api.close()


class Counted:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def api_error(self, operation: str, code: str) -> None:
        self.errors.append((operation, code))


def test_existence_probes_and_deleting_what_is_gone_are_not_errors(
        kubeconfig: Path, namespace: str) -> None:
    counter = Counted()
    assert asyncio.run(probes(kubeconfig, namespace, counter)) == (False, None)
    assert counter.errors == []


def test_the_blob_is_as_big_as_the_issue_says() -> None:
    body = yaml.safe_load(crowded_deployment("crowded", "ns"))
    assert 250 * 1024 <= size(body["metadata"]["annotations"]) < 256 * 1024
