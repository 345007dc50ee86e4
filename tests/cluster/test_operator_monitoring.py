"""Issue 13, items 9 and 10, end to end. A real Prometheus (Debian's) scrapes a real operator, started as
the cluster tests start it (`running_operator`), and evaluates the chart's own PrometheusRule, rendered by
helm with short `for` values: ReadinessOperatorAPIErrors fires while the operator's writes are refused
(its ClusterRoleBinding deleted), every query of the chart's Grafana dashboard returns data, and
ReadinessOperatorDown fires once the operator stops, then resolves when it is back."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.alerts import OPERATOR_API_ERRORS_ALERT, OPERATOR_DOWN_ALERT, rules_yaml
from readiness.envtest import ControlPlane, Kubectl, upstream_crds
from support.cluster import wait_until
from support.grafana import Query, queries
from support.prometheus import PrometheusServer, require

from .conftest import OperatorHandle, deployment_yaml, policy_yaml
from .test_chart import CHART, helm

pytestmark = [pytest.mark.cluster, pytest.mark.prometheus]
Start = Callable[..., AbstractContextManager[OperatorHandle]]

FOR = "5s"
"""The alerts' `for`, set through the chart's values: long enough to see `pending`, short enough to wait."""
ROUTING = {"team": "platform"}
MONITORING_VALUES = (
    "prometheusRule.enabled=true", f"prometheusRule.operatorDown.for={FOR}",
    f"prometheusRule.apiErrors.for={FOR}", "prometheusRule.additionalLabels.release=kube-prometheus-stack",
    f"prometheusRule.alertLabels.team={ROUTING['team']}", "grafanaDashboard.enabled=true",
    "grafanaDashboard.annotations.grafana_folder=Platform",
)


def render(namespace: str = "readiness-system", *values: str) -> list[dict[str, Any]]:
    flags = [item for value in values for item in ("--set", value)]
    text = helm("template", "readiness-operator", str(CHART), "--namespace", namespace, *flags).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def chart_object(documents: list[dict[str, Any]], kind: str, label: str | None = None) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind
                and (label is None or label in d["metadata"].get("labels", {}))]
    return found


@pytest.fixture
def chart_rules(tmp_path: Path) -> Path:
    """The chart's PrometheusRule, rendered with MONITORING_VALUES, as a rules file for Prometheus."""
    rule = chart_object(render("readiness-system", *MONITORING_VALUES), "PrometheusRule")
    path = tmp_path / "operator.rules.yaml"
    path.write_text(rules_yaml(rule["spec"]))
    return path


@pytest.fixture
def admin_user(kubectl: Kubectl, unique: str) -> Iterator[tuple[str, str]]:
    """A user bound to cluster-admin by a ClusterRoleBinding the test may delete: (user, binding)."""
    user = binding = f"monitoring-operator-{unique}"
    kubectl("create", "clusterrolebinding", binding, "--clusterrole=cluster-admin", f"--user={user}")
    yield user, binding
    kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


# -- the chart's objects ----------------------------------------------------------------------------------

def test_the_chart_renders_the_operator_rules_and_the_dashboard_as_configured() -> None:
    documents = render("monitoring", *MONITORING_VALUES, "prometheusRule.namespace=monitoring-rules")
    rule = chart_object(documents, "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring-rules"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(rules) == {OPERATOR_DOWN_ALERT, OPERATOR_API_ERRORS_ALERT}
    for alert in rules.values():
        assert alert["for"] == FOR
        assert alert["labels"] == {"severity": "warning", **ROUTING}
        assert "{{ $labels" not in alert["annotations"]["summary"]  # Helm left Prometheus' templates alone
    assert "{{ $labels.operation }}" in rules[OPERATOR_API_ERRORS_ALERT]["annotations"]["description"]

    board = chart_object(documents, "ConfigMap", "grafana_dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["namespace"] == "monitoring"
    assert board["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    (text,) = board["data"].values()
    assert json.loads(text) == json.loads((CHART / "files" / "dashboards" / "readiness-operator.json")
                                          .read_text())


def test_monitoring_is_absent_by_default_and_bad_durations_are_refused() -> None:
    kinds = {d["kind"] for d in render()}
    assert "PrometheusRule" not in kinds
    assert not [d for d in render() if "grafana_dashboard" in d["metadata"].get("labels", {})]
    bad = helm("template", "x", str(CHART), "--set", "prometheusRule.operatorDown.for=soon", check=False)
    assert bad.returncode != 0 and "operatorDown" in bad.stderr


def test_the_real_api_server_accepts_the_rule_and_the_dashboard(control_plane: ControlPlane,
                                                                kubectl: Kubectl, namespace: str) -> None:
    """Server-side dry run against prometheus-operator's own PrometheusRule CRD (pinned, fetched)."""
    upstream_crds.install(kubectl, upstream_crds.PROMETHEUS_RULE)
    documents = render(namespace, *MONITORING_VALUES)
    objects = [chart_object(documents, "PrometheusRule"),
               chart_object(documents, "ConfigMap", "grafana_dashboard")]
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects), check=False)
    assert result.returncode == 0, result.stderr


# -- a real Prometheus scraping a real operator -----------------------------------------------------------

def test_api_errors_alert_fires_and_every_dashboard_query_returns_data(
        control_plane: ControlPlane, kubectl: Kubectl, namespace: str, start_operator: Start, unique: str,
        admin_user: tuple[str, str], chart_rules: Path, tmp_path: Path) -> None:
    require("prometheus")
    user, binding = admin_user
    names = [f"w{i}" for i in range(20)]  # fixed while RBAC is gone: 20 refused writes, retried
    kept = [f"k{i}" for i in range(3)]  # still violating: the violation panels have something to show
    policy = f"monitoring-{unique}"
    kubectl("apply", "-f", "-", input=policy_yaml(policy, [namespace]))
    kubectl("apply", "-f", "-", input="\n---\n".join(deployment_yaml(n, namespace) for n in names + kept))
    with contextlib.ExitStack() as stack:
        op = stack.enter_context(start_operator(kubeconfig=str(control_plane.kubeconfig_for_user(user))))
        wait_until(lambda: op.metric("readiness_policy_workloads", policy=policy, state="violating") == 23,
                   60, "every workload judged violating")
        wait_until(lambda: op.metric("readiness_events_total", outcome="posted"), 30, "the Events posted")
        prometheus = stack.enter_context(PrometheusServer(
            targets=[f"127.0.0.1:{op.metrics_port}"], rule_files=[chart_rules], workdir=tmp_path))
        prometheus.wait(prometheus.targets_up, timeout=60, what="the operator to be scraped")

        # RBAC gone (a botched upgrade): every verdict the fixes below flip is refused with 403, retried.
        kubectl("delete", "clusterrolebinding", binding)
        stack.callback(kubectl, "create", "clusterrolebinding", binding, "--clusterrole=cluster-admin",
                       f"--user={user}")  # before the operator stops: it must remove its finalizers
        kubectl("apply", "-f", "-", input="\n---\n".join(deployment_yaml(n, namespace, probe=True)
                                                         for n in names))
        labels = {"operation": "patch_workload", "code": "403", **ROUTING}
        prometheus.wait_for_alert(OPERATOR_API_ERRORS_ALERT, state="pending", labels=labels, timeout=90)
        firing = prometheus.wait_for_alert(OPERATOR_API_ERRORS_ALERT, state="firing", labels=labels,
                                           timeout=60)
        assert firing["annotations"]["runbook_url"].endswith("/docs/runbooks/ReadinessOperatorAPIErrors.md")
        assert "patch_workload calls fail with 403" in firing["annotations"]["description"]

        empty = _wait_every_query_answers(prometheus, queries())
        assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
        assert prometheus.alerts(OPERATOR_DOWN_ALERT) == []


def _wait_every_query_answers(prometheus: PrometheusServer, panels: list[Query],
                              timeout: float = 30.0) -> list[str]:
    """The panels whose query still returns nothing after `timeout` (empty: all answered)."""
    deadline = time.monotonic() + timeout
    while True:
        empty = [f"{q.panel} [{q.ref}]: {q.expr}" for q in panels if not prometheus.query(q.expr)]
        if not empty or time.monotonic() > deadline:
            return empty
        time.sleep(1.0)


def test_operator_down_fires_when_the_operator_stops_and_resolves_when_it_is_back(
        start_operator: Start, chart_rules: Path, tmp_path: Path) -> None:
    require("prometheus")
    with contextlib.ExitStack() as stack:
        operator = contextlib.ExitStack()
        op = operator.enter_context(start_operator())
        port = op.metrics_port
        prometheus = stack.enter_context(PrometheusServer(
            targets=[f"127.0.0.1:{port}"], rule_files=[chart_rules], workdir=tmp_path))
        prometheus.wait(prometheus.targets_up, timeout=60, what="the operator to be scraped")
        # The rule may have gone pending before the first scrape; once scraped it must be quiet.
        prometheus.wait_for_no_alert(OPERATOR_DOWN_ALERT, timeout=30)

        operator.close()  # the operator stops: its /metrics goes away with it
        pending = prometheus.wait_for_alert(OPERATOR_DOWN_ALERT, state="pending", labels=ROUTING, timeout=60)
        firing = prometheus.wait_for_alert(OPERATOR_DOWN_ALERT, state="firing", labels=ROUTING, timeout=60)
        assert pending["activeAt"] == firing["activeAt"]
        assert firing["labels"]["severity"] == "warning"
        assert firing["annotations"]["runbook_url"].endswith("/docs/runbooks/ReadinessOperatorDown.md")

        stack.enter_context(start_operator(metrics_port=port))  # back on the port Prometheus scrapes
        prometheus.wait_for_no_alert(OPERATOR_DOWN_ALERT, timeout=60)
