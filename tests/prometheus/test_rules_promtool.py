"""`promtool check rules` accepts every rules file we generate: the default policy's, each example
policy's (examples/policies/*.yaml), a policy with every alerting option set, and the operator's own."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.alerts import (
    OPERATOR_API_ERRORS_ALERT,
    OPERATOR_DOWN_ALERT,
    operator_rules_document,
    rules_configmap,
    rules_document,
    rules_yaml,
)
from readiness.engine import default_policy
from readiness.policy import ReadinessPolicy
from support.prometheus import check_rules, require

pytestmark = pytest.mark.prometheus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def example_policies() -> list[ReadinessPolicy]:
    """Every ReadinessPolicy document in examples/policies (files may hold several documents)."""
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ReadinessPolicy":
                found.append(ReadinessPolicy.model_validate(document))
    return found


def documents() -> dict[str, dict[str, Any]]:
    full = ReadinessPolicy.model_validate({"metadata": {"name": "full"}, "spec": {"alerting": {
        "for": "1h30m", "labels": {"team": "payments", "severity": "warning"}, "minSeverity": "info",
        "runbookUrl": "https://wiki.example/runbooks?page="}}})
    generated = {"default": rules_document(default_policy()), "full": rules_document(full),
                 "operator": operator_rules_document(extra_labels={"cluster": "eu-1"})}
    for policy in example_policies():
        generated[f"example-{policy.name}"] = rules_document(policy, extra_labels={"cluster": "eu-1"})
    return generated


@pytest.mark.parametrize("name", sorted(documents()))
def test_promtool_accepts_the_rules(name: str, tmp_path: Path) -> None:
    require("promtool")
    path = tmp_path / f"{name}.rules.yaml"
    path.write_text(rules_yaml(documents()[name]))
    result = check_rules(path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{path.read_text()}"
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_configmap_payload(tmp_path: Path) -> None:
    require("promtool")
    configmap = rules_configmap(default_policy(), "readiness-system", {}, {"uid": "u"})
    (key, text), = configmap["data"].items()
    path = tmp_path / key
    path.write_text(text)
    result = check_rules(path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_promtool_unit_tests_the_alert_semantics(tmp_path: Path) -> None:
    """`promtool test rules` on synthetic series: the violation alert waits for `for`, carries the workload
    and check, ignores severities below minSeverity; the operator alerts fire on absence and on errors."""
    require("promtool")
    policy = ReadinessPolicy.model_validate({"metadata": {"name": "prod"}, "spec": {"alerting": {
        "for": "5m", "labels": {"team": "shop"}}}})
    (tmp_path / "policy.rules.yaml").write_text(rules_yaml(rules_document(policy)))
    (tmp_path / "operator.rules.yaml").write_text(rules_yaml(operator_rules_document()))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(_promtool_tests(), sort_keys=False))
    result = subprocess.run([require("promtool"), "test", "rules", "tests.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


VIOLATION_ANNOTATIONS = {
    "summary": "Deployment shop/web fails the readiness check readiness-probe-missing.",
    "description": "Deployment shop/web has failed the error readiness check readiness-probe-missing of "
                   "ReadinessPolicy prod for more than 5m (2 finding(s), one per failing container). "
                   "Run `kubectl readiness explain readiness-probe-missing` for the fix.",
    "runbook_url": "https://github.com/readiness-operator/readiness-operator/blob/main/docs/checks/"
                   "readiness-probe-missing.md",
}


def operator_annotations(alert: str, rendered: dict[str, str]) -> dict[str, str]:
    """The operator rule's annotations with its template expressions replaced by their expected values."""
    rule = next(r for g in operator_rules_document()["groups"] for r in g["rules"] if r["alert"] == alert)
    annotations = dict(rule["annotations"])
    for template, value in rendered.items():
        annotations = {k: v.replace(template, value) for k, v in annotations.items()}
    return annotations


def _promtool_tests() -> dict[str, Any]:
    web = 'policy="prod", namespace="shop", kind="Deployment", workload="web"'
    alert_labels = {"policy": "prod", "namespace": "shop", "kind": "Deployment", "workload": "web",
                    "check": "readiness-probe-missing", "severity": "critical", "readiness_severity": "error",
                    "team": "shop"}
    return {
        "rule_files": ["policy.rules.yaml", "operator.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'readiness_workload_violations{{{web}, check="readiness-probe-missing", '
                               'severity="error"}', "values": "2x9 _x10"},
                    {"series": f'readiness_workload_violations{{{web}, check="startup-probe-missing", '
                               'severity="info"}', "values": "1x20"},
                    {"series": 'readiness_build_info{version="0.1.0"}', "values": "1x5 _x30"},
                    {"series": 'readiness_api_errors_total{job="readiness-operator", operation="patch", '
                               'code="429"}', "values": "0+30x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "ReadinessPolicyViolation", "exp_alerts": []},
                    {"eval_time": "7m", "alertname": "ReadinessPolicyViolation", "exp_alerts": [{
                        "exp_labels": alert_labels,
                        "exp_annotations": VIOLATION_ANNOTATIONS}]},
                    {"eval_time": "15m", "alertname": "ReadinessPolicyViolation", "exp_alerts": []},
                    {"eval_time": "10m", "alertname": "ReadinessOperatorDown", "exp_alerts": []},
                    {"eval_time": "25m", "alertname": "ReadinessOperatorDown", "exp_alerts": [{
                        "exp_labels": {"severity": "warning"},
                        "exp_annotations": operator_annotations(OPERATOR_DOWN_ALERT, {})}]},
                    {"eval_time": "30m", "alertname": "ReadinessOperatorAPIErrors", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "job": "readiness-operator",
                                       "operation": "patch", "code": "429"},
                        "exp_annotations": operator_annotations(OPERATOR_API_ERRORS_ALERT, {
                            "{{ $labels.operation }}": "patch", "{{ $labels.code }}": "429",
                            "{{ $value | humanize }}": "500m"})}]},
                ],
            },
        ],
    }


def test_promtool_unit_tests_the_operator_alerts_edges(tmp_path: Path) -> None:
    """The operator's alerts as the chart ships them with overrides (short `for`, routing labels that win
    over `severity`): Down fires only after `for`, resolves once scraped again; API errors below 0.05/s
    never fire, above it fire per (job, operation, code)."""
    require("promtool")
    document = operator_rules_document(extra_labels={"severity": "critical", "team": "platform"},
                                       down_for="2m", errors_for="2m")
    (tmp_path / "operator.rules.yaml").write_text(rules_yaml(document))
    routed = {"severity": "critical", "team": "platform"}
    tests = {"rule_files": ["operator.rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            # stale: the scrape failed (Prometheus writes a staleness marker); scraped again from 11m.
            {"series": 'readiness_build_info{version="0.1.0"}', "values": "1x5 stale _x4 1x10"},
            # 1 error a minute (0.017/s): below the threshold; 6 a minute (0.1/s): above it.
            {"series": 'readiness_api_errors_total{job="op", operation="post_event", code="403"}',
             "values": "0+1x30"},
            {"series": 'readiness_api_errors_total{job="op", operation="patch_workload", code="429"}',
             "values": "0+6x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "7m", "alertname": OPERATOR_DOWN_ALERT, "exp_alerts": []},  # pending for 1m
            {"eval_time": "9m", "alertname": OPERATOR_DOWN_ALERT, "exp_alerts": [{
                "exp_labels": routed, "exp_annotations": operator_annotations(OPERATOR_DOWN_ALERT, {})}]},
            {"eval_time": "12m", "alertname": OPERATOR_DOWN_ALERT, "exp_alerts": []},  # scraped again
            {"eval_time": "20m", "alertname": OPERATOR_API_ERRORS_ALERT, "exp_alerts": [{
                "exp_labels": {**routed, "job": "op", "operation": "patch_workload", "code": "429"},
                "exp_annotations": operator_annotations(OPERATOR_API_ERRORS_ALERT, {
                    "{{ $labels.operation }}": "patch_workload", "{{ $labels.code }}": "429",
                    "{{ $value | humanize }}": "100m"})}]},
        ],
    }]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([require("promtool"), "test", "rules", "tests.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
