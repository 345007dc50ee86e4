"""The node end-to-end suite: a real one-node cluster, the operator installed from its chart as pods.

- `node_cluster` (session): `NodeCluster` (control plane, containerd, kubelet, kube-proxy) with the images
  built from this repository imported; with ``--use-existing-cluster`` the current KUBECONFIG's cluster
  (e.g. kind after ``make kind-deploy``), whose nodes must already hold the images.
- `release` (session): the chart installed by ``helm upgrade --install`` (2 replicas, helm-mode webhook
  certificates), rolled out and Ready.
- `workload_image`: the small test image (busybox httpd on :8080, ``/healthz``).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from readiness.envtest import ControlPlaneSettings, Kubectl
from readiness.envtest.images import ImageArchive, ensure_images
from readiness.envtest.node import NodeCluster, NodeSettings
from readiness.envtest.release import Release

_CLUSTER = pytest.StashKey[NodeCluster]()


EXISTING_OPERATOR_IMAGE = "READINESS_E2E_OPERATOR_IMAGE"
"""On ``--use-existing-cluster``: the operator image its nodes hold (``make kind-deploy`` loads it)."""
EXISTING_WORKLOAD_IMAGE = "READINESS_E2E_WORKLOAD_IMAGE"
"""On ``--use-existing-cluster``: any image with busybox's sh and httpd (default ``busybox:1.36``)."""


@pytest.fixture(scope="session")
def images(pytestconfig: pytest.Config) -> dict[str, ImageArchive]:
    if pytestconfig.getoption("use_existing_cluster"):
        operator = os.environ.get(EXISTING_OPERATOR_IMAGE, "readiness-operator:kind")
        workload = os.environ.get(EXISTING_WORKLOAD_IMAGE, "busybox:1.36")
        return {"operator": ImageArchive("operator", operator, Path()),
                "workload": ImageArchive("workload", workload, Path())}
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # a cold build shows its progress
        return ensure_images(progress=sys.stderr)


@pytest.fixture(scope="session")
def node_cluster(pytestconfig: pytest.Config, images: dict[str, ImageArchive]) -> Iterator[NodeCluster]:
    existing = bool(pytestconfig.getoption("use_existing_cluster"))
    settings = ControlPlaneSettings.from_env(use_existing_cluster=existing) if existing else None
    archives = () if existing else tuple(
        image.archive for name, image in images.items() if name != "python-base")  # only a build input
    cluster = NodeCluster(settings, NodeSettings(image_archives=archives))
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        cluster.start()
    pytestconfig.stash[_CLUSTER] = cluster
    try:
        yield cluster
    finally:
        del pytestconfig.stash[_CLUSTER]
        cluster.stop()


@pytest.fixture(scope="session")
def release(node_cluster: NodeCluster, images: dict[str, ImageArchive]) -> Release:
    ref = images["operator"].ref
    digest = "" if node_cluster.settings.use_existing_cluster else node_cluster.image_digest(ref) or ""
    installed = Release(node_cluster, ref, digest=digest)
    seconds = installed.install()
    print(f"\noperator rollout (helm upgrade --install --wait): {seconds:.1f}s", file=sys.stderr)
    return installed


@pytest.fixture
def node_kubectl(node_cluster: NodeCluster) -> Kubectl:
    return node_cluster.kubectl


@pytest.fixture
def workload_image(images: dict[str, ImageArchive]) -> str:
    return images["workload"].ref


@pytest.fixture
def node_namespace(node_kubectl: Kubectl) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    node_kubectl("create", "namespace", name)
    yield name
    node_kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cluster = item.config.stash.get(_CLUSTER, None)
    if report.failed and cluster is not None and cluster.pids:
        report.sections.append(("node logs (tail)", cluster.dump_logs(tail=60)))
        pods = cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
        events = cluster.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout
        report.sections.append(("pods and events", pods + "\n" + "\n".join(events.splitlines()[-40:])))
    return report
