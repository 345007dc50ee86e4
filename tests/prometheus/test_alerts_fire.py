"""A real Prometheus scrapes a ReadinessMetrics registry and evaluates the generated rules: the alert goes
pending, then firing, for a violating workload, and resolves once the workload is fixed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.alerts import ALERT_NAME, rules_document, rules_yaml
from readiness.checks.base import Category, Severity
from readiness.engine import Finding
from readiness.metrics import ReadinessMetrics
from readiness.policy import ReadinessPolicy
from readiness.workload import WorkloadRef
from support.prometheus import PrometheusServer, require

pytestmark = pytest.mark.prometheus

WEB = WorkloadRef("Deployment", "shop", "web")
NO_PROBE = Finding("readiness-probe-missing", Category.PROBES, Severity.ERROR, "no readinessProbe", "web")
# Long enough for a 1s evaluation loop to show the pending state on a slow machine, short enough to fire soon.
FOR = "5s"


@pytest.fixture
def served() -> Iterator[tuple[ReadinessMetrics, int]]:
    """A registry served on a free loopback port, as the operator serves its own."""
    metrics = ReadinessMetrics()
    port = metrics.serve(0, "127.0.0.1")
    yield metrics, port
    metrics.close()


@pytest.fixture
def metrics(served: tuple[ReadinessMetrics, int]) -> ReadinessMetrics:
    return served[0]


@pytest.fixture
def prometheus(served: tuple[ReadinessMetrics, int], tmp_path: Path) -> Iterator[PrometheusServer]:
    require("prometheus")
    policy = ReadinessPolicy.model_validate({"metadata": {"name": "prod"}, "spec": {"alerting": {
        "for": FOR, "labels": {"team": "shop"}, "runbookUrl": "https://runbooks.example/"}}})
    rules = tmp_path / "prod.rules.yaml"
    rules.write_text(rules_yaml(rules_document(policy)))
    target = f"127.0.0.1:{served[1]}"
    with PrometheusServer(targets=[target], rule_files=[rules], workdir=tmp_path) as server:
        yield server


def test_alert_fires_for_a_violation_and_resolves_when_fixed(
    metrics: ReadinessMetrics, prometheus: PrometheusServer,
) -> None:
    expected = {"policy": "prod", "namespace": "shop", "kind": "Deployment", "workload": "web",
                "check": "readiness-probe-missing", "severity": "critical", "team": "shop"}
    prometheus.wait(prometheus.targets_up, timeout=60, what="the metrics target to be up")
    assert prometheus.alerts(ALERT_NAME) == []

    metrics.observe("prod", WEB, [NO_PROBE])
    pending = prometheus.wait_for_alert(ALERT_NAME, state="pending", labels=expected, timeout=60)
    firing = prometheus.wait_for_alert(ALERT_NAME, state="firing", labels=expected, timeout=60)
    assert pending["activeAt"] == firing["activeAt"]
    assert firing["annotations"]["runbook_url"] == "https://runbooks.example/readiness-probe-missing.md"
    assert firing["annotations"]["summary"] == (
        "Deployment shop/web fails the readiness check readiness-probe-missing.")
    assert float(firing["value"]) == 1.0
    assert prometheus.query('ALERTS{alertname="ReadinessPolicyViolation", alertstate="firing"}')

    metrics.observe("prod", WEB, [])
    prometheus.wait_for_no_alert(ALERT_NAME, timeout=60)
    assert not prometheus.query('ALERTS{alertname="ReadinessPolicyViolation"}')


def test_findings_below_min_severity_never_alert(
    metrics: ReadinessMetrics, prometheus: PrometheusServer,
) -> None:
    info = Finding("startup-probe-missing", Category.PROBES, Severity.INFO, "no startupProbe", "web")
    metrics.observe("prod", WEB, [info, NO_PROBE])
    prometheus.wait_for_alert(ALERT_NAME, state="firing", labels={"check": "readiness-probe-missing"})
    # Several evaluations have passed since the error alert fired: the info finding would have shown by now.
    assert [a["labels"]["check"] for a in prometheus.alerts(ALERT_NAME)] == ["readiness-probe-missing"]
