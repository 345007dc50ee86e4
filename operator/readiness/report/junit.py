"""JUnit XML for CI test reports (Jenkins, GitLab): one testsuite per policy, one testcase per
workload x check. Findings at or above --fail-on are failures carrying the messages; findings below it
pass with the message in system-out (so the test report agrees with the exit code); exempted checks
are skipped with the reason. Input errors form their own testsuite of errored cases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from readiness.engine import Evaluation, Finding
from readiness.report import RenderOptions
from readiness.report.model import AuditResult, WorkloadResult


def render(result: AuditResult, options: RenderOptions) -> str:
    root = ET.Element("testsuites", name="readiness")
    suites = {policy: ET.SubElement(root, "testsuite", name=policy) for policy in result.policies}
    for workload in result.workloads:
        for evaluation in workload.evaluations:
            _cases(suites[evaluation.policy], workload, evaluation, options)
    if result.errors:
        errors = ET.SubElement(root, "testsuite", name="input")
        for error in result.errors:
            case = ET.SubElement(errors, "testcase", classname="input", name=str(error))
            ET.SubElement(case, "error", message=error.message, type="InputError").text = str(error)
    for suite in root:
        _count(suite)
    _count(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _cases(suite: ET.Element, workload: WorkloadResult, evaluation: Evaluation,
           options: RenderOptions) -> None:
    findings: dict[str, list[Finding]] = defaultdict(list)
    for finding in evaluation.findings:
        findings[finding.check].append(finding)
    exempted = {x.finding.check: x for x in evaluation.exempted}
    doc = workload.document
    for check_id in evaluation.checks_run:
        case = ET.SubElement(suite, "testcase", name=check_id, classname=str(workload.workload.ref),
                             file=doc.source, line=str(doc.line))
        failed = findings.get(check_id, [])
        threshold = options.fail_on
        if failed and threshold is not None and max(f.severity.rank for f in failed) >= threshold.rank:
            text = "\n".join(f"{doc.source}:{workload.line_of(f)}: [{f.severity}] {f.message}"
                             for f in failed)
            failure = ET.SubElement(case, "failure", message=failed[0].message, type=failed[0].severity.value)
            failure.text = text
        elif failed:
            ET.SubElement(case, "system-out").text = "\n".join(f"[{f.severity}] {f.message}" for f in failed)
        elif check_id in exempted:
            ET.SubElement(case, "skipped", message=f"exempted: {exempted[check_id].reason}")


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
