"""Renderers over one in-memory audit: score, JSON schema, SARIF suppressions, JUnit thresholds."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from readiness.checks.base import Severity
from readiness.engine import Engine
from readiness.loader import load_text
from readiness.policy import ReadinessPolicy
from readiness.report import RenderOptions, renderer
from readiness.report.model import AuditResult, audit, score

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: web
          image: web:1
---
kind: Service
metadata: {name: web}
"""


def result() -> AuditResult:
    policy = ReadinessPolicy.model_validate({"metadata": {"name": "p"}, "spec": {
        "match": {"kinds": ["Deployment"]},
        "exemptions": [{"names": ["web"], "checks": ["image-tag-mutable", "liveness-probe-missing"],
                        "reason": "pinned elsewhere"}]}})
    return audit(load_text(MANIFESTS, "m.yaml").documents, [Engine(policy)])


def test_score_formula() -> None:
    assert score(0, 0, 0) == 100
    assert score(8, 0, 0) == 100
    assert score(1, 2, 0) == 50  # 2*1 / (2*1 + 2)
    assert score(1, 0, 1) == 50  # 2*1 / (2*1 + 2*1)
    summary = result().summary()
    assert summary.exempted >= 1
    assert 0 <= summary.score < 100 and summary.workloads == 1 and summary.violating == 1


def test_json_and_text() -> None:
    audit_result = result()
    data = json.loads(renderer("json")(audit_result, RenderOptions()))
    (workload,) = data["workloads"]
    assert workload["exempted"][0]["reason"] == "pinned elsewhere"
    assert data["skipped"] == [{"kind": "Service", "count": 1}]
    text = renderer("text")(audit_result, RenderOptions(color=True))
    assert "\033[" in text and "1 Service" in text and "pinned elsewhere" in text


def test_sarif_keeps_exempted_findings_as_suppressed() -> None:
    data = json.loads(renderer("sarif")(result(), RenderOptions()))
    suppressed = [r for r in data["runs"][0]["results"] if r.get("suppressions")]
    assert suppressed and suppressed[0]["suppressions"][0]["justification"] == "pinned elsewhere"
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] == 8 for r in suppressed)


def test_junit_failures_follow_fail_on() -> None:
    strict = ET.fromstring(renderer("junit")(result(), RenderOptions(fail_on=Severity.WARNING)))
    lax = ET.fromstring(renderer("junit")(result(), RenderOptions(fail_on=Severity.ERROR)))
    never = ET.fromstring(renderer("junit")(result(), RenderOptions(fail_on=None)))
    assert int(strict.get("failures", "0")) > int(lax.get("failures", "0")) > 0
    assert never.get("failures") == "0"
    assert int(strict.get("skipped", "0")) >= 1
