"""Renderers over one in-memory audit: score, JSON schema, SARIF suppressions, JUnit thresholds."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from readiness.checks.base import Severity
from readiness.engine import Engine
from readiness.loader import load_text
from readiness.policy import ReadinessPolicy
from readiness.report import RenderOptions, renderer
from readiness.report.model import AuditResult, assumption_notice, audit, band_score

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


def test_score_formula() -> None:  # the bands and weights: tests/unit/test_score.py
    assert band_score(0, 0, 0) == 100
    assert band_score(8, 0, 0) == 100
    assert band_score(1, 2, 0) == 73  # warnings only: 60 + 39 * 1/3
    assert band_score(1, 0, 1) == 15  # an error: 59 * 1/(1 + 3)
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


def _element_tree_junit(audit_result: AuditResult, options: RenderOptions) -> str:
    """The JUnit renderer as it was written with ElementTree: the oracle of the text writer's layout."""
    from collections import defaultdict

    root = ET.Element("testsuites", name="readiness")
    suites = {policy: ET.SubElement(root, "testsuite", name=policy) for policy in audit_result.policies}
    for workload in audit_result.workloads:
        for evaluation in workload.evaluations:
            suite = suites[evaluation.policy]
            findings: dict[str, list[Any]] = defaultdict(list)
            for finding in evaluation.findings:
                findings[finding.check].append(finding)
            exempted = {x.finding.check: x for x in evaluation.exempted}
            doc = workload.document
            for check_id in evaluation.checks_run:
                case = ET.SubElement(suite, "testcase", name=check_id, classname=str(workload.workload.ref),
                                     file=doc.source, line=str(doc.line))
                failed = findings.get(check_id, [])
                limit = options.fail_on
                if failed and limit is not None and max(f.severity.rank for f in failed) >= limit.rank:
                    failure = ET.SubElement(case, "failure", message=failed[0].message,
                                            type=failed[0].severity.value)
                    failure.text = "\n".join(f"{doc.source}:{workload.line_of(f)}: [{f.severity}] {f.message}"
                                             for f in failed)
                elif failed:
                    ET.SubElement(case, "system-out").text = "\n".join(f"[{f.severity}] {f.message}"
                                                                       for f in failed)
                elif check_id in exempted:
                    ET.SubElement(case, "skipped", message=f"exempted: {exempted[check_id].reason}")
    notes = {policy: [assumption_notice(policy, ns) for p, ns in audit_result.assumed if p == policy]
             for policy in audit_result.policies}
    for workload in audit_result.workloads:
        for evaluation in workload.evaluations:
            notes[evaluation.policy] += [f"{workload.workload.ref}: {n}" for n in evaluation.notices]
    for policy, said in notes.items():
        if said:
            ET.SubElement(suites[policy], "system-out").text = "\n".join(said)
    empty = audit_result.nothing_judged()
    if audit_result.errors or empty:
        errors = ET.SubElement(root, "testsuite", name="input")
        for error in audit_result.errors:
            case = ET.SubElement(errors, "testcase", classname="input", name=str(error))
            ET.SubElement(case, "error", message=error.message, type="InputError").text = str(error)
        if empty:
            case = ET.SubElement(errors, "testcase", classname="input", name="nothing was judged")
            if options.allow_empty:
                ET.SubElement(case, "skipped", message=empty)
            else:
                ET.SubElement(case, "error", message=empty, type="NothingJudged").text = empty
    for element in [*root, root]:
        cases = list(element.iter("testcase"))
        element.set("tests", str(len(cases)))
        for name in ("failure", "error", "skipped"):
            element.set(name + "s" if name != "skipped" else name,
                        str(sum(1 for c in cases if c.find(name) is not None)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def test_junit_text_is_what_element_tree_wrote() -> None:
    from pathlib import Path

    from readiness.cli import read_policies
    from readiness.loader import InputError, load_paths

    root = Path(__file__).parents[2]
    loaded = load_paths([str(root / "examples" / "workloads")])
    engines = [Engine(p) for name in ("baseline", "production", "strict")
               for p in read_policies(str(root / "examples" / "policies" / f"{name}.yaml"))]
    results = [audit(loaded.documents, engines), result(), audit([], [])]
    results[0].errors.append(InputError('odd "file" <&>.yaml', 3, "bad\tvalue\r\nhere > there & 'so'"))
    results.append(audit([], [Engine(ReadinessPolicy.model_validate({"metadata": {"name": "empty"}}))]))
    for audit_result in results:
        for threshold in (None, Severity.INFO, Severity.WARNING, Severity.ERROR):
            for allow_empty in (False, True):
                options = RenderOptions(fail_on=threshold, allow_empty=allow_empty)
                assert renderer("junit")(audit_result, options) == _element_tree_junit(audit_result, options)


def _audit_of_examples() -> AuditResult:
    from pathlib import Path

    from readiness.report.model import audit as audit_documents

    root = Path(__file__).resolve().parents[2]
    documents = [d for path in sorted(root.glob("examples/workloads/**/*.yaml"))
                 for d in load_text(path.read_text(), str(path)).documents]
    return audit_documents(documents, [Engine.builtin()])


def test_reports_in_pieces_are_the_documents_rendered_whole() -> None:
    """JSON and SARIF are written in pieces (the entries rendered one by one, at their depth): the pieces
    must be exactly what orjson writes for the whole document, with and without findings."""
    import orjson

    from readiness.report import json as json_report
    from readiness.report import sarif

    for audit_result in (_audit_of_examples(), result(), AuditResult(["p"])):
        whole_json = orjson.dumps(json_report.document(audit_result),
                                  option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        assert b"".join(json_report.render_chunks(audit_result, RenderOptions())) == whole_json
        whole_sarif = orjson.dumps(sarif.document(audit_result), option=orjson.OPT_INDENT_2) + b"\n"
        assert b"".join(sarif.render_chunks(audit_result, RenderOptions())) == whole_sarif
