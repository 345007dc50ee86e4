"""Settings, registry shape, fingerprints, status and in-memory audits (no API involved)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest

from readiness.checks import CATALOG
from readiness.controller import build, output
from readiness.controller import settings as settings_mod
from readiness.controller import status as status_mod
from readiness.controller.auditor import Auditor
from readiness.controller.handlers import Runtime, index_policy, index_workload, watched_kinds
from readiness.controller.settings import OperatorSettings
from readiness.controller.state import State, fingerprint
from readiness.metrics import ReadinessMetrics
from readiness.policy import ReadinessPolicyStatus
from readiness.workload import KindRegistry, WorkloadRef

WORKLOAD_GROUPS = {"apps", "batch", "argoproj.io", ""}


def deployment(name: str = "web", namespace: str = "shop", probe: bool = False,
               **meta: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": "shop/web:1.0"}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": 80}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1, **meta},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": {"containers": [container]}}}}


def only_checks(*ids: str) -> dict[str, Any]:
    return {cid: {"enabled": cid in ids} for cid in CATALOG}


def policy(name: str = "probes", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1},
            "spec": {"checks": only_checks("readiness-probe-missing"), **spec}}


# -- settings --------------------------------------------------------------------------------------------

def test_every_setting_has_a_docstring() -> None:
    docs = settings_mod.field_docs()
    import dataclasses
    assert {f.name for f in dataclasses.fields(OperatorSettings)} == set(docs)
    assert all(len(text) > 20 for text in docs.values())


def test_flags_override_environment_which_overrides_defaults() -> None:
    parser = argparse.ArgumentParser()
    settings_mod.add_arguments(parser)
    args = parser.parse_args(["--metrics-port", "9000", "--no-events", "--rule-labels", "release=kps",
                              "--custom-kind", "argoproj.io/Rollout=spec.template"])
    ours = settings_mod.from_args(args, environ={"READINESS_METRICS_PORT": "1", "READINESS_EVENT_RATE": "2.5",
                                                 "READINESS_KINDS": "Deployment,Job"})
    assert ours.metrics_port == 9000 and not ours.events and ours.event_rate == 2.5
    assert ours.kinds == ("Deployment", "Job") and ours.rule_labels == {"release": "kps"}
    assert ours.custom_kinds == ("argoproj.io/Rollout=spec.template",)
    assert ours.standalone


def test_bad_settings_fail_with_one_line() -> None:
    with pytest.raises(ValueError, match="write_concurrency must be at least 1"):
        settings_mod.validate(OperatorSettings(write_concurrency=0))
    with pytest.raises(ValueError, match="READINESS_EVENTS"):
        settings_mod.from_env({"READINESS_EVENTS": "maybe"})
    with pytest.raises(ValueError, match="unknown kind"):
        watched_kinds(OperatorSettings(kinds=("Gadget",)), KindRegistry())


def test_kopf_settings_for_scale() -> None:
    _registry, kopf_settings, _runtime = build(OperatorSettings(metrics_port=0))
    assert kopf_settings.posting.enabled is False
    assert kopf_settings.watching.server_timeout == 300 and kopf_settings.watching.client_timeout == 330
    assert kopf_settings.watching.connect_timeout and kopf_settings.queueing.worker_limit is None
    assert kopf_settings.peering.standalone


# -- registry shape: the static half of "nothing is ever written by Kopf on a workload" ----------------

def test_workloads_have_only_index_and_event_handlers() -> None:
    registry, _settings, _runtime = build(OperatorSettings(
        metrics_port=0, kinds=("Deployment", "StatefulSet", "DaemonSet", "Job"),
        custom_kinds=("argoproj.io/Rollout=spec.template",)))
    for kind_registry in (registry._changing, registry._spawning):
        for handler in kind_registry.get_all_handlers():
            assert handler.selector is not None
            assert _name(handler.selector) == "readinesspolicies", handler.id
    watched = {_name(h.selector) for h in registry._watching.get_all_handlers() if h.selector is not None}
    assert {"deployments", "statefulsets", "daemonsets", "jobs", "Rollout", "namespaces"} <= watched


def _name(selector: Any) -> str:
    return str(selector.plural or selector.any_name or selector.kind)


# -- fingerprints ----------------------------------------------------------------------------------------

def test_fingerprint_ignores_our_keys_and_kopf_but_not_exemptions() -> None:
    base = deployment()
    ours = deployment(annotations={output.VERDICT: "violating", output.VIOLATIONS: "[]",
                                   "kopf.zalando.org/x": "1"}, labels={output.COMPLIANT_LABEL: "false"})
    assert fingerprint(base) == fingerprint(ours)
    exempt = deployment(annotations={"readiness.dev/exempt": "*"})
    assert fingerprint(base) != fingerprint(exempt)
    changed = deployment(probe=True)
    assert fingerprint(base) != fingerprint(changed)


def test_index_keeps_a_projection_and_skips_malformed_workloads() -> None:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    body = deployment(managedFields=[{"manager": "kubectl"}] * 100)
    entry = index_workload(runtime, body, "deployments")[WorkloadRef("Deployment", "shop", "web")]
    assert not hasattr(entry.workload, "managed_fields") and entry.plural == "deployments"
    broken = deployment()
    broken["spec"]["template"]["spec"]["containers"] = "nope"
    assert index_workload(runtime, broken, "deployments") == {}
    assert index_workload(runtime, broken, "deployments") == {}
    assert len(runtime.state.malformed) == 1


def test_invalid_policy_is_indexed_with_a_one_line_error() -> None:
    bad = policy("bad", auditInterval="often")
    entry = index_policy(bad)["bad"]
    assert entry.engine is None and entry.error and "\n" not in entry.error and "auditInterval" in entry.error
    good = index_policy(policy("good", auditInterval="30s"))["good"]
    assert good.engine is not None and good.interval == 30


# -- in-memory audits ------------------------------------------------------------------------------------

def audited_state(*bodies: dict[str, Any], policies: list[dict[str, Any]]) -> tuple[State, Auditor]:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    state = runtime.state
    for body in bodies:
        state.workloads.update(index_workload(runtime, body, "deployments"))
    state.policies = {p["metadata"]["name"]: [index_policy(p)[p["metadata"]["name"]]] for p in policies}
    state.namespaces = {"shop": [{"env": "prod"}], "dev": [{"env": "dev"}]}
    auditor = Auditor(runtime.settings, state, ReadinessMetrics())
    asyncio.run(auditor.audit_many(list(state.workloads)))
    return state, auditor


def test_audit_in_memory_and_status_summary() -> None:
    state, auditor = audited_state(
        deployment("a"), deployment("b", probe=True), deployment("c", namespace="dev"),
        policies=[policy("prod-only", match={"namespaceSelector": {"matchLabels": {"env": "prod"}}})])
    results = state.results["prod-only"]
    assert set(results) == {WorkloadRef("Deployment", "shop", "a"), WorkloadRef("Deployment", "shop", "b")}
    summary = status_mod.summarize(results)
    assert summary["summary"] == {"matched": 2, "compliant": 1, "violating": 1,
                                  "bySeverity": {"error": 1, "warning": 0, "info": 0},
                                  "checks": [{"check": "readiness-probe-missing", "severity": "error",
                                              "violating": 1, "findings": 1}]}
    assert summary["topOffenders"][0]["name"] == "a"
    status = status_mod.valid_status(summary, {"kind": "ConfigMap", "namespace": "x", "name": "y"}, 1,
                                     status_mod.now_rfc3339(), None)
    ReadinessPolicyStatus.model_validate(status)
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Valid"]
    assert auditor.metrics.violation_series("prod-only") == 1


def test_top_offenders_are_capped_and_worst_first() -> None:
    bodies = [deployment(f"w{i:02d}") for i in range(25)]
    state, _auditor = audited_state(*bodies, policies=[policy()])
    summary = status_mod.summarize(state.results["probes"])
    assert len(summary["topOffenders"]) == 10 and summary["summary"]["violating"] == 25


def test_status_comparison_ignores_times_only() -> None:
    summary = status_mod.summarize({})
    rules = {"kind": "", "namespace": "", "name": ""}
    one = status_mod.valid_status(summary, rules, 1, "2024-01-01T00:00:00Z", None)
    two = status_mod.valid_status(summary, rules, 1, "2025-01-01T00:00:00Z", one)
    assert status_mod.comparable(one) == status_mod.comparable(two)
    assert two["conditions"][0]["lastTransitionTime"] == one["conditions"][0]["lastTransitionTime"]
    three = status_mod.valid_status(summary, rules, 2, None, two)
    assert status_mod.comparable(three) != status_mod.comparable(two)
    invalid = status_mod.invalid_status("spec.auditInterval: bad", 3, two)
    assert invalid["conditions"][1] | {"lastTransitionTime": None} == {
        "type": "Valid", "status": "False", "reason": "InvalidSpec", "message": "spec.auditInterval: bad",
        "lastTransitionTime": None, "observedGeneration": 3}


def test_top_offenders_rank_worst_first_then_by_name() -> None:
    checks = only_checks("readiness-probe-missing", "memory-limit-missing", "cpu-request-missing")
    bodies = [deployment(f"w{i:02d}", probe=i % 3 == 0) for i in range(30)]
    state, _auditor = audited_state(*bodies, policies=[policy("three-checks", checks=checks)])
    results = state.results["three-checks"]
    summary = status_mod.summarize(results)
    top = summary["topOffenders"]

    def rank(item: dict[str, Any]) -> tuple[Any, ...]:
        return (-item["errors"], -item["warnings"], -item["infos"], item["namespace"], item["kind"],
                item["name"])

    assert [rank(item) for item in top] == sorted(rank(item) for item in top)
    worst = [ref.name for ref, result in results.items() if len(result.findings) == 3]
    assert [item["name"] for item in top] == sorted(worst)[:len(top)]
    assert all(len(item["checks"]) == 3 for item in top)


def test_our_api_client_ignores_proxy_and_netrc_environment() -> None:
    from kubernetes_asyncio import client as k8s

    from readiness.controller.client import _ignore_environment

    async def session_of() -> tuple[bool, bool]:
        api = k8s.ApiClient(k8s.Configuration(host="https://127.0.0.1:1"))
        connector = api.rest_client.pool_manager.connector
        _ignore_environment(api)
        session = api.rest_client.pool_manager
        try:
            return session.trust_env, session.connector is connector
        finally:
            await api.close()

    assert asyncio.run(session_of()) == (False, True)
