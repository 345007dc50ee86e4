"""Shared pytest wiring.

Control plane: ``control_plane`` (session) starts etcd, kube-apiserver and kube-controller-manager once,
on first use, building the binaries on a cold cache; ``--use-existing-cluster`` (or
``READINESS_USE_EXISTING_CLUSTER=1``) uses the current KUBECONFIG instead. ``kubectl``, ``kubeconfig`` and
``namespace`` build on it. A failed ``cluster`` test gets the tail of the component logs in its report.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from readiness.envtest import ControlPlane, ControlPlaneSettings, Kubectl

_CONTROL_PLANE = pytest.StashKey[ControlPlane]()
_LOG_TAIL_LINES = 200


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--use-existing-cluster", action="store_true", default=False,
        help="run cluster tests against the current KUBECONFIG instead of a local control plane",
    )


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlane]:
    """The session's control plane, started on first use and stopped at the end of the session."""
    settings = ControlPlaneSettings.from_env()
    if pytestconfig.getoption("use_existing_cluster"):
        settings = ControlPlaneSettings.from_env(use_existing_cluster=True)
    plane = ControlPlane(settings)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # show build progress live on a cold cache
        plane.start()
    pytestconfig.stash[_CONTROL_PLANE] = plane
    try:
        yield plane
    finally:
        del pytestconfig.stash[_CONTROL_PLANE]
        plane.stop()


@pytest.fixture
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """``kubectl(*args, check=True, input=None, kubeconfig=None, timeout=120.0) -> CompletedProcess[str]``,
    run as admin unless ``kubeconfig`` is given; raises KubectlError (with stderr) when ``check``."""
    return control_plane.kubectl


@pytest.fixture
def kubeconfig(control_plane: ControlPlane) -> Path:
    """The admin kubeconfig of the session's control plane."""
    return control_plane.kubeconfig


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for it to go)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    plane = item.config.stash.get(_CONTROL_PLANE, None)
    if report.failed and plane is not None and item.get_closest_marker("cluster") is not None:
        report.sections.append(("control plane logs (tail)", plane.dump_logs(tail=_LOG_TAIL_LINES)))
    return report
