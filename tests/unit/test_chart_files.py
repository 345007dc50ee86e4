"""Files the chart and deploy/ copy from the repository stay identical, and the chart agrees with the
webhook module on what it registers. Pure file checks, no helm (tests/cluster/test_chart.py renders)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from readiness.webhook import RESOURCES, WebhookSettings, validating_webhook

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "readiness-operator"
DEPLOY = REPO / "deploy"


def test_chart_crd_is_the_repository_crd() -> None:
    chart_copy = (CHART / "crds" / "readinesspolicies.yaml").read_bytes()
    assert chart_copy == (REPO / "crds" / "readinesspolicies.yaml").read_bytes(), "copy crds/ into the chart"


@pytest.mark.parametrize("name", ["baseline", "production", "strict"])
def test_chart_example_policies_are_the_examples(name: str) -> None:
    assert (CHART / "files" / "policies" / f"{name}.yaml").read_bytes() == \
        (REPO / "examples" / "policies" / f"{name}.yaml").read_bytes()


def test_deploy_crds_are_the_chart_crds() -> None:
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert sorted(p.name for p in (DEPLOY / "crds").glob("*.yaml")) == chart, "run hack/render-deploy.sh"
    for name in chart:
        assert (DEPLOY / "crds" / name).read_bytes() == (CHART / "crds" / name).read_bytes(), name


def test_chart_kind_table_matches_the_webhook() -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    block = re.search(r'define "readiness.kindTable" -}}\n(.*?)\n{{- end', helpers, re.S)
    assert block is not None
    table = yaml.safe_load(block.group(1))
    assert {k: (v["group"], v["version"], v["plural"]) for k, v in table.items()} == dict(RESOURCES)


def test_rbac_has_no_wildcards_and_no_secrets() -> None:
    text = (CHART / "templates" / "rbac.yaml").read_text()
    assert "*" not in text
    assert "secrets" not in text


def _rendered() -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all((DEPLOY / "readiness-operator.yaml").read_text()) if d]


def test_deploy_webhook_configuration_matches_the_managed_one() -> None:
    (config,) = [d for d in _rendered() if d["kind"] == "ValidatingWebhookConfiguration"]
    (hook,) = config["webhooks"]
    expected = validating_webhook(WebhookSettings(operator_namespace="readiness-system"), {},
                                  config["metadata"]["name"])
    for key in ("name", "rules", "failurePolicy", "sideEffects", "timeoutSeconds", "matchPolicy",
                "namespaceSelector", "admissionReviewVersions"):
        assert hook[key] == expected[key], key
    assert hook["clientConfig"]["service"]["path"] == "/readiness"


def test_deploy_replicas_have_distinct_peering_priorities() -> None:
    (workload,) = [d for d in _rendered() if d["kind"] == "StatefulSet"]
    env = {e["name"]: e for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["READINESS_PRIORITY"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['apps.kubernetes.io/pod-index']"
    assert env["READINESS_PEERING"]["value"]
