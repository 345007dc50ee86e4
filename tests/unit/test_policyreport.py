"""PolicyReports: pass/fail/skip/error results, summaries, one report per workload, the size cap."""

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
    workload_report,
)
from readiness.workload import Workload, WorkloadRef, project

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
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


def report(p: ReadinessPolicy, workload: Workload, **kwargs: Any) -> dict[str, Any]:
    (evaluation,) = audit(p, [workload])
    made = workload_report(workload.ref, workload, [(p, evaluation)], now=NOW, **kwargs)
    assert made is not None
    return made


def results_of(made: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["policy"], r["rule"], r["result"]) for r in made["results"]]


def test_pass_and_fail_per_check() -> None:
    p = policy()
    made = report(p, deployment("shop", "web", probed=False))
    assert results_of(made) == [("prod", "readiness-probe-missing", "fail"),
                                ("prod", "termination-grace-period", "pass")]
    assert made["summary"] == {"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0}
    probe = made["results"][0]
    assert probe["severity"] == "high" and probe["category"] == "probes"
    assert probe["properties"] == {"containers": "app,proxy"}
    assert probe["message"].endswith("(and 1 more)")
    assert probe["source"] == "readiness-operator"
    assert probe["timestamp"] == {"seconds": int(NOW.timestamp()), "nanos": 0}
    assert "resources" not in probe  # the report's scope names the workload, as in Kyverno's
    assert report(p, deployment("shop", "api", grace=1))["results"][1]["severity"] == "medium"


def test_one_report_per_workload_scoped_and_owned_by_it() -> None:
    made = report(policy(), deployment("shop", "web"))
    assert made["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and made["kind"] == "PolicyReport"
    meta = made["metadata"]
    assert (meta["name"], meta["namespace"]) == ("readiness-uid-web", "shop")
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "readiness-operator"}
    assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                        "uid": "uid-web"}]
    assert made["scope"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop",
                             "name": "web", "uid": "uid-web"}
    assert TRUNCATED_ANNOTATION not in meta["annotations"]


def test_every_policy_in_one_report() -> None:
    web = deployment("shop", "web", probed=False)
    strict = ReadinessPolicy.model_validate({**policy().model_dump(by_alias=True, exclude_none=True),
                                             "metadata": {"name": "strict"}})
    judged = [(p, audit(p, [web])[0]) for p in (strict, policy())]
    made = workload_report(web.ref, web, judged, now=NOW)
    assert made is not None
    assert [r["policy"] for r in made["results"]] == ["prod", "prod", "strict", "strict"]
    assert made["summary"]["fail"] == 2


def test_no_report_without_a_uid_a_namespace_or_a_policy() -> None:
    p = policy()
    web = deployment("shop", "web")
    (evaluation,) = audit(p, [web])
    assert workload_report(web.ref, web, []) is None
    assert workload_report(web.ref, None, [(p, evaluation)]) is None
    cluster_scoped = WorkloadRef("Deployment", "", "web")
    assert workload_report(cluster_scoped, web, [(p, evaluation)]) is None


def test_exempted_findings_are_skipped_with_the_reason() -> None:
    p = policy(exemptions=[{"names": ["legacy"], "checks": ["readiness-probe-missing"],
                            "reason": "batch gateway, no HTTP", "expires": "2030-01-01T00:00:00Z"}])
    made = report(p, deployment("shop", "legacy", probed=False))
    skip = made["results"][0]
    assert (skip["rule"], skip["result"]) == ("readiness-probe-missing", "skip")
    assert skip["properties"] == {"exemptionReason": "batch gateway, no HTTP",
                                  "exemptionSource": "policy:exemptions[0]",
                                  "exemptionExpires": "2030-01-01T00:00:00+00:00"}
    assert made["summary"]["skip"] == 1 and made["summary"]["fail"] == 0


def test_crashed_checks_are_errors() -> None:
    web = deployment("shop", "web")
    evaluation = Evaluation("prod", web.ref,
                            checks_run=("readiness-probe-missing", "termination-grace-period"),
                            errors=["termination-grace-period: TypeError: boom"])
    made = workload_report(web.ref, web, [(policy(), evaluation)], now=NOW)
    assert made is not None
    assert results_of(made) == [("prod", "readiness-probe-missing", "pass"),
                                ("prod", "termination-grace-period", "error")]
    assert made["results"][1]["message"] == "termination-grace-period: TypeError: boom"


def test_same_input_same_output_and_timeless_fingerprint() -> None:
    p = policy()
    web = deployment("shop", "web", probed=False)
    first, again = report(p, web), report(p, web)
    (evaluation,) = audit(p, [web])
    later = workload_report(web.ref, web, [(p, evaluation)], now=datetime(2026, 1, 1, tzinfo=UTC))
    assert first == again and later is not None
    fingerprint = first["metadata"]["annotations"][FINGERPRINT_ANNOTATION]
    assert later["metadata"]["annotations"][FINGERPRINT_ANNOTATION] == fingerprint
    changed = report(p, deployment("shop", "web", probed=True))
    assert changed["metadata"]["annotations"][FINGERPRINT_ANNOTATION] != fingerprint


def test_cap_keeps_failures_first_and_says_so() -> None:
    web = deployment("shop", "web", probed=False)
    policies = [ReadinessPolicy.model_validate({**policy().model_dump(by_alias=True, exclude_none=True),
                                                "metadata": {"name": f"p{i:02}"}}) for i in range(10)]
    judged = [(p, audit(p, [web])[0]) for p in policies]
    made = workload_report(web.ref, web, judged, now=NOW, max_results=12)
    assert made is not None
    annotations = made["metadata"]["annotations"]
    assert annotations[TRUNCATED_ANNOTATION] == "true"
    assert annotations[OMITTED_ANNOTATION] == str(20 - 12)
    assert len(made["results"]) == 12
    assert sum(r["result"] == "fail" for r in made["results"]) == 10  # every failure kept
    assert made["summary"] == {"pass": 10, "fail": 10, "warn": 0, "error": 0, "skip": 0}
    keys = [(r["policy"], r["rule"]) for r in made["results"]]
    assert keys == sorted(keys)
    assert len(json.dumps(workload_report(web.ref, web, judged, now=NOW, max_bytes=2_000))) < 4_000
