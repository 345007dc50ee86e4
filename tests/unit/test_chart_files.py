"""Files the chart and deploy/ copy from the repository stay identical, and the chart agrees with the
webhook module on what it registers. Pure file checks, no helm (tests/cluster/test_chart.py renders)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from readiness.peering import IDENTITY_VARIABLES, PRIORITY_FROM_ENV, priority_from_environ, priority_of
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


def test_deploy_is_a_deployment_whose_replicas_derive_distinct_priorities() -> None:
    (workload,) = [d for d in _rendered() if d["kind"] in ("Deployment", "StatefulSet")]
    assert workload["kind"] == "Deployment" and workload["spec"]["replicas"] == 2
    env = {e["name"]: e for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "READINESS_PRIORITY" not in env, "one value for every replica: Kopf would freeze them all"
    source = env[PRIORITY_FROM_ENV]["value"]
    assert source in IDENTITY_VARIABLES
    assert env[source]["valueFrom"]["fieldRef"]["fieldPath"] == {"POD_UID": "metadata.uid",
                                                                 "POD_NAME": "metadata.name"}[source]
    assert env["READINESS_PEERING"]["value"]


def test_deploy_budget_and_spread_never_block_a_drain() -> None:
    (budget,) = [d for d in _rendered() if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"].get("maxUnavailable") == 1 or budget["spec"].get("minAvailable") == 1
    (workload,) = [d for d in _rendered() if d["kind"] == "Deployment"]
    spread = workload["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread and {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}


def test_the_controller_derives_its_priority_from_the_pod() -> None:
    """The chart relies on `python -m readiness.controller` honouring READINESS_PRIORITY_FROM."""
    from readiness.controller import settings as operator_settings
    from readiness.controller.__main__ import parser

    uids = ("0b6f7c1e-1111-4c3b-9d55-2f6a3e4b5c6d", "5d1e2f3a-2222-4b4c-8e66-7a8b9c0d1e2f")
    priorities = {
        operator_settings.from_args(parser().parse_args(["--peering", "p"]), environ={
            "READINESS_PRIORITY_FROM": "POD_UID", "POD_UID": uid}).priority
        for uid in uids
    }
    assert priorities == {priority_of(uid) for uid in uids}


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, None),
    ({"READINESS_PRIORITY_FROM": "POD_UID", "POD_UID": "abc"}, int(
        "ba7816bf", 16)),  # sha256("abc") starts ba7816bf
    ({"READINESS_PRIORITY_FROM": "POD_NAME", "POD_NAME": "abc"}, int("ba7816bf", 16)),
])
def test_priority_from_environ(environ: dict[str, str], expected: int | None) -> None:
    assert priority_from_environ(environ) == expected


@pytest.mark.parametrize(("environ", "message"), [
    ({"READINESS_PRIORITY_FROM": "HOSTNAME"}, "expected one of POD_UID, POD_NAME"),
    ({"READINESS_PRIORITY_FROM": "POD_UID"}, "$POD_UID is empty"),
])
def test_priority_from_environ_rejects_bad_settings(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        priority_from_environ(environ)


def test_priorities_are_distinct_and_32_bit() -> None:
    values = {priority_of(f"pod-{i}") for i in range(1000)}
    assert len(values) == 1000 and all(0 <= v < 2**32 for v in values)
