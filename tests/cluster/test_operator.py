"""The operator against the real control plane: outputs, reactions, and the Kopf-at-scale properties."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from readiness.controller import output
from readiness.envtest import Kubectl, KubectlError, upstream_crds, wait_established

from .conftest import (
    OperatorHandle,
    annotations_of,
    api_writes,
    deployment_yaml,
    get_json,
    policy_yaml,
    uninstall_crd,
    wait_until,
    writes_between,
)

pytestmark = pytest.mark.cluster
CRD_FILE = Path(__file__).parents[2] / "crds" / "readinesspolicies.yaml"
Start = Callable[..., AbstractContextManager[OperatorHandle]]
QUIET_SECONDS = 20.0


def verdict(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    value: str | None = annotations_of(kubectl, namespace, name).get(output.VERDICT)
    return value


def label(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    meta = get_json(kubectl, "deployment", name, "-n", namespace)["metadata"]
    return (meta.get("labels") or {}).get(output.COMPLIANT_LABEL)


def events(kubectl: Kubectl, namespace: str, reason: str) -> list[dict[str, Any]]:
    items = get_json(kubectl, "events", "-n", namespace, "--field-selector", f"reason={reason}")["items"]
    return list(items)


def apply(kubectl: Kubectl, text: str) -> None:
    kubectl("apply", "-f", "-", input=text)


def assert_no_kopf_traces(kubectl: Kubectl, namespace: str) -> None:
    for item in get_json(kubectl, "deployments", "-n", namespace)["items"]:
        meta = item["metadata"]
        assert not [k for k in meta.get("annotations") or {} if k.startswith("kopf.zalando.org/")], meta
        assert not meta.get("finalizers"), meta


def test_startup_audits_existing_workloads(kubectl: Kubectl, namespace: str, start: Start,
                                           unique: str) -> None:
    apply(kubectl, deployment_yaml("bad", namespace))
    apply(kubectl, deployment_yaml("good", namespace, probe=True))
    apply(kubectl, policy_yaml(f"startup-{unique}", [namespace]))
    with start():
        wait_until(lambda: verdict(kubectl, namespace, "bad") == "violating", 20, "the audit")
        wait_until(lambda: verdict(kubectl, namespace, "good") == "compliant", 20, "the compliant verdict")
        bad = annotations_of(kubectl, namespace, "bad")
        violations = json.loads(bad[output.VIOLATIONS])
        assert violations == [{"policy": f"startup-{unique}", "check": "readiness-probe-missing",
                               "container": "app", "severity": "error",
                               "message": violations[0]["message"]}]
        assert bad[output.POLICIES] == f"startup-{unique}"
        assert label(kubectl, namespace, "bad") == "false" and label(kubectl, namespace, "good") == "true"
        offenders = "readiness.dev/compliant=false"
        listed = kubectl("get", "deploy", "-n", namespace, "-l", offenders, "-o", "name")
        assert listed.stdout.split() == ["deployment.apps/bad"]
        assert_no_kopf_traces(kubectl, namespace)


@pytest.fixture
def start(start_operator: Start) -> Start:
    return start_operator


def test_spec_change_is_reaudited_within_a_second(kubectl: Kubectl, namespace: str,
                                                  operator_runner: OperatorHandle, unique: str) -> None:
    apply(kubectl, policy_yaml(f"latency-{unique}", [namespace]))
    apply(kubectl, deployment_yaml("web", namespace))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 20, "the first verdict")
    wait_until(lambda: len(events(kubectl, namespace, "ReadinessViolation")) == 1, 10, "a violation Event")
    started = time.monotonic()
    apply(kubectl, deployment_yaml("web", namespace, probe=True))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "compliant", 5, "the fixed verdict", 0.02)
    assert time.monotonic() - started < 1.0 + 0.5  # kubectl apply itself takes a few hundred ms
    wait_until(lambda: events(kubectl, namespace, "ReadinessRestored"), 10, "a restored Event")
    assert label(kubectl, namespace, "web") == "true"
    assert_no_kopf_traces(kubectl, namespace)
    message = events(kubectl, namespace, "ReadinessViolation")[0]["message"]
    assert f"latency-{unique}/readiness-probe-missing (app)" in message


def test_no_reaction_to_own_patches_and_zero_writes_in_steady_state(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    apply(kubectl, policy_yaml(f"quiet-{unique}", [namespace]))
    for index in range(5):
        apply(kubectl, deployment_yaml(f"w{index}", namespace, probe=index % 2 == 0))
    def all_judged() -> bool:
        return all(verdict(kubectl, namespace, f"w{i}") for i in range(5))

    wait_until(all_judged, 20, "verdicts")
    time.sleep(3)  # let the echo of our own patches and the status flush arrive
    evaluations = operator_runner.evaluations
    before = api_writes(kubectl)
    time.sleep(QUIET_SECONDS)
    after = api_writes(kubectl)
    assert operator_runner.evaluations == evaluations, "our own patches were re-evaluated"
    assert writes_between(before, after) == {}, "writes in steady state"
    assert_no_kopf_traces(kubectl, namespace)


def test_policy_change_and_deletion_rewrite_then_remove_everything(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    name = f"lifecycle-{unique}"
    apply(kubectl, deployment_yaml("web", namespace))
    apply(kubectl, policy_yaml(name, [namespace]))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 20, "the first verdict")
    wait_until(lambda: operator_runner.metric("readiness_workload_violations", policy=name), 10, "a series")
    apply(kubectl, policy_yaml(name, [namespace], checks=("termination-grace-period",)))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "compliant", 10, "the new spec")
    apply(kubectl, policy_yaml(name, [namespace]))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 10, "the verdict again")
    kubectl("delete", "readinesspolicy", name, "--timeout=30s")
    wait_until(lambda: not set(annotations_of(kubectl, namespace, "web")) & set(output.OUR_ANNOTATIONS), 10,
               "our annotations to go")
    assert label(kubectl, namespace, "web") is None
    assert operator_runner.metric("readiness_workload_violations", policy=name) == 0
    assert f'policy="{name}"' not in operator_runner.scrape()
    kinds = "configmaps,prometheusrules" if _has_prometheus_rules(kubectl) else "configmaps"
    leftovers = kubectl("get", kinds, "-n", "readiness-system", "-o", "name").stdout
    assert f"readiness-{name}" not in leftovers


def _has_prometheus_rules(kubectl: Kubectl) -> bool:
    return bool(kubectl("get", "crd", "prometheusrules.monitoring.coreos.com", "--ignore-not-found",
                        "-o", "name").stdout.strip())


def test_namespace_label_change_recomputes_matches(kubectl: Kubectl, namespace: str,
                                                   operator_runner: OperatorHandle, unique: str) -> None:
    kubectl("label", "namespace", namespace, "env=dev")
    selector = {"matchLabels": {"env": "prod"}}
    apply(kubectl, policy_yaml(f"prod-{unique}", [namespace],
                               match={"namespaces": [namespace], "namespaceSelector": selector}))
    apply(kubectl, deployment_yaml("web", namespace))
    time.sleep(3)
    assert verdict(kubectl, namespace, "web") is None
    kubectl("label", "namespace", namespace, "env=prod", "--overwrite")
    wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 10, "the namespace to match")
    kubectl("label", "namespace", namespace, "env=dev", "--overwrite")
    wait_until(lambda: verdict(kubectl, namespace, "web") is None, 10, "the namespace to stop matching")


def test_expired_exemption_is_caught_by_the_periodic_audit(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    expires = (datetime.now(UTC) + timedelta(seconds=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    apply(kubectl, deployment_yaml("web", namespace))
    apply(kubectl, policy_yaml(f"expiry-{unique}", [namespace], auditInterval="2s", exemptions=[
        {"namespaces": [namespace], "checks": ["readiness-probe-missing"], "reason": "migrating",
         "expires": expires}]))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "compliant", 20, "the exempted verdict")
    status = wait_until(lambda: get_json(kubectl, "readinesspolicy", f"expiry-{unique}").get("status"), 10,
                        "a status")
    wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 20,
               "the periodic audit to notice the expiry")
    status = wait_until(lambda: (s := get_json(kubectl, "readinesspolicy", f"expiry-{unique}")["status"])
                        ["exemptions"]["expired"] == 1 and s, 10, "the expired exemption in the status")
    assert status["summary"]["violating"] == 1


def test_events_are_not_repeated_across_restarts(kubectl: Kubectl, namespace: str, start: Start,
                                                 unique: str) -> None:
    apply(kubectl, policy_yaml(f"events-{unique}", [namespace]))
    apply(kubectl, deployment_yaml("web", namespace))
    with start():
        wait_until(lambda: events(kubectl, namespace, "ReadinessViolation"), 20, "a violation Event")
        time.sleep(2)
    before = api_writes(kubectl)
    with start() as second:
        wait_until(lambda: second.evaluations >= 1, 20, "the restarted operator's audit")
        time.sleep(3)
        assert len(events(kubectl, namespace, "ReadinessViolation")) == 1
        changed = writes_between(before, api_writes(kubectl))
        assert not {k for k in changed if k.startswith(("PATCH deployments", "POST events"))}, changed


def test_a_transient_violation_within_the_settle_window_posts_no_event(
        kubectl: Kubectl, namespace: str, start: Start, unique: str) -> None:
    """`kubectl apply` of a Deployment and its PodDisruptionBudget: the workload lands first, and for a
    moment it has no PDB. That moment is written to the annotations (they are live), but announced by no
    Event: new findings must last `event_settle_seconds` first."""
    apply(kubectl, policy_yaml(f"settle-{unique}", [namespace], checks=("pod-disruption-budget-missing",)))
    with start(event_settle_seconds=3.0):
        apply(kubectl, deployment_yaml("web", namespace))
        wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 20, "the transient verdict")
        apply(kubectl, PDB.format(namespace=namespace))
        wait_until(lambda: verdict(kubectl, namespace, "web") == "compliant", 20, "the PDB's effect")
        time.sleep(4)  # past the settle window
        assert events(kubectl, namespace, "ReadinessViolation") == []
        assert events(kubectl, namespace, "ReadinessRestored") == []
        # A violation that lasts is still announced, once, after the window.
        kubectl("delete", "pdb", "web", "-n", namespace)
        wait_until(lambda: events(kubectl, namespace, "ReadinessViolation"), 20, "the lasting violation")


PDB = """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {namespace}}}
spec:
  maxUnavailable: 1
  selector: {{matchLabels: {{app: web}}}}
"""


def test_status_summary_and_printer_columns(kubectl: Kubectl, namespace: str,
                                            operator_runner: OperatorHandle, unique: str) -> None:
    name = f"status-{unique}"
    apply(kubectl, policy_yaml(name, [namespace]))
    apply(kubectl, deployment_yaml("bad", namespace))
    apply(kubectl, deployment_yaml("good", namespace, probe=True))
    status = wait_until(lambda: (s := get_json(kubectl, "readinesspolicy", name).get("status", {}))
                        .get("summary", {}).get("matched") == 2 and s, 20, "the summary")
    assert status["summary"]["violating"] == 1 and status["summary"]["compliant"] == 1
    assert [c["check"] for c in status["summary"]["checks"]] == ["readiness-probe-missing"]
    assert status["topOffenders"][0]["name"] == "bad"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True", "Valid": "True"}
    assert status["observedGeneration"] == 1 and status["lastAuditTime"]
    assert status["rules"]["kind"] in ("ConfigMap", "PrometheusRule")
    table = kubectl("get", "readinesspolicy", name).stdout
    header, row = table.splitlines()[:2]
    assert {"MODE", "MATCHED", "VIOLATING", "AGE"} <= set(header.split())
    assert row.split()[0] == name and "2" in row.split() and "1" in row.split()
    assert operator_runner.metric("readiness_policy_workloads", policy=name, state="violating") == 1


def test_rules_go_to_a_configmap_without_the_crd_and_to_a_prometheusrule_with_it(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    name = f"rules-{unique}"
    uninstall_crd(kubectl, upstream_crds.PROMETHEUS_RULE.name)
    try:
        apply(kubectl, policy_yaml(name, [namespace]))
        rules = wait_until(lambda: get_json(kubectl, "readinesspolicy", name).get("status", {}).get("rules"),
                           20, "status.rules")
        assert rules == {"kind": "ConfigMap", "namespace": "readiness-system", "name": f"readiness-{name}"}
        configmap = get_json(kubectl, "configmap", f"readiness-{name}", "-n", "readiness-system")
        assert configmap["metadata"]["ownerReferences"][0]["name"] == name
        assert "alert:" in next(iter(configmap["data"].values()))
        upstream_crds.install(kubectl, upstream_crds.PROMETHEUS_RULE)
        time.sleep(11)  # the operator trusts a CRD lookup for 10 s
        apply(kubectl, policy_yaml(name, [namespace], alerting={"for": "5m"}))
        wait_until(lambda: get_json(kubectl, "readinesspolicy", name)["status"]["rules"]["kind"]
                   == "PrometheusRule", 20, "the PrometheusRule")
        rule = get_json(kubectl, "prometheusrule", f"readiness-{name}", "-n", "readiness-system")
        assert rule["metadata"]["ownerReferences"][0]["uid"]
        assert rule["spec"]["groups"][0]["rules"][0]["for"] == "5m"
        wait_until(lambda: not kubectl("get", "configmap", f"readiness-{name}", "-n", "readiness-system",
                                       "--ignore-not-found", "-o", "name").stdout.strip(), 10,
                   "the ConfigMap fallback to go")
        kubectl("delete", "readinesspolicy", name, "--timeout=30s")
        wait_until(lambda: not kubectl("get", "prometheusrule", f"readiness-{name}", "-n", "readiness-system",
                                       "--ignore-not-found", "-o", "name").stdout.strip(), 20,
                   "the PrometheusRule to go with its policy")
    finally:
        uninstall_crd(kubectl, upstream_crds.PROMETHEUS_RULE.name)


def test_policy_reports_when_the_crd_is_installed(kubectl: Kubectl, namespace: str,
                                                  operator_runner: OperatorHandle, unique: str) -> None:
    upstream_crds.install(kubectl, *upstream_crds.POLICY_REPORTS)
    time.sleep(11)  # the operator trusts a CRD lookup for 10 s
    name = f"reports-{unique}"
    apply(kubectl, deployment_yaml("bad", namespace))
    apply(kubectl, deployment_yaml("good", namespace, probe=True))
    apply(kubectl, policy_yaml(name, [namespace]))
    uid = get_json(kubectl, "deployment", "bad", "-n", namespace)["metadata"]["uid"]
    report = wait_until(lambda: get_json(kubectl, "policyreport", f"readiness-{uid}", "-n", namespace), 20,
                        "the PolicyReport")
    assert report["summary"]["fail"] == 1 and report["scope"]["name"] == "bad"
    assert report["metadata"]["ownerReferences"][0]["uid"] == uid
    good = get_json(kubectl, "deployment", "good", "-n", namespace)["metadata"]["uid"]
    assert get_json(kubectl, "policyreport", f"readiness-{good}", "-n", namespace)["summary"]["pass"] == 1
    version = report["metadata"]["resourceVersion"]
    time.sleep(3)
    assert get_json(kubectl, "policyreport", f"readiness-{uid}", "-n", namespace)["metadata"][
        "resourceVersion"] == version, "an unchanged report was rewritten"


PERMISSIVE_SCHEMA = json.dumps([{"op": "replace", "path": "/spec/versions/0/schema/openAPIV3Schema",
                                 "value": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}])
INVALID_SPECS: list[dict[str, Any]] = [
    {"exemptions": [{"checks": ["no-such-check"], "reason": "x"}]},
    {"checks": {"readiness-probe-missing": {"severity": "catastrophic"}}},
    {"auditInterval": "often"},
]


def test_invalid_policy_is_reported_and_others_keep_working(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    bad = f"invalid-{unique}"
    body = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": bad, "labels": {"readiness.dev/test": "true"}},
            "spec": {"match": {"namespaces": [namespace]}, **INVALID_SPECS[0]}}
    with pytest.raises(KubectlError):  # the CRD's schema catches it...
        kubectl("apply", "-f", "-", input=json.dumps(body))
    # ...but a policy stored under an older, looser CRD (an upgrade skew) still reaches the operator.
    kubectl("patch", "crd", "readinesspolicies.readiness.dev", "--type=json", "-p", PERMISSIVE_SCHEMA)
    try:
        wait_until(lambda: kubectl("apply", "-f", "-", input=json.dumps(body)), 20, "the loose schema")
    finally:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    apply(kubectl, policy_yaml(f"valid-{unique}", [namespace]))
    apply(kubectl, deployment_yaml("web", namespace))
    wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 20, "the valid policy's verdict")
    def valid_condition() -> dict[str, Any] | None:
        conditions = get_json(kubectl, "readinesspolicy", bad).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Valid"), None)

    condition = wait_until(valid_condition, 20, "the Valid condition")
    assert condition is not None
    assert condition["status"] == "False" and condition["reason"] == "InvalidSpec"
    assert "\n" not in condition["message"] and condition["message"]
    assert annotations_of(kubectl, namespace, "web")[output.POLICIES] == f"valid-{unique}"


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.readiness.dev}
spec:
  group: test.readiness.dev
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def widget(name: str, namespace: str, template: Any) -> str:
    return json.dumps({"apiVersion": "test.readiness.dev/v1", "kind": "Widget",
                       "metadata": {"name": name, "namespace": namespace}, "spec": {"template": template}})


def test_malformed_workload_never_stops_the_others(kubectl: Kubectl, namespace: str, start: Start,
                                                   unique: str) -> None:
    """A custom kind can hold anything: a malformed one is skipped (logged once), the rest audited."""
    kubectl("apply", "-f", "-", input=WIDGET_CRD)
    wait_established(kubectl, "widgets.test.readiness.dev")
    try:
        good_template = {"spec": {"containers": [{"name": "app", "image": "x:1"}]}}
        kubectl("apply", "-f", "-", input=widget("broken", namespace, "not a pod template"))
        kubectl("apply", "-f", "-", input=widget("fine", namespace, good_template))
        apply(kubectl, deployment_yaml("web", namespace))
        apply(kubectl, policy_yaml(f"widgets-{unique}", [namespace],
                                   match={"namespaces": [namespace], "kinds": ["Deployment", "Widget"]}))
        with start(custom_kinds=("test.readiness.dev/Widget=spec.template,plural=widgets",)) as op:
            wait_until(lambda: verdict(kubectl, namespace, "web") == "violating", 20, "the Deployment")
            wait_until(lambda: annotations_of(kubectl, namespace, "fine", "widget").get(output.VERDICT)
                       == "violating", 20, "the good Widget")
            assert output.VERDICT not in annotations_of(kubectl, namespace, "broken", "widget")
            assert len(op.runtime.state.malformed) == 1  # logged once, however many events it gets
    finally:
        kubectl("delete", "crd", "widgets.test.readiness.dev", "--ignore-not-found", "--wait=false")
