"""Issue 13, item 1: the chart's ServiceMonitor against prometheus-operator's own ServiceMonitor CRD (pinned,
fetched from its Go module by readiness.envtest.upstream_crds), accepted by the real API server."""

from __future__ import annotations

import pytest
import yaml

from readiness.envtest import ControlPlane, Kubectl, upstream_crds

from .test_chart import CHART, helm

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def service_monitor_crd(control_plane: ControlPlane) -> None:
    upstream_crds.install(control_plane.kubectl, upstream_crds.SERVICE_MONITOR)


def service_monitor(namespace: str, *sets: str) -> str:
    flags = [item for value in ("metrics.serviceMonitor.enabled=true", *sets) for item in ("--set", value)]
    return helm("template", "readiness-operator", str(CHART), "--namespace", namespace,
                "--show-only", "templates/servicemonitor.yaml", *flags).stdout


def test_the_charts_service_monitor_is_valid_under_the_real_crd(service_monitor_crd: None, kubectl: Kubectl,
                                                                namespace: str) -> None:
    rendered = service_monitor(namespace, "metrics.serviceMonitor.labels.release=kube-prometheus-stack")
    assert yaml.safe_load(rendered)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert result.returncode == 0, result.stderr
    assert "servicemonitor.monitoring.coreos.com/readiness-operator created (server dry run)" in result.stdout


def test_the_real_schema_is_enforced(service_monitor_crd: None, kubectl: Kubectl, namespace: str) -> None:
    """A stand-in that preserves unknown fields would accept anything: the upstream CRD checks, e.g., the
    scrape interval's duration pattern."""
    monitor = yaml.safe_load(service_monitor(namespace))
    monitor["spec"]["endpoints"][0]["interval"] = "often"
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(monitor), check=False)
    assert result.returncode != 0 and "interval" in result.stderr, result.stderr
