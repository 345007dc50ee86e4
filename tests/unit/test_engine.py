"""Engine semantics: exemptions (policy and annotation), expiry, and which workloads a policy matches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from readiness.engine import EXEMPT_ANNOTATION, EXEMPT_REASON_ANNOTATION, EXEMPT_UNTIL_ANNOTATION, Engine
from readiness.policy import ReadinessPolicy
from readiness.workload import Workload, project

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def deployment(name: str = "web", namespace: str = "shop", labels: dict[str, str] | None = None,
               annotations: dict[str, str] | None = None, **meta: Any) -> Workload:
    return project({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                     "annotations": annotations or {}, **meta},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "web:1"}, {"name": "proxy", "image": "proxy:1"}]}}},
    })


def engine(**spec: Any) -> Engine:
    spec.setdefault("match", {"kinds": ["Deployment"]})
    return Engine(ReadinessPolicy.model_validate({"metadata": {"name": "p"}, "spec": spec}))


def checks(findings: Any) -> set[tuple[str, str | None]]:
    return {(f.check, f.container) for f in findings}


def test_policy_exemption_by_namespace_name_and_container() -> None:
    e = engine(exemptions=[{"namespaces": ["sh*"], "names": ["web"], "checks": ["readiness-probe-missing"],
                            "containers": ["proxy"], "reason": "the mesh probes it"}])
    result = e.evaluate(deployment(), now=NOW)
    assert ("readiness-probe-missing", "proxy") in checks(x.finding for x in result.exempted)
    assert ("readiness-probe-missing", "web") in checks(result.findings)
    assert result.exempted[0].source == "policy:exemptions[0]" and result.exempted[0].reason


def test_policy_exemption_by_selector_and_star() -> None:
    e = engine(exemptions=[{"selector": {"matchLabels": {"tier": "legacy"}}, "checks": ["*"], "reason": "x"}])
    assert not e.evaluate(deployment(labels={"tier": "legacy"}), now=NOW).findings
    assert e.evaluate(deployment(labels={"tier": "new"}), now=NOW).findings


def test_expired_exemptions_are_reported_not_applied() -> None:
    e = engine(exemptions=[{"namespaces": ["*"], "checks": ["*"], "reason": "temporary",
                            "expires": "2025-01-01T00:00:00Z"}])
    result = e.evaluate(deployment(), now=NOW)
    assert result.findings and not result.exempted
    (expired,) = result.expired_exemptions
    assert expired.source == "policy:exemptions[0]" and expired.reason == "temporary"


def annotated(value: str, reason: str | None = "legacy app", until: str | None = None) -> Workload:
    annotations = {EXEMPT_ANNOTATION: value}
    if reason is not None:
        annotations[EXEMPT_REASON_ANNOTATION] = reason
    if until is not None:
        annotations[EXEMPT_UNTIL_ANNOTATION] = until
    return deployment(annotations=annotations)


def test_annotation_exemptions_only_when_allowed() -> None:
    workload = annotated("readiness-probe-missing")
    assert not engine().evaluate(workload, now=NOW).exempted
    allowed = engine(allowWorkloadExemptions=True).evaluate(workload, now=NOW)
    assert {x.finding.check for x in allowed.exempted} == {"readiness-probe-missing"}
    assert allowed.exempted[0].source == "annotation"


def test_annotation_check_container_form_and_star() -> None:
    e = engine(allowWorkloadExemptions=True)
    one = e.evaluate(annotated("readiness-probe-missing:proxy"), now=NOW)
    assert checks(x.finding for x in one.exempted) == {("readiness-probe-missing", "proxy")}
    everything = e.evaluate(annotated("*"), now=NOW)
    assert not everything.findings and everything.exempted


def test_annotation_without_reason_is_ignored_with_a_notice() -> None:
    result = engine(allowWorkloadExemptions=True).evaluate(annotated("*", reason=None), now=NOW)
    assert result.findings and not result.exempted
    assert any(EXEMPT_REASON_ANNOTATION in n for n in result.notices)


def test_annotation_expiry_and_bad_time() -> None:
    e = engine(allowWorkloadExemptions=True)
    expired = e.evaluate(annotated("*", until="2025-01-01"), now=NOW)
    assert expired.findings and expired.expired_exemptions[0].source == "annotation"
    assert e.evaluate(annotated("*", until="2026-01-01"), now=NOW).exempted
    bad = e.evaluate(annotated("*", until="next tuesday"), now=NOW)
    assert bad.findings and any("RFC 3339" in n for n in bad.notices)


def test_matching_globs_excludes_kinds_and_selectors() -> None:
    e = engine(match={"namespaces": ["team-*"], "excludeNamespaces": ["team-sandbox"],
                      "kinds": ["Deployment"],
                      "selector": {"matchExpressions": [{"key": "tier", "operator": "NotIn",
                                                         "values": ["test"]}]}})
    assert e.matches(deployment(namespace="team-a"))
    assert not e.matches(deployment(namespace="shop"))
    assert not e.matches(deployment(namespace="team-sandbox"))
    assert not e.matches(deployment(namespace="team-a", labels={"tier": "test"}))
    assert not engine(match={"kinds": ["StatefulSet"]}).matches(deployment())


def test_namespace_selector_needs_known_labels() -> None:
    e = engine(match={"kinds": ["Deployment"], "namespaceSelector": {"matchLabels": {"env": "prod"}}})
    assert e.matches(deployment(), {"env": "prod"})
    assert not e.matches(deployment(), {"env": "dev"})
    assert not e.matches(deployment(), None)  # unknown labels: skip rather than misjudge


def test_controlled_objects_are_judged_through_their_owner() -> None:
    owned = deployment(ownerReferences=[{"kind": "Something", "name": "x", "controller": True}])
    assert not engine().matches(owned)


def test_messages_and_judgement_counts() -> None:
    result = engine().evaluate(deployment(), now=NOW)
    finding = next(f for f in result.findings if f.check == "readiness-probe-missing")
    assert "web" in finding.message or "proxy" in finding.message
    assert result.results >= len(result.findings) and not result.errors
    # shared findings are equal to freshly built ones: sharing is an optimisation, not a semantic
    again = engine().evaluate(deployment(), now=NOW)
    assert again.findings == result.findings


def test_findings_follow_check_order_then_container_order_whatever_the_pod_shape() -> None:
    """The flat plans (one per workload class and container roles) keep the order of the catalog, then
    of the containers, and count one judgement per (check, container)."""
    policy = engine()
    two = policy.evaluate(deployment(), now=NOW)
    one = policy.evaluate(project({
        "kind": "Deployment", "metadata": {"name": "solo", "namespace": "shop"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
    }), now=NOW)
    order = [a.check.id for a in policy.active]
    for result in (one, two):
        ranks = [(order.index(f.check), f.container != "web") for f in result.findings]
        assert ranks == sorted(ranks)
    container_checks = sum(1 for a in policy.active if a.roles is not None and "service" in
                           {c.value for c in a.check.classes})
    assert two.results - one.results == container_checks  # the second container adds one per check


def test_a_crashing_check_skips_its_other_containers_and_the_rest_still_run() -> None:
    policy = engine()
    baseline = policy.evaluate(deployment(), now=NOW)
    step = next(s for s in policy._plans[deployment().workload_class]
                if s.check.id == "readiness-probe-missing")
    calls: list[str] = []

    def crash(container: Any, workload: Any, params: Any) -> None:
        calls.append(container.name)
        raise RuntimeError("boom")

    original = step.container_fn
    policy._flat.clear()
    step.container_fn = crash
    try:
        result = policy.evaluate(deployment(), now=NOW)
    finally:
        step.container_fn = original
        policy._flat.clear()
    assert calls == ["web"]  # proxy was not judged by the crashed check
    assert result.errors == ["readiness-probe-missing: RuntimeError: boom"]
    assert result.results == baseline.results - 1
    assert {f.check for f in result.findings} == {f.check for f in baseline.findings} - {
        "readiness-probe-missing"}


def test_findings_with_details_are_shared_per_distinct_outcome() -> None:
    root = {"kind": "Deployment", "metadata": {"name": "a", "namespace": "shop"},
            "spec": {"replicas": 3, "template": {"spec": {"securityContext": {"runAsUser": 0},
                                                          "containers": [{"name": "web", "image": "w:1"}]}}}}
    policy = engine()
    first = next(f for f in policy.evaluate(project(root), now=NOW).findings if f.check == "run-as-root")
    again = next(f for f in policy.evaluate(project(root), now=NOW).findings if f.check == "run-as-root")
    assert first is again and "runAsUser: 0" in first.message
    root["spec"]["template"]["spec"]["securityContext"] = {}  # type: ignore[index]
    other = next(f for f in policy.evaluate(project(root), now=NOW).findings if f.check == "run-as-root")
    assert other.message != first.message


def test_unlisted_checks_off_judges_only_the_listed_checks() -> None:
    from readiness.engine import Engine
    from readiness.policy import ReadinessPolicy

    def active(spec: dict[str, object]) -> set[str]:
        policy = ReadinessPolicy.model_validate({"metadata": {"name": "p"}, "spec": spec})
        return {a.check.id for a in Engine(policy).active}

    listed = {"run-as-root": {"severity": "warning"}, "host-port": {"enabled": False},
              "startup-probe-missing": {}}
    only = active({"checks": listed, "unlistedChecks": "off"})
    assert only == {"run-as-root", "startup-probe-missing"}  # listed and not disabled, even off-by-default
    everything = active({"checks": listed})
    assert {"run-as-root", "readiness-probe-missing"} <= everything
    assert "host-port" not in everything
