"""Issue 13 item 11: status that reads well (describe, get, -o wide) and per-workload PolicyReports."""

from __future__ import annotations

import time
from typing import Any

import pytest

from readiness.envtest import Kubectl, upstream_crds

from .conftest import OperatorHandle, deployment_yaml, get_json, policy_yaml, wait_until

pytestmark = pytest.mark.cluster

WARNINGS = ("capabilities-not-dropped", "cpu-request-missing", "liveness-probe-missing",
            "memory-limit-missing", "memory-request-missing")
"""Warning checks whose ids sort before the error below: alphabetical order would hide it."""
CHECKS = (*WARNINGS, "readiness-probe-missing")


def apply(kubectl: Kubectl, text: str) -> None:
    kubectl("apply", "-f", "-", input=text)


def _ready(status: dict[str, Any]) -> bool:
    """Ready turns True after the first full audit, a moment after the first summary under load."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def test_status_orders_by_severity_and_reads_well_in_describe_get_and_wide(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    name = f"reads-{unique}"
    apply(kubectl, deployment_yaml("bad", namespace))
    apply(kubectl, policy_yaml(name, [namespace], checks=CHECKS))
    status = wait_until(lambda: (s := get_json(kubectl, "readinesspolicy", name).get("status", {}))
                        .get("summary", {}).get("violating") == 1 and _ready(s) and s, 30,
                        "the summary of a full audit")
    offender = status["topOffenders"][0]
    assert offender["checks"][0] == "readiness-probe-missing", offender  # the error first
    assert offender["checks"][1:] == list(WARNINGS[:4])
    checks = status["summary"]["checks"]
    assert checks[0] == {"check": "readiness-probe-missing", "severity": "error", "violating": 1,
                         "findings": 1}
    assert [c["severity"] for c in checks[1:]] == ["warning"] * len(WARNINGS)
    assert "byCheck" not in status["summary"]

    described = kubectl("describe", "readinesspolicy", name).stdout
    shown = described[described.index("\nStatus:"):]  # spec.checks is keyed by id: describe title-cases it
    assert "Check:      readiness-probe-missing" in shown and "Readiness - Probe" not in shown, shown

    header, row = kubectl("get", "readinesspolicies", name).stdout.splitlines()[:2]
    assert header.split()[:2] == ["NAME", "READY"] and row.split()[:3] == [name, "True", "audit"]
    wide_header, wide_row = kubectl("get", "readinesspolicies", name, "-o", "wide").stdout.splitlines()[:2]
    for column in ("ERRORS", "WARNINGS", "EXEMPTED", "LAST AUDIT", "MESSAGE"):
        assert column in wide_header, wide_header
    assert "1 workloads audited" in wide_row, wide_row


def test_one_policy_report_per_workload_with_scope_owned_by_it(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    upstream_crds.install(kubectl, *upstream_crds.POLICY_REPORTS)
    # A per-namespace report of an older operator version: removed when the operator lists its reports.
    apply(kubectl, f"""
apiVersion: wgpolicyk8s.io/v1alpha2
kind: PolicyReport
metadata:
  name: readiness-old-{unique}
  namespace: {namespace}
  labels: {{app.kubernetes.io/managed-by: readiness-operator, readiness.dev/policy: old-{unique}}}
results: []
""")
    time.sleep(11)  # the operator trusts a CRD lookup for 10 s
    first, second = f"first-{unique}", f"second-{unique}"
    apply(kubectl, deployment_yaml("bad", namespace))
    apply(kubectl, policy_yaml(first, [namespace]))
    apply(kubectl, policy_yaml(second, [namespace], checks=("liveness-probe-missing",)))
    uid = get_json(kubectl, "deployment", "bad", "-n", namespace)["metadata"]["uid"]

    def report() -> dict[str, object]:
        return get_json(kubectl, "policyreport", f"readiness-{uid}", "-n", namespace)

    found = wait_until(lambda: len((r := report()).get("results", [])) == 2 and r, 20, "both policies")
    assert found["scope"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": namespace,
                              "name": "bad", "uid": uid}
    assert found["metadata"]["ownerReferences"][0]["uid"] == uid
    table = kubectl("get", "policyreports", "-n", namespace, "-o", "wide").stdout
    assert any(line.split()[1:3] == ["Deployment", "bad"] for line in table.splitlines()), table
    wait_until(lambda: not kubectl("get", "policyreport", f"readiness-old-{unique}", "-n", namespace,
                                   "--ignore-not-found", "-o", "name").stdout.strip(), 10,
               "the old per-namespace report to go")

    kubectl("delete", "readinesspolicy", second, "--timeout=30s")
    wait_until(lambda: [r["policy"] for r in report()["results"]] == [first], 20, "the policy's results gone")
    kubectl("delete", "deployment", "bad", "-n", namespace)
    wait_until(lambda: not kubectl("get", "policyreport", f"readiness-{uid}", "-n", namespace,
                                   "--ignore-not-found", "-o", "name").stdout.strip(), 30,
               "the report collected with its workload")
