"""PolicyReports: pass/fail/skip/error results, summaries, one report per namespace, the size cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from readiness.checks import all_checks
from readiness.engine import Engine, Evaluation
from readiness.policy import ReadinessPolicy
from readiness.policyreport import (
    FINGERPRINT_ANNOTATION,
    OMITTED_ANNOTATION,
    TRUNCATED_ANNOTATION,
    policy_reports,
)
from readiness.workload import Workload, WorkloadRef, project

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
OWNER = {"uid": "policy-uid"}
PROBE = {"httpGet": {"path": "/ready", "port": 8080}}


KEPT = ("readiness-probe-missing", "termination-grace-period")


def policy(**spec: Any) -> ReadinessPolicy:
    """A policy running only the two checks these tests reason about (the catalog keeps growing)."""
    checks = {c.id: {"enabled": c.id in KEPT} for c in all_checks()}
    return ReadinessPolicy.model_validate({"metadata": {"name": "prod"}, "spec": {"checks": checks, **spec}})


def deployment(namespace: str, name: str, *, probed: bool = True, grace: int = 30) -> Workload:
    containers = [{"name": c, "image": "x:1", **({"readinessProbe": PROBE} if probed else {})}
                  for c in ("app", "proxy")]
    return project({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"template": {"spec": {"terminationGracePeriodSeconds": grace, "containers": containers}}},
    })


def audit(p: ReadinessPolicy, workloads: list[Workload]) -> list[Evaluation]:
    engine = Engine(p)
    return [engine.evaluate(w, now=NOW) for w in workloads]


def results_of(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["resources"][0]["name"], r["rule"], r["result"]) for r in report["results"]]


def test_pass_and_fail_per_workload_and_check() -> None:
    p = policy()
    workloads = [deployment("shop", "web", probed=False), deployment("shop", "api", grace=1)]
    identities = {w.ref: w for w in workloads}
    (report,) = policy_reports(p, audit(p, workloads), OWNER, workloads=identities, now=NOW)
    assert results_of(report) == [
        ("api", "readiness-probe-missing", "pass"), ("api", "termination-grace-period", "fail"),
        ("web", "readiness-probe-missing", "fail"), ("web", "termination-grace-period", "pass"),
    ]
    assert report["summary"] == {"pass": 2, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    web_probe = report["results"][2]
    assert web_probe["severity"] == "high" and web_probe["category"] == "probes"
    assert web_probe["properties"] == {"containers": "app,proxy"}
    assert web_probe["message"].endswith("(and 1 more)")
    assert web_probe["source"] == "readiness-operator" and web_probe["policy"] == "prod"
    assert web_probe["timestamp"] == {"seconds": int(NOW.timestamp()), "nanos": 0}
    assert web_probe["resources"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop",
                                       "name": "web", "uid": "uid-web"}]
    assert report["results"][1]["severity"] == "medium"


def test_report_metadata_owner_and_labels() -> None:
    p = policy()
    (report,) = policy_reports(p, audit(p, [deployment("shop", "web")]), OWNER, now=NOW)
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and report["kind"] == "PolicyReport"
    meta = report["metadata"]
    assert (meta["name"], meta["namespace"]) == ("readiness-prod", "shop")
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "readiness-operator"
    assert meta["ownerReferences"][0]["kind"] == "ReadinessPolicy"
    assert meta["ownerReferences"][0]["uid"] == "policy-uid"
    assert TRUNCATED_ANNOTATION not in meta["annotations"]
    assert report["results"][0]["resources"][0] == {  # no identity given: the kind's usual apiVersion
        "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}


def test_one_report_per_namespace() -> None:
    p = policy()
    workloads = [deployment("b", "one"), deployment("a", "two"), deployment("b", "three", probed=False)]
    reports = policy_reports(p, audit(p, workloads), OWNER, now=NOW)
    assert [r["metadata"]["namespace"] for r in reports] == ["a", "b"]
    assert reports[0]["summary"]["pass"] == 2
    assert reports[1]["summary"] == {"pass": 3, "fail": 1, "warn": 0, "error": 0, "skip": 0}


def test_exempted_findings_are_skipped_with_the_reason() -> None:
    p = policy(exemptions=[{"names": ["legacy"], "checks": ["readiness-probe-missing"],
                            "reason": "batch gateway, no HTTP", "expires": "2030-01-01T00:00:00Z"}])
    (report,) = policy_reports(p, audit(p, [deployment("shop", "legacy", probed=False)]), OWNER, now=NOW)
    skip = report["results"][0]
    assert (skip["rule"], skip["result"]) == ("readiness-probe-missing", "skip")
    assert skip["properties"] == {"exemptionReason": "batch gateway, no HTTP",
                                  "exemptionSource": "policy:exemptions[0]",
                                  "exemptionExpires": "2030-01-01T00:00:00+00:00"}
    assert report["summary"]["skip"] == 1 and report["summary"]["fail"] == 0


def test_crashed_checks_are_errors() -> None:
    evaluation = Evaluation("prod", WorkloadRef("Deployment", "shop", "web"),
                            checks_run=("readiness-probe-missing", "termination-grace-period"),
                            errors=["termination-grace-period: TypeError: boom"])
    (report,) = policy_reports(policy(), [evaluation], OWNER, now=NOW)
    assert results_of(report) == [("web", "readiness-probe-missing", "pass"),
                                  ("web", "termination-grace-period", "error")]
    assert report["results"][1]["message"] == "termination-grace-period: TypeError: boom"


def test_same_input_same_output_and_timeless_fingerprint() -> None:
    p = policy()
    workloads = [deployment("shop", f"w{i}", probed=i % 2 == 0) for i in range(20)]
    first = policy_reports(p, audit(p, workloads), OWNER, now=NOW)
    again = policy_reports(p, audit(p, list(reversed(workloads))), OWNER, now=NOW)
    later = policy_reports(p, audit(p, workloads), OWNER, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert first == again
    fingerprint = first[0]["metadata"]["annotations"][FINGERPRINT_ANNOTATION]
    assert later[0]["metadata"]["annotations"][FINGERPRINT_ANNOTATION] == fingerprint
    workloads[1] = deployment("shop", "w1", probed=True)
    changed = policy_reports(p, audit(p, workloads), OWNER, now=NOW)
    assert changed[0]["metadata"]["annotations"][FINGERPRINT_ANNOTATION] != fingerprint


def test_cap_keeps_failures_first_and_says_so() -> None:
    p = policy()
    workloads = [deployment("shop", f"w{i:03}", probed=i % 10 != 0) for i in range(100)]
    (report,) = policy_reports(p, audit(p, workloads), OWNER, now=NOW, max_results=15)
    annotations = report["metadata"]["annotations"]
    assert annotations[TRUNCATED_ANNOTATION] == "true"
    assert annotations[OMITTED_ANNOTATION] == str(200 - 15)
    assert len(report["results"]) == 15
    assert sum(r["result"] == "fail" for r in report["results"]) == 10  # every failure kept
    assert report["summary"] == {"pass": 190, "fail": 10, "warn": 0, "error": 0, "skip": 0}
    keys = [(r["resources"][0]["name"], r["rule"]) for r in report["results"]]
    assert keys == sorted(keys)


def test_byte_cap_bounds_large_namespaces() -> None:
    p = policy()
    workloads = [deployment("big", f"workload-with-a-long-name-{i:05}", probed=False) for i in range(3000)]
    (report,) = policy_reports(p, audit(p, workloads), OWNER, now=NOW, max_bytes=200_000)
    assert len(json.dumps(report)) < 220_000
    assert report["metadata"]["annotations"][TRUNCATED_ANNOTATION] == "true"
    assert report["summary"]["fail"] == 3000
