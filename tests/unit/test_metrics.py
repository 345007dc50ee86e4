"""ReadinessMetrics: violation series appear, change and disappear exactly; the exposition is valid."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from readiness import __version__
from readiness.checks.base import Category, Severity
from readiness.engine import Finding
from readiness.metrics import ReadinessMetrics
from readiness.workload import WorkloadRef

WEB = WorkloadRef("Deployment", "shop", "web")
API = WorkloadRef("Deployment", "shop", "api")


def probe(container: str) -> Finding:
    return Finding("readiness-probe-missing", Category.PROBES, Severity.ERROR, "no probe", container)


GRACE = Finding("termination-grace-period", Category.LIFECYCLE, Severity.WARNING, "too short", None)


def violations(metrics: ReadinessMetrics) -> dict[tuple[tuple[str, str], ...], float]:
    """Every readiness_workload_violations sample, parsed back from the text exposition."""
    text = generate_latest(metrics.registry).decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "readiness_workload_violations"
        for sample in family.samples
    }


def key(ref: WorkloadRef, check: str, severity: str, policy: str = "prod") -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"policy": policy, "namespace": ref.namespace, "kind": ref.kind, "workload": ref.name,
                         "check": check, "severity": severity}.items()))


def test_one_series_per_check_and_severity_counting_containers() -> None:
    metrics = ReadinessMetrics()
    metrics.observe("prod", WEB, [probe("app"), probe("proxy"), GRACE])
    assert violations(metrics) == {
        key(WEB, "readiness-probe-missing", "error"): 2.0,
        key(WEB, "termination-grace-period", "warning"): 1.0,
    }


def test_closed_findings_disappear_and_others_stay() -> None:
    metrics = ReadinessMetrics()
    metrics.observe("prod", WEB, [probe("app"), GRACE])
    metrics.observe("prod", API, [GRACE])
    metrics.observe("prod", WEB, [probe("app")])
    assert violations(metrics) == {
        key(WEB, "readiness-probe-missing", "error"): 1.0,
        key(API, "termination-grace-period", "warning"): 1.0,
    }
    metrics.observe("prod", WEB, [])
    assert violations(metrics) == {key(API, "termination-grace-period", "warning"): 1.0}
    assert metrics.violation_series() == 1


def test_forget_drops_one_workload_of_one_policy() -> None:
    metrics = ReadinessMetrics()
    metrics.observe("prod", WEB, [GRACE])
    metrics.observe("strict", WEB, [GRACE])
    metrics.forget("prod", WEB)
    metrics.forget("prod", API)  # never observed: harmless
    assert violations(metrics) == {key(WEB, "termination-grace-period", "warning", "strict"): 1.0}


def test_forget_policy_removes_every_series_of_that_policy() -> None:
    metrics = ReadinessMetrics()
    for policy in ("prod", "strict"):
        metrics.observe(policy, WEB, [probe("app"), GRACE])
        metrics.set_policy_workloads(policy, compliant=3, violating=1)
        metrics.set_exemptions(policy, active=2, expired=1)
    metrics.forget_policy("prod")
    text = generate_latest(metrics.registry).decode()
    assert 'policy="prod"' not in text
    assert text.count('policy="strict"') == 2 + 2 + 2
    assert metrics.violation_series("prod") == 0
    metrics.forget_policy("never-seen")


def test_policy_gauges_counters_histogram_and_build_info() -> None:
    metrics = ReadinessMetrics()
    metrics.set_policy_workloads("prod", compliant=7, violating=2)
    metrics.set_exemptions("prod", active=1, expired=3)
    metrics.evaluations.inc(5)
    metrics.api_error("patch", "409")
    metrics.api_error("patch", "409")
    metrics.observe_audit("workload", 0.0003)
    metrics.audit_duration.labels("policy").observe(2.5)
    registry = metrics.registry
    violating = {"policy": "prod", "state": "violating"}
    assert registry.get_sample_value("readiness_policy_workloads", violating) == 2
    assert registry.get_sample_value("readiness_exemptions", {"policy": "prod", "state": "expired"}) == 3
    assert registry.get_sample_value("readiness_evaluations_total") == 5
    assert registry.get_sample_value("readiness_api_errors_total", {"operation": "patch", "code": "409"}) == 2
    assert registry.get_sample_value("readiness_audit_duration_seconds_count", {"scope": "workload"}) == 1
    assert registry.get_sample_value("readiness_audit_duration_seconds_sum", {"scope": "policy"}) == 2.5
    assert registry.get_sample_value("readiness_build_info", {"version": __version__}) == 1
    with pytest.raises(ValueError, match="audit scope"):
        metrics.observe_audit("cluster", 1.0)


def test_instances_have_their_own_registries() -> None:
    first, second = ReadinessMetrics(), ReadinessMetrics()
    first.observe("prod", WEB, [GRACE])
    assert violations(second) == {}
    shared = CollectorRegistry()
    assert ReadinessMetrics(shared).registry is shared


def test_serve_exposes_the_registry_over_http() -> None:
    metrics = ReadinessMetrics()
    metrics.observe("prod", WEB, [GRACE])
    port = metrics.serve(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
    finally:
        metrics.close()
    assert 'readiness_workload_violations{check="termination-grace-period"' in body


def test_observe_stays_exact_across_many_workloads() -> None:
    metrics = ReadinessMetrics()
    refs = [WorkloadRef("Deployment", f"ns{i % 10}", f"w{i}") for i in range(2000)]
    for ref in refs:
        metrics.observe("prod", ref, [probe("app"), GRACE])
    for ref in refs[::2]:
        metrics.observe("prod", ref, [])
    assert metrics.violation_series() == 2 * 1000
    assert len(violations(metrics)) == 2 * 1000


def test_a_changed_count_is_updated_in_place() -> None:
    metrics = ReadinessMetrics()
    metrics.observe("prod", WEB, [probe("app"), probe("proxy")])
    metrics.observe("prod", WEB, [probe("app")])
    assert violations(metrics) == {key(WEB, "readiness-probe-missing", "error"): 1.0}
    metrics.observe("prod", WEB, [probe("app")])  # unchanged: still exactly one series
    assert violations(metrics) == {key(WEB, "readiness-probe-missing", "error"): 1.0}
