"""Issue 11, item 1: admission never denies on a finding that reads objects which may not exist yet.

A Deployment applied before its HorizontalPodAutoscaler or PodDisruptionBudget (one `kubectl apply -f`,
a Helm install) must not be denied, nor warned about as if its context were final: such findings are
marked "(not yet)" and the audit decides.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from readiness import docs
from readiness.checks import all_checks, get_check
from readiness.cli import run
from readiness.context import AuditContext
from readiness.engine import Engine
from readiness.policy import ReadinessPolicy
from readiness.webhook import review

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}
OPERATOR_CONTEXT = AuditContext()
"""What the operator's state hands the webhook: PDBs and HPAs known, none of them in the namespace yet."""


def engine(mode: str, checks: dict[str, Any]) -> Engine:
    return Engine(ReadinessPolicy.model_validate({
        "metadata": {"name": "prod"},
        "spec": {"enforcement": mode, "unlistedChecks": "off", "checks": checks}}))


def deployment(replicas: int = 1, probe: bool = True) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "nginx:1.27"}
    if probe:
        container["readinessProbe"] = PROBE
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [container]}}}}


TOO_FEW = {"replicas-too-few": {"severity": "error", "parameters": {"minReplicas": 3}}}


def test_deny_mode_admits_a_deployment_whose_autoscaler_comes_later_with_a_not_yet_warning() -> None:
    result = review([engine("deny", TOO_FEW)], deployment(), {}, "CREATE", NOW, context=OPERATOR_CONTEXT)
    assert result.allowed, result.message
    assert result.warnings[0] == ("[prod] Deployment/web: replicas-too-few (not yet): replicas is 1, below "
                                  "minReplicas 3")
    assert result.warnings[-1].startswith(
        "[readiness] Deployment/web: not yet: needs HorizontalPodAutoscaler")
    assert all(len(line) <= 120 for line in result.warnings)


def test_the_autoscaler_once_known_still_passes_and_warns_nothing() -> None:
    context = AuditContext(hpa_min_replicas={("shop", "Deployment", "web"): 3})
    result = review([engine("deny", TOO_FEW)], deployment(), {}, "CREATE", NOW, context=context)
    assert result.allowed and result.warnings == []


def test_deny_mode_still_denies_on_what_the_workload_alone_decides() -> None:
    checks = {**TOO_FEW, "readiness-probe-missing": {"severity": "error"}}
    result = review([engine("deny", checks)], deployment(probe=False), {}, "CREATE", NOW,
                    context=OPERATOR_CONTEXT)
    assert not result.allowed
    assert "readiness-probe-missing" in result.message and "replicas-too-few" not in result.message
    assert any(line.startswith("[prod] Deployment/web: replicas-too-few (not yet):")
               for line in result.warnings)


def test_warn_mode_marks_a_missing_budget_as_not_yet() -> None:
    checks = {"pod-disruption-budget-missing": {}}
    result = review([engine("warn", checks)], deployment(replicas=3), {}, "CREATE", NOW,
                    context=OPERATOR_CONTEXT)
    assert result.allowed
    assert result.warnings[0].startswith("[prod] Deployment/web: pod-disruption-budget-missing (not yet): ")
    assert "PodDisruptionBudget, HorizontalPodAutoscaler" in result.warnings[1]


def test_not_yet_notice_counts_within_max_warnings() -> None:
    checks = {**TOO_FEW, "topology-spread-missing": {}, "pod-disruption-budget-missing": {}}
    result = review([engine("warn", checks)], deployment(replicas=2), {}, "CREATE", NOW,
                    context=OPERATOR_CONTEXT, max_warnings=2)
    assert len(result.warnings) == 3
    assert "(not yet)" in result.warnings[0]
    assert result.warnings[1].startswith("[readiness] Deployment/web: not yet:")
    assert result.warnings[2].startswith("[readiness] Deployment/web: ... and 2 more")


def test_context_checks_declare_what_they_read() -> None:
    expected = {
        "replicas-too-few": ("HorizontalPodAutoscaler",),
        "pod-disruption-budget-missing": ("PodDisruptionBudget", "HorizontalPodAutoscaler"),
        "rolling-update-unsafe": ("HorizontalPodAutoscaler",),
        "topology-spread-missing": ("HorizontalPodAutoscaler",),
        "service-account-token-automount": ("ServiceAccount",),
    }
    for check_id, kinds in expected.items():
        assert set(kinds) <= set(get_check(check_id).depends_on), check_id
    assert "PodDisruptionBudget" in get_check("pdb-blocks-evictions").depends_on
    assert get_check("readiness-probe-missing").depends_on == ()


def test_pages_explain_and_listing_show_the_dependency() -> None:
    page = docs.render_check(get_check("replicas-too-few"))
    assert '| depends on | HorizontalPodAutoscaler objects: admission only warns "not yet"' in page
    assert "| depends on | the workload alone |" in docs.render_check(get_check("run-as-root"))
    assert "depends on: HorizontalPodAutoscaler" in docs.render_explain(get_check("replicas-too-few"))
    rows = {row["id"]: row for row in _json_listing()}
    assert rows["replicas-too-few"]["dependsOn"] == ["HorizontalPodAutoscaler"]
    assert rows["run-as-root"]["dependsOn"] == []
    assert len(rows) == len(all_checks())


def _json_listing() -> list[dict[str, Any]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(["checks", "-o", "json"]) == 0
    rows: list[dict[str, Any]] = json.loads(out.getvalue())
    return rows


def test_unknown_namespace_labels_are_not_yet_judged_and_said_so() -> None:
    by_label = Engine(ReadinessPolicy.model_validate({
        "metadata": {"name": "prod"},
        "spec": {"enforcement": "deny", "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
                 "checks": {"readiness-probe-missing": {"severity": "error"}}}}))
    created_with_it = review([by_label], deployment(probe=False), None, "CREATE", NOW)
    assert created_with_it.allowed
    assert created_with_it.warnings == ["[prod] Deployment/web: not yet judged: labels of namespace shop not "
                                        "known yet (namespaceSelector); the audit decides"]
    assert review([by_label], deployment(probe=False), {"env": "dev"}, "CREATE", NOW).warnings == []
