"""Issue 11, item 3: workload exemption annotations (`readiness.dev/exempt`, `-reason`, `-until`).

The offline CLI's built-in policy honours them (the reason required); a policy with
`allowWorkloadExemptions: false` ignores them, and every shell says so and why: each CLI format (run as
users run it, a subprocess, on the real example), the admission warning, and the operator's annotation."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from readiness.controller import output
from readiness.controller.auditor import Auditor
from readiness.controller.handlers import Runtime, index_policy, index_workload
from readiness.controller.settings import OperatorSettings
from readiness.engine import EXEMPT_ANNOTATION, EXEMPT_REASON_ANNOTATION, Engine
from readiness.metrics import ReadinessMetrics
from readiness.policy import ReadinessPolicy
from readiness.webhook import review
from readiness.workload import KindRegistry, WorkloadRef

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workloads" / "non-compliant" / "web-deployment.yaml"
PRODUCTION = ROOT / "examples" / "policies" / "production.yaml"
REF = WorkloadRef("Deployment", "shop", "legacy-web")
REASON = "Legacy image, replaced in SHOP-42"
IGNORED = f"{EXEMPT_ANNOTATION} ignored: policy production has allowWorkloadExemptions: false"
NEEDS_REASON = f"{EXEMPT_ANNOTATION} ignored: {EXEMPT_REASON_ANNOTATION} is required"


def annotated(reason: str | None = REASON) -> dict[str, Any]:
    """The real example, its owner exempting it from two checks."""
    body = yaml.safe_load(EXAMPLE.read_text())
    annotations = {EXEMPT_ANNOTATION: "readiness-probe-missing,run-as-root"}
    if reason is not None:
        annotations[EXEMPT_REASON_ANNOTATION] = reason
    body["metadata"]["annotations"] = annotations
    return dict(body)


def audit(tmp_path: Path, body: dict[str, Any], output_format: str, *args: str,
          ) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(yaml.safe_dump(body, sort_keys=False))
    return subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-f", str(manifest),
                           "-o", output_format, *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)


def said_everywhere(tmp_path: Path, body: dict[str, Any], notice: str, *args: str) -> dict[str, Any]:
    """Assert that `notice` is in the text, JSON, SARIF and JUnit reports; return the JSON report."""
    text = audit(tmp_path, body, "text", *args).stdout
    assert f"note: {notice}" in text, text
    data = json.loads(audit(tmp_path, body, "json", *args).stdout)
    assert notice in data["workloads"][0]["notices"]
    sarif = json.loads(audit(tmp_path, body, "sarif", *args).stdout)
    notifications = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert f"{REF}: {notice}" in [n["message"]["text"] for n in notifications]
    junit = ET.fromstring(audit(tmp_path, body, "junit", *args).stdout)
    outs = [suite.findtext("system-out") or "" for suite in junit.iter("testsuite")]
    assert any(f"{REF}: {notice}" in out for out in outs), outs
    return dict(data)


def test_builtin_policy_honours_an_annotation_with_a_reason(tmp_path: Path) -> None:
    data = json.loads(audit(tmp_path, annotated(), "json").stdout)
    workload = data["workloads"][0]
    waived = {(x["check"], x["source"], x["reason"]) for x in workload["exempted"]}
    assert waived == {("readiness-probe-missing", "annotation", REASON),
                      ("run-as-root", "annotation", REASON)}
    assert not {"readiness-probe-missing", "run-as-root"} & {f["check"] for f in workload["findings"]}
    assert data["summary"]["exempted"] == 2
    text = audit(tmp_path, annotated(), "text").stdout
    assert f"- exempt  readiness-probe-missing: container web has no readinessProbe ({REASON}; annotation)" \
        in text


def test_builtin_policy_requires_the_reason_and_says_so(tmp_path: Path) -> None:
    data = said_everywhere(tmp_path, annotated(reason=None), NEEDS_REASON)
    assert not data["workloads"][0]["exempted"]


def test_policy_without_workload_exemptions_says_it_ignored_them(tmp_path: Path) -> None:
    data = said_everywhere(tmp_path, annotated(), IGNORED, "-p", str(PRODUCTION),
                           "--namespace-labels", "shop:env=prod")
    workload = data["workloads"][0]
    assert not workload["exempted"]
    assert {"readiness-probe-missing", "run-as-root"} <= {f["check"] for f in workload["findings"]}


def test_ignored_even_on_a_compliant_workload(tmp_path: Path) -> None:
    body = yaml.safe_load((ROOT / "examples" / "workloads" / "compliant" / "cronjob.yaml").read_text())
    body["metadata"]["annotations"] = {EXEMPT_ANNOTATION: "*", EXEMPT_REASON_ANNOTATION: REASON}
    policy = PRODUCTION.read_text().replace("kinds: [Deployment,", "kinds: [CronJob, Deployment,")
    policy_file = tmp_path / "production.yaml"
    policy_file.write_text(policy)
    text = audit(tmp_path, body, "text", "-p", str(policy_file),
                 "--namespace-labels", "billing:env=prod").stdout
    assert "✓ CronJob billing/" in text and f"note: {IGNORED}" in text


def production_engine(enforcement: str) -> Engine:
    document = yaml.safe_load(PRODUCTION.read_text())
    document["spec"]["enforcement"] = enforcement
    return Engine(ReadinessPolicy.model_validate(document))


def test_admission_warning_says_the_annotation_was_ignored_and_why() -> None:
    now = datetime.now(UTC)
    for enforcement in ("warn", "deny"):
        verdict = review([production_engine(enforcement)], annotated(), {"env": "prod"}, "CREATE", now)
        assert f"[production] Deployment/legacy-web: {IGNORED}" in verdict.warnings, verdict
    verdict = review([production_engine("deny")], annotated(), {"env": "prod"}, "CREATE", now)
    assert not verdict.allowed and "run-as-root" in verdict.message  # still denied: the annotation is ignored


def test_operator_writes_the_notice_on_the_workload() -> None:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    state = runtime.state
    body = annotated()
    body["metadata"].update(uid="uid-web", generation=1)
    state.workloads.update(index_workload(runtime, body, "deployments"))
    document = yaml.safe_load(PRODUCTION.read_text())
    document["metadata"].update(uid="uid-production", generation=1)
    state.policies = {"production": [index_policy(document)["production"]]}
    state.namespaces = {"shop": [{"env": "prod"}]}
    auditor = Auditor(runtime.settings, state, ReadinessMetrics())
    verdicts = auditor.evaluate(state.workloads[REF])
    desired = output.desired_outputs(verdicts, runtime.settings.violations_max_bytes)
    assert json.loads(desired.annotations[output.NOTICES]) == [{"policy": "production", "notice": IGNORED}]
    # gone again once the annotation is removed: the merge patch deletes our key
    del body["metadata"]["annotations"]
    state.workloads.update(index_workload(runtime, body, "deployments"))
    cleared = output.desired_outputs(auditor.evaluate(state.workloads[REF]), 4096)
    assert output.NOTICES not in cleared.annotations
    assert output.merge_patch(desired, cleared) == {"metadata": {"annotations": {output.NOTICES: None}}}
