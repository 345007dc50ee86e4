"""Our API client against the real API server: writes read no body they do not need, errors still carry
their status, body and headers, and a vanished object is not an error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from readiness.controller import client
from readiness.controller.settings import OperatorSettings
from readiness.controller.writer import Writer, resource_path
from readiness.envtest import Kubectl

from .conftest import annotations_of, deployment_yaml

pytestmark = pytest.mark.cluster


class Counted:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def api_error(self, operation: str, code: str) -> None:
        self.errors.append((operation, code))


async def writes(kubeconfig: Path, namespace: str, counter: Counted) -> tuple[bool, bool, ApiException]:
    api = await client.api_client(OperatorSettings(kubeconfig=str(kubeconfig)))
    writer = Writer(api, counter, concurrency=2, attempts=2, base_delay=0.01, max_delay=0.01, event_rate=1.0,
                    event_burst=1, request_timeout=10.0)
    try:
        patched = await writer.patch_metadata(
            resource_path("apps/v1", "deployments", namespace, "web"),
            {"metadata": {"annotations": {"readiness.dev/verdict": "compliant"}}})
        vanished = await writer.patch_metadata(
            resource_path("apps/v1", "deployments", namespace, "gone"),
            {"metadata": {"annotations": {"readiness.dev/verdict": "compliant"}}})
        with pytest.raises(ApiException) as invalid:
            await writer.patch_metadata(resource_path("apps/v1", "deployments", namespace, "web"),
                                        {"metadata": {"labels": {"readiness.dev/compliant": "not a label!"}}})
        return patched, vanished, invalid.value
    finally:
        await api.close()


def test_writes_against_the_api_server(kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace))
    counter = Counted()
    patched, vanished, invalid = asyncio.run(writes(kubeconfig, namespace, counter))
    assert patched is True
    assert annotations_of(kubectl, namespace, "web")["readiness.dev/verdict"] == "compliant"
    assert vanished is False  # 404: the workload was deleted meanwhile; nothing to write
    assert invalid.status == 422 and "not a label!" in str(invalid.body) and invalid.headers is not None
    assert counter.errors == [("patch_workload", "404"), ("patch_workload", "422")]  # 4xx: never retried
