"""The admission verdict (`readiness.webhook.review`) and the webhook configuration it is served under."""

from __future__ import annotations

import copy
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from readiness.engine import Engine
from readiness.policy import ReadinessPolicy
from readiness.tls import Authority, write_serving_certificate
from readiness.webhook import (
    Review,
    WebhookSettings,
    deny_message,
    fix_hint,
    format_warning,
    review,
    webhook_configuration,
    with_handler_path,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def engine(name: str, enforcement: str, **spec: Any) -> Engine:
    return Engine(ReadinessPolicy.model_validate(
        {"metadata": {"name": name}, "spec": {"enforcement": enforcement, **spec}}))


def deployment(name: str = "web", namespace: str = "shop", **pod: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "nginx:1.27", **pod.pop("container", {})}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [container], **pod}}},
    }


PROBE = {"httpGet": {"path": "/healthz", "port": 8080}}
NON_ROOT = {"runAsNonRoot": True, "runAsUser": 10001}


def test_audit_mode_has_no_effect() -> None:
    assert review([engine("p", "audit")], deployment(), {}, "CREATE", NOW) == Review(True, "", [])


def test_warn_mode_returns_short_prefixed_warnings() -> None:
    result = review([engine("baseline", "warn")], deployment(), {}, "CREATE", NOW)
    assert result.allowed
    assert result.warnings
    assert all(len(w) <= 120 for w in result.warnings)
    assert any(w.startswith("[baseline] Deployment/web: readiness-probe-missing:") and w.endswith("(app)")
               for w in result.warnings)


def test_warnings_are_capped_with_a_count_of_the_rest() -> None:
    result = review([engine("p", "warn")], deployment(), {}, "CREATE", NOW, max_warnings=2)
    assert len(result.warnings) == 3
    assert result.warnings[-1].startswith("[readiness] Deployment/web: ... and ")
    assert "readiness-probe-missing" in result.warnings[0]  # errors come first


def test_deny_mode_rejects_error_findings_with_fix_and_warns_the_rest() -> None:
    result = review([engine("strict", "deny")], deployment(), {}, "CREATE", NOW)
    assert not result.allowed
    assert "Deployment shop/web" in result.message
    assert "[strict] readiness-probe-missing (app)" in result.message
    assert f"Fix: {fix_hint('readiness-probe-missing')}" in result.message
    assert all("readiness-probe-missing" not in w for w in result.warnings)
    assert any("memory-request-missing" in w for w in result.warnings)


def test_deny_mode_allows_when_only_lesser_findings_remain() -> None:
    obj = deployment(container={"readinessProbe": PROBE}, securityContext=NON_ROOT)
    result = review([engine("strict", "deny")], obj, {}, "CREATE", NOW)
    assert result.allowed
    assert result.warnings


def test_exemptions_are_the_audits() -> None:
    exempting = engine("strict", "deny", exemptions=[
        {"names": ["web"], "checks": ["*"], "reason": "legacy, migrating by Q3"}])
    assert review([exempting], deployment(), {}, "CREATE", NOW) == Review(True, "", [])


def test_workload_annotation_exemption_needs_the_policy_to_allow_it() -> None:
    obj = deployment()
    obj["metadata"]["annotations"] = {"readiness.dev/exempt": "*", "readiness.dev/exempt-reason": "demo"}
    assert not review([engine("strict", "deny")], obj, {}, "CREATE", NOW).allowed
    allowing = engine("strict", "deny", allowWorkloadExemptions=True)
    assert review([allowing], obj, {}, "CREATE", NOW).allowed


def test_unmatched_namespace_kind_and_selector_are_ignored() -> None:
    scoped = engine("p", "deny", match={"namespaces": ["prod-*"]})
    assert review([scoped], deployment(), {}, "CREATE", NOW).allowed
    by_label = engine("p", "deny", match={"namespaceSelector": {"matchLabels": {"env": "prod"}}})
    assert review([by_label], deployment(), {"env": "dev"}, "CREATE", NOW).allowed
    assert not review([by_label], deployment(), {"env": "prod"}, "CREATE", NOW).allowed
    assert review([by_label], deployment(), None, "CREATE", NOW).allowed  # labels unknown: fail open


def test_update_does_not_reject_findings_the_old_object_already_had() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"readiness.dev/verdict": "violating"}
    result = review([engine("strict", "deny")], new, {}, "UPDATE", NOW, old=old)
    assert result.allowed
    assert any("readiness-probe-missing" in w for w in result.warnings)


def test_update_rejects_a_new_error() -> None:
    old = deployment(container={"readinessProbe": PROBE}, securityContext=NON_ROOT)
    result = review([engine("strict", "deny")], deployment(securityContext=NON_ROOT), {}, "UPDATE", NOW,
                    old=old)
    assert not result.allowed
    assert "readiness-probe-missing" in result.message
    assert "run-as-root" not in result.message


def test_delete_controlled_and_non_workloads_pass() -> None:
    strict = [engine("strict", "deny")]
    assert review(strict, deployment(), {}, "DELETE", NOW).allowed
    assert review(strict, {"kind": "ConfigMap", "metadata": {"name": "x"}}, {}, "CREATE", NOW).allowed
    owned = deployment()
    owned["metadata"]["ownerReferences"] = [{"kind": "Thing", "name": "t", "uid": "u", "controller": True}]
    assert review(strict, owned, {}, "CREATE", NOW).allowed


def test_malformed_workload_is_admitted_with_a_warning() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = "nope"
    result = review([engine("strict", "deny")], obj, {}, "CREATE", NOW)
    assert result.allowed
    assert result.warnings[0].startswith("[readiness] Deployment/web: not judged:")


def test_format_warning_truncates() -> None:
    from readiness.checks.base import Category, Severity
    from readiness.engine import Finding

    finding = Finding("run-as-root", Category.SECURITY, Severity.ERROR, "x" * 300, "app")
    line = format_warning("strict", finding, width=120)
    assert len(line) == 120
    assert line.startswith("[strict] run-as-root: xxx")
    assert line.endswith("...")


def test_deny_message_caps_its_lines() -> None:
    from readiness.checks.base import Category, Severity
    from readiness.engine import Finding

    findings = [("p", Finding("run-as-root", Category.SECURITY, Severity.ERROR, "m", f"c{i}"))
                for i in range(30)]
    message = deny_message("Deployment a/b", findings, limit=5)
    assert message.count("\n- [p]") == 5
    assert "... and 25 more" in message


def test_webhook_configuration_has_the_safety_defaults() -> None:
    settings = WebhookSettings(operator_namespace="readiness-system", managed_config="x.readiness.dev")
    config = webhook_configuration(settings, {"url": "https://127.0.0.1:9443", "caBundle": "Q0E="})
    (hook,) = config["webhooks"]
    # Kopf's server yields its bare URL and routes by path: without /readiness nothing is judged.
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:9443/readiness", "caBundle": "Q0E="}
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "None"
    assert hook["timeoutSeconds"] == 5
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
         "values": ["kube-system", "readiness-system"]}]
    assert {r["resources"][0] for r in hook["rules"]} == {
        "deployments", "statefulsets", "daemonsets", "replicationcontrollers", "jobs", "cronjobs"}
    assert all(r["operations"] == ["CREATE", "UPDATE"] for r in hook["rules"])


@pytest.mark.parametrize(("given", "expected"), [
    ({"url": "https://127.0.0.1:9443/"}, {"url": "https://127.0.0.1:9443/readiness"}),
    ({"url": "https://127.0.0.1:9443/readiness"}, {"url": "https://127.0.0.1:9443/readiness"}),
    ({"service": {"name": "s", "namespace": "n"}}, {"service": {"name": "s", "namespace": "n",
                                                                 "path": "/readiness"}}),
    ({}, {}),
])
def test_client_config_points_at_the_handler(given: dict[str, Any], expected: dict[str, Any]) -> None:
    assert with_handler_path(given) == expected


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="webhook kind 'Gadget'"):
        webhook_configuration(WebhookSettings(kinds=("Gadget",)), {})


def test_generated_certificate_serves_tls_trusted_by_its_ca(tmp_path: Path) -> None:
    authority = Authority.create()
    paths = write_serving_certificate(tmp_path, ["127.0.0.1", "localhost"], authority)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(paths.certfile, paths.pkeyfile)
    client = ssl.create_default_context(cafile=str(paths.cafile))
    assert client.cert_store_stats()["x509_ca"] == 1
    first = paths.certfile.read_bytes()
    again = write_serving_certificate(tmp_path, ["127.0.0.1"], authority)  # rotation under the same CA
    assert again.certfile.read_bytes() != first
    assert again.cafile.read_bytes() == paths.cafile.read_bytes()
    assert oct(paths.pkeyfile.stat().st_mode & 0o777) == "0o600"
