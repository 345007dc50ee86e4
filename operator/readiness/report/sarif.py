"""SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps): one rule per check, one result per
finding, located at the container's `name:` line when the finding names a container.

Exempted findings are kept as results with an external suppression carrying the reason, so the UI
shows them as dismissed rather than forgetting them. `partialFingerprints` identify a finding by policy,
check, workload and container (not by line), so moving a manifest around does not reopen alerts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from readiness import __version__
from readiness.checks.base import Check, Severity
from readiness.engine import Finding
from readiness.report import RenderOptions
from readiness.report.common import PLACEHOLDER, items_at_depth, relative_uri, spliced
from readiness.report.model import NOTHING_JUDGED, AuditResult, Piece, WorkloadResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DOCS_BASE = "https://github.com/readiness-operator/readiness-operator/blob/main/docs/checks/"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
FINGERPRINT = "readinessFinding/v1"


FORMAT = "sarif"


def render(result: AuditResult, options: RenderOptions) -> str:
    return b"".join(render_chunks(result, options)).decode()


def rule_index(checks: list[Check[Any]]) -> dict[str, int]:
    """Check id -> its rule's position in `runs[0].tool.driver.rules` (a result's `ruleIndex`)."""
    return {check.id: i for i, check in enumerate(checks)}


RESULT_DEPTH = 4
"""A result's depth in the log (`{"runs": [{"results": [result]}]}`)."""


def render_chunks(result: AuditResult, options: RenderOptions) -> list[Piece]:
    """The log in pieces that concatenate to it: the document around the results, and each workload's
    results (rendered ahead by the process that judged it, in a parallel audit)."""
    index = rule_index(result.checks)
    parts = [ahead if (ahead := workload.prerendered_as(FORMAT)) is not None else entry_bytes(workload, index)
             for workload in result.workloads]
    if not any(parts):
        return [orjson.dumps(document(result, [], options), option=orjson.OPT_INDENT_2) + b"\n"]
    skeleton = orjson.dumps(document(result, [PLACEHOLDER], options), option=orjson.OPT_INDENT_2) + b"\n"
    return spliced(skeleton, parts, RESULT_DEPTH)


def entry_bytes(workload: WorkloadResult, index: dict[str, int]) -> bytes:
    """One workload's results, rendered as they sit in the log (b"" when it has none)."""
    return items_at_depth(_results(workload, index), RESULT_DEPTH)


def _results(workload: WorkloadResult, index: dict[str, int]) -> list[dict[str, Any]]:
    results = [_result(workload, policy, finding, index) for policy, finding in workload.findings]
    for policy, exempted in workload.exempted:
        entry = _result(workload, policy, exempted.finding, index)
        entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                  "justification": exempted.reason}]
        results.append(entry)
    return results


def document(result: AuditResult, results: list[Any] | None = None,
             options: RenderOptions | None = None) -> dict[str, Any]:
    """The log as one object; `results` stands in for the results when given."""
    if results is None:
        index = rule_index(result.checks)
        results = [r for workload in result.workloads for r in _results(workload, index)]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "readiness", "version": __version__, "semanticVersion": __version__,
                "informationUri": "https://github.com/readiness-operator/readiness-operator",
                "rules": [_rule(check) for check in result.checks],
            }},
            "invocations": [_invocation(result, options)],
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The working directory."}}},
            "results": results,
        }],
    }


def _rule(check: Check[Any]) -> dict[str, Any]:
    return {
        "id": check.id,
        "name": "".join(part.capitalize() for part in check.id.split("-")),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": check.rationale},
        "help": {"text": check.remediation, "markdown": check.remediation},
        "helpUri": f"{DOCS_BASE}{check.id}.md",
        "defaultConfiguration": {"level": LEVELS[check.severity]},
        "properties": {"category": check.category.value, "tags": ["kubernetes", check.category.value]},
    }


def _result(workload: WorkloadResult, policy: str, finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    ref = workload.workload.ref
    identity = f"{policy}|{finding.check}|{ref.kind}|{ref.namespace}|{ref.name}|{finding.container or ''}"
    entry: dict[str, Any] = {
        "ruleId": finding.check,
        "level": LEVELS[finding.severity],
        "message": {"text": f"{ref}: {finding.message}"},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": relative_uri(workload.document.source), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": workload.line_of(finding)},
            },
            "logicalLocations": [{"name": ref.name, "fullyQualifiedName": str(ref), "kind": "object"}],
        }],
        "partialFingerprints": {FINGERPRINT: hashlib.sha256(identity.encode()).hexdigest()[:32]},
        "properties": {"policy": policy, "category": finding.category.value,
                       "container": finding.container},
    }
    if finding.check in index:
        entry["ruleIndex"] = index[finding.check]
    return entry


def _invocation(result: AuditResult, options: RenderOptions | None) -> dict[str, Any]:
    """Input errors (level error), then the run's notices and the workloads' notices (warning); "nothing
    was judged" is an error, and an unsuccessful execution, unless --allow-empty."""
    allow_empty = options is not None and options.allow_empty
    empty = result.nothing_judged() is not None and not allow_empty
    notifications = [{
        "level": "error",
        "message": {"text": error.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": relative_uri(error.source), "uriBaseId": "%SRCROOT%"},
            **({"region": {"startLine": error.line}} if error.line else {}),
        }}],
    } for error in result.errors]
    for notice in result.notices():
        level = "error" if notice.startswith(NOTHING_JUDGED) and not allow_empty else "warning"
        notifications.append({"level": level, "message": {"text": notice}})
    for workload in result.workloads:
        notifications += _workload_notices(workload)
    return {"executionSuccessful": not result.errors and not empty,
            "toolExecutionNotifications": notifications}


def _workload_notices(workload: WorkloadResult) -> list[dict[str, Any]]:
    """A workload's notices (an exemption annotation ignored...), located at the workload."""
    ref = workload.workload.ref
    location = {"physicalLocation": {
        "artifactLocation": {"uri": relative_uri(workload.document.source), "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": workload.document.line},
    }}
    return [{"level": "warning", "message": {"text": f"{ref}: {notice}"}, "locations": [location],
             "properties": {"policy": e.policy}}
            for e in workload.evaluations for notice in e.notices]
