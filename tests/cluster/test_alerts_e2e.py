"""End to end: the operator audits a Deployment on the real control plane, a real Prometheus scrapes the
operator's metrics and evaluates the rules the operator wrote (its ConfigMap or PrometheusRule), and the
alert fires, then resolves once the Deployment is fixed. Everything is checked through Prometheus's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.alerts import ALERT_NAME, rules_yaml
from readiness.envtest import Kubectl
from support.prometheus import PrometheusServer, require

from .conftest import OperatorHandle, deployment_yaml, policy_yaml, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.prometheus]

# Long enough for the 1s evaluation loop to show the pending state, short enough to fire within seconds.
FOR = "5s"


def written_rules(kubectl: Kubectl, policy: str) -> str | None:
    """The rules file the operator wrote for `policy`, found through the policy's status.rules."""
    status = json.loads(kubectl("get", "readinesspolicy", policy, "-o", "json").stdout).get("status") or {}
    target: dict[str, str] = status.get("rules") or {}
    kind, namespace, name = target.get("kind"), target.get("namespace", ""), target.get("name", "")
    if kind == "ConfigMap":
        data: dict[str, str] = json.loads(kubectl("get", "configmap", name, "-n", namespace, "-o", "json")
                                          .stdout).get("data") or {}
        return data.get(f"{name}.rules.yaml")
    if kind == "PrometheusRule":
        rule: dict[str, Any] = json.loads(kubectl("get", "prometheusrules.monitoring.coreos.com", name, "-n",
                                                  namespace, "-o", "json").stdout)
        return rules_yaml(rule["spec"])
    return None


def test_alert_fires_for_a_violating_deployment_and_resolves_when_fixed(
    operator_runner: OperatorHandle, kubectl: Kubectl, namespace: str, unique: str, tmp_path: Path,
) -> None:
    require("prometheus")
    policy = f"alerts-{unique}"
    kubectl("apply", "-f", "-", input=policy_yaml(policy, [namespace], alerting={
        "for": FOR, "labels": {"e2e": unique}}))
    kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace))

    text = wait_until(lambda: written_rules(kubectl, policy), 60, "the operator to write the policy's rules")
    assert text is not None  # wait_until returns only a truthy value
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(text)
    assert yaml.safe_load(text)["groups"][0]["rules"][0]["for"] == FOR

    labels = {"policy": policy, "namespace": namespace, "kind": "Deployment", "workload": "web",
              "check": "readiness-probe-missing", "severity": "critical", "e2e": unique}
    target = f"127.0.0.1:{operator_runner.metrics_port}"
    with PrometheusServer(targets=[target], rule_files=[rules_file], workdir=tmp_path) as prometheus:
        prometheus.wait_for_alert(ALERT_NAME, state="pending", labels=labels, timeout=90)
        firing = prometheus.wait_for_alert(ALERT_NAME, state="firing", labels=labels, timeout=60)
        assert firing["annotations"]["runbook_url"].endswith("/readiness-probe-missing.md")

        kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace, probe=True))
        prometheus.wait_for_no_alert(ALERT_NAME, labels=labels, timeout=90)
        assert not prometheus.query(f'readiness_workload_violations{{policy="{policy}"}}')
