"""Alert rules generated from a policy: names, severities, `for`, labels, runbooks, minSeverity."""

from __future__ import annotations

import re
from typing import Any

import yaml

from readiness.alerts import (
    ALERT_NAME,
    OPERATOR_API_ERRORS_ALERT,
    OPERATOR_DOWN_ALERT,
    operator_prometheus_rule,
    operator_rules_document,
    prometheus_rule,
    rules_configmap,
    rules_document,
)
from readiness.engine import default_policy
from readiness.policy import ReadinessPolicy

OWNER = {"uid": "0b6e-uid"}


def policy(alerting: dict[str, Any] | None = None, name: str = "prod") -> ReadinessPolicy:
    return ReadinessPolicy.model_validate({"metadata": {"name": name}, "spec": {"alerting": alerting or {}}})


def rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_names_are_camel_case_with_the_shared_prefix() -> None:
    names = {r["alert"] for r in rules(rules_document(default_policy())) + rules(operator_rules_document())}
    assert names == {ALERT_NAME, OPERATOR_DOWN_ALERT, OPERATOR_API_ERRORS_ALERT}
    assert all(re.fullmatch(r"Readiness(?:[A-Z][a-z]+|API)+", name) for name in names)


def test_one_rule_per_severity_mapped_to_the_mixins_scale() -> None:
    found = rules(rules_document(policy({"minSeverity": "info"})))
    assert [(r["labels"]["readiness_severity"], r["labels"]["severity"]) for r in found] == [
        ("error", "critical"), ("warning", "warning"), ("info", "info")]
    assert all(r["alert"] == ALERT_NAME for r in found)


def test_min_severity_drops_the_lower_severities() -> None:
    assert [r["labels"]["severity"] for r in rules(rules_document(policy()))] == ["critical", "warning"]
    assert [r["labels"]["severity"] for r in rules(rules_document(policy({"minSeverity": "error"})))] == [
        "critical"]


def test_expression_groups_by_workload_and_check_for_this_policy() -> None:
    rule = rules(rules_document(policy()))[0]
    assert rule["expr"] == ('max by (policy, namespace, kind, workload, check) '
                            '(readiness_workload_violations{policy="prod", severity="error"}) > 0')


def test_for_labels_and_runbook_come_from_the_policy() -> None:
    spec = {"for": "2m", "labels": {"team": "payments"}, "runbookUrl": "https://runbooks.example/readiness"}
    document = rules_document(policy(spec), extra_labels={"cluster": "eu-1", "team": "platform"})
    for rule in rules(document):
        assert rule["for"] == "2m"
        assert rule["labels"]["cluster"] == "eu-1"
        assert rule["labels"]["team"] == "payments"  # the policy wins over the operator-wide labels
        runbook = rule["annotations"]["runbook_url"]
        assert runbook == "https://runbooks.example/readiness/{{ $labels.check }}.md"
        assert "{{ $labels.workload }}" in rule["annotations"]["summary"]
        assert "{{ $value }}" in rule["annotations"]["description"]


def test_a_policy_label_can_demote_the_severity() -> None:
    found = rules(rules_document(policy({"labels": {"severity": "warning"}, "minSeverity": "error"})))
    assert found[0]["labels"]["severity"] == "warning"
    assert found[0]["labels"]["readiness_severity"] == "error"


def test_disabled_alerting_gives_no_groups() -> None:
    assert rules_document(policy({"enabled": False})) == {"groups": []}


def test_policy_names_are_quoted_in_promql() -> None:
    # The model (and the API server) allow only DNS-subdomain names; the quoting is defence in depth.
    odd = policy()
    odd.metadata.name = 'odd"name'
    rule = rules(rules_document(odd))[0]
    assert 'policy="odd\\"name"' in rule["expr"]


def test_prometheus_rule_is_owned_by_the_policy_and_labelled_for_the_selector() -> None:
    obj = prometheus_rule(policy(), "readiness-system", {"release": "kube-prometheus-stack"}, OWNER)
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    meta = obj["metadata"]
    assert meta["name"] == "readiness-prod" and meta["namespace"] == "readiness-system"
    assert meta["labels"]["release"] == "kube-prometheus-stack"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "readiness-operator"
    assert meta["ownerReferences"] == [{
        "apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "name": "prod", "uid": "0b6e-uid",
        "controller": True, "blockOwnerDeletion": False}]
    assert obj["spec"] == rules_document(policy())


def test_configmap_holds_the_same_rules_as_yaml() -> None:
    obj = rules_configmap(policy(), "readiness-system", {}, OWNER)
    assert obj["kind"] == "ConfigMap"
    (key, text), = obj["data"].items()
    assert key == "readiness-prod.rules.yaml"
    assert yaml.safe_load(text) == rules_document(policy())
    assert "&id" not in text  # no YAML anchors


def test_operator_rules_are_a_separate_group() -> None:
    obj = operator_prometheus_rule("readiness-system", {"release": "kps"})
    assert [g["name"] for g in obj["spec"]["groups"]] == ["readiness-operator"]
    down = rules(obj["spec"])[0]
    assert down["expr"] == "absent(readiness_build_info)"
    assert "ownerReferences" not in obj["metadata"]
