"""Issue 13 item 11: a status that reads well (severity order, a describe-friendly shape)."""

from __future__ import annotations

from readiness.checks.base import Category, Severity
from readiness.controller import status as status_mod
from readiness.engine import Evaluation, Finding
from readiness.policy import ReadinessPolicyStatus
from readiness.workload import WorkloadRef

WEB = WorkloadRef("Deployment", "shop", "web")


def finding(check: str, severity: Severity, container: str = "app") -> Finding:
    return Finding(check, Category.PROBES, severity, "m", container)


def test_offender_checks_most_severe_first_then_most_findings_then_id() -> None:
    findings = [finding("a-warning", Severity.WARNING), finding("b-info", Severity.INFO),
                finding("z-error", Severity.ERROR), finding("c-warning", Severity.WARNING),
                finding("c-warning", Severity.WARNING, "proxy"), finding("y-error", Severity.ERROR),
                finding("d-warning", Severity.WARNING)]
    summary = status_mod.summarize({WEB: Evaluation("p", WEB, findings=findings)})
    assert summary["topOffenders"][0]["checks"] == ["y-error", "z-error", "c-warning", "a-warning",
                                                    "d-warning"]
    # summary.checks: then the most violating workloads (one each here), then by id
    assert [c["check"] for c in summary["summary"]["checks"]] == [
        "y-error", "z-error", "a-warning", "c-warning", "d-warning", "b-info"]
    assert summary["summary"]["checks"][3] == {"check": "c-warning", "severity": "warning",
                                               "violating": 1, "findings": 2}


def test_summary_checks_count_workloads_and_all_severities_are_present() -> None:
    api = WorkloadRef("Deployment", "shop", "api")
    results = {WEB: Evaluation("p", WEB, findings=[finding("x", Severity.WARNING)]),
               api: Evaluation("p", api, findings=[finding("x", Severity.WARNING)])}
    summary = status_mod.summarize(results)["summary"]
    assert summary["checks"] == [{"check": "x", "severity": "warning", "violating": 2, "findings": 2}]
    assert summary["bySeverity"] == {"error": 0, "warning": 2, "info": 0}


def test_ready_only_after_an_audit_and_old_by_check_is_removed() -> None:
    rules = {"kind": "", "namespace": "", "name": ""}
    pending = status_mod.valid_status(status_mod.summarize({}), rules, 1, None, None)
    assert pending["conditions"][0]["status"] == "False"
    assert pending["conditions"][0]["reason"] == "Pending"
    old = {"summary": {"matched": 1, "byCheck": {"readiness-probe-missing": 1}}}
    ReadinessPolicyStatus.model_validate(old)  # an older operator's status still validates
    ready = status_mod.valid_status(status_mod.summarize({}), rules, 1, "2026-01-01T00:00:00Z", old)
    assert ready["conditions"][0]["status"] == "True"
    assert status_mod.merge_patch(old, ready)["summary"]["byCheck"] is None  # deleted by the patch


def test_invalid_policy_says_why_in_ready() -> None:
    status = status_mod.invalid_status("spec.auditInterval: bad", 2, None)
    assert status["conditions"][0]["message"] == "not enforced: spec.auditInterval: bad"
