"""SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps): one rule per check, one result per
finding, located at the container's `name:` line when the finding names a container.

Exempted findings are kept as results with an external suppression carrying the reason, so the UI
shows them as dismissed rather than forgetting them. `partialFingerprints` identify a finding by policy,
check, workload and container (not by line), so moving a manifest around does not reopen alerts.

Locations follow GitHub code scanning: uris relative to `%SRCROOT%` (--sarif-root, default the working
directory, given in `originalUriBaseIds` as a `file://` uri), absolute `file://` uris for files outside it,
and for standard input no physical location at all (there is no file to annotate): the workload as a
logical location, the line in the location's message. Rules of security checks carry the `security` tag
and a `security-severity`, which GitHub shows as critical, high, medium or low.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson

from readiness import __version__
from readiness.checks.base import Check, Severity
from readiness.engine import Finding
from readiness.loader import SkippedInput, from_cluster
from readiness.report import RenderOptions
from readiness.report.common import PLACEHOLDER, SRCROOT, artifact_uri, items_at_depth, root_uri, spliced
from readiness.report.model import NOTHING_JUDGED, AuditResult, Piece, WorkloadResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DOCS_BASE = "https://github.com/readiness-operator/readiness-operator/blob/main/docs/checks/"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
FINGERPRINT = "readinessFinding/v1"

SECURITY_SEVERITY: dict[str, float] = {
    # Pod Security Standards "baseline" violations: each one hands a container part of the node
    "privileged-container": 9.4,  # critical: every device and capability of the node, an escape away
    "host-namespaces": 8.6,  # high: hostPID sees and signals the node's processes, hostNetwork its traffic
    "dangerous-capabilities": 8.2,  # high: SYS_ADMIN, NET_ADMIN... are most of root on the node
    "proc-mount": 7.2,  # high: an unmasked /proc exposes the node's kernel interfaces
    "host-path-volume": 7.0,  # high: a writable hostPath is the node's filesystem
    "host-port": 5.0,  # medium: a port on the node's address, outside NetworkPolicy's reach
    # "restricted" violations: hardening that limits what a compromised container can do next
    "run-as-root": 6.5,
    "privilege-escalation-allowed": 6.0,
    "capabilities-not-dropped": 4.5,
    "seccomp-profile-missing": 4.0,
    "writable-root-filesystem": 3.5,  # low
    "service-account-token-automount": 3.0,  # low: an API credential the pod may not need
    # not in the security category, but a credential: in the manifest, in git, readable with the workload
    "secret-in-env": 7.5,
}
"""GitHub's `security-severity` of each security check's rule (0.0-10.0: over 9.0 critical, 7.0-8.9 high,
4.0-6.9 medium, below 4.0 low): the harm when the finding is exploited, whatever severity a policy gives
the check (GitHub reads it from the rule, never from a result). Every security-category check has one."""


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
    root = sarif_root(options)
    parts = [ahead if (ahead := workload.prerendered_as(FORMAT)) is not None
             else entry_bytes(workload, index, root) for workload in result.workloads]
    if not any(parts):
        return [orjson.dumps(document(result, [], options), option=orjson.OPT_INDENT_2) + b"\n"]
    skeleton = orjson.dumps(document(result, [PLACEHOLDER], options), option=orjson.OPT_INDENT_2) + b"\n"
    return spliced(skeleton, parts, RESULT_DEPTH)


def sarif_root(options: RenderOptions | None) -> str:
    """The absolute directory that relative uris start from (--sarif-root, else the working directory)."""
    root = options.sarif_root if options is not None else None
    return os.path.abspath(root or os.getcwd())


def entry_bytes(workload: WorkloadResult, index: dict[str, int], root: str) -> bytes:
    """One workload's results, rendered as they sit in the log (b"" when it has none)."""
    return items_at_depth(_results(workload, index, root), RESULT_DEPTH)


def _results(workload: WorkloadResult, index: dict[str, int], root: str) -> list[dict[str, Any]]:
    results = [_result(workload, policy, finding, index, root) for policy, finding in workload.findings]
    for policy, exempted in workload.exempted:
        entry = _result(workload, policy, exempted.finding, index, root)
        entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                  "justification": exempted.reason}]
        results.append(entry)
    return results


def document(result: AuditResult, results: list[Any] | None = None,
             options: RenderOptions | None = None) -> dict[str, Any]:
    """The log as one object; `results` stands in for the results when given."""
    root = sarif_root(options)
    if results is None:
        index = rule_index(result.checks)
        results = [r for workload in result.workloads for r in _results(workload, index, root)]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "readiness", "version": __version__, "semanticVersion": __version__,
                "informationUri": "https://github.com/readiness-operator/readiness-operator",
                "rules": [_rule(check) for check in result.checks],
            }},
            "invocations": [_invocation(result, options, root)],
            "originalUriBaseIds": {SRCROOT: {
                "uri": root_uri(root),
                "description": {"text": "The directory relative uris start from: --sarif-root, default the "
                                        "working directory (the repository's root, for code scanning)."},
            }},
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
        "properties": _rule_properties(check),
    }


def _rule_properties(check: Check[Any]) -> dict[str, Any]:
    tags = ["kubernetes", check.category.value]
    properties: dict[str, Any] = {"category": check.category.value, "tags": tags}
    security = SECURITY_SEVERITY.get(check.id)
    if security is not None:
        if "security" not in tags:
            tags.append("security")
        properties["security-severity"] = f"{security:.1f}"
    return properties


def location(source: str, line: int | None, root: str,
             logical: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A SARIF location: the file and line (see `artifact_uri`), or for standard input only the line,
    in the location's message (GitHub rejects a physical location without a uri); for an object of a live
    cluster (`readiness audit --cluster`) its `cluster:NAMESPACE/KIND/NAME` there."""
    where: dict[str, Any] = {}
    artifact = artifact_uri(source, root)
    if artifact is None and from_cluster(source):  # an object of a live cluster: no file, its name
        where["message"] = {"text": source}
    elif artifact is None:
        where["message"] = {"text": f"standard input, line {line}" if line else "standard input"}
    else:
        uri, base = artifact
        artifact_location = {"uri": uri, "uriBaseId": base} if base else {"uri": uri}
        physical: dict[str, Any] = {"artifactLocation": artifact_location}
        if line:
            physical["region"] = {"startLine": line}
        where["physicalLocation"] = physical
    if logical:
        where["logicalLocations"] = logical
    return where


def _result(workload: WorkloadResult, policy: str, finding: Finding, index: dict[str, int],
            root: str) -> dict[str, Any]:
    ref = workload.workload.ref
    identity = f"{policy}|{finding.check}|{ref.kind}|{ref.namespace}|{ref.name}|{finding.container or ''}"
    logical = [{"name": ref.name, "fullyQualifiedName": str(ref), "kind": "object"}]
    entry: dict[str, Any] = {
        "ruleId": finding.check,
        "level": LEVELS[finding.severity],
        "message": {"text": f"{ref}: {finding.message}"},
        "locations": [location(workload.document.source, workload.line_of(finding), root, logical)],
        "partialFingerprints": {FINGERPRINT: hashlib.sha256(identity.encode()).hexdigest()[:32]},
        "properties": {"policy": policy, "category": finding.category.value,
                       "container": finding.container},
    }
    if finding.check in index:
        entry["ruleIndex"] = index[finding.check]
    return entry


def _invocation(result: AuditResult, options: RenderOptions | None, root: str) -> dict[str, Any]:
    """Input errors (level error), then the run's notices and the workloads' notices (warning); "nothing
    was judged" is an error, and an unsuccessful execution, unless --allow-empty."""
    allow_empty = options is not None and options.allow_empty
    empty = result.nothing_judged() is not None and not allow_empty
    notifications = [{
        "level": "error",
        "message": {"text": error.message},
        "locations": [location(error.source, error.line, root)],
    } for error in result.errors]
    for notice in result.notices():
        level = "error" if notice.startswith(NOTHING_JUDGED) and not allow_empty else "warning"
        notifications.append({"level": level, "message": {"text": notice}})
    for workload in result.workloads:
        notifications += _workload_notices(workload, root)
    notifications += [_skipped_notice(skipped) for skipped in result.skipped_files]
    invocation: dict[str, Any] = {"executionSuccessful": not result.errors and not empty,
                                  "toolExecutionNotifications": notifications}
    if result.skipped_files:
        invocation["properties"] = {"skippedFiles": result.skipped_file_count()}
    return invocation


def _skipped_notice(skipped: SkippedInput) -> dict[str, Any]:
    """A file of a directory walk that holds no Kubernetes object (a note: nothing is wrong with it; no
    location, since nothing in it is to be looked at, and a chart is a folder)."""
    return {"level": "note", "message": {"text": str(skipped)}, "properties": {"files": skipped.files}}


def _workload_notices(workload: WorkloadResult, root: str) -> list[dict[str, Any]]:
    """A workload's notices (an exemption annotation ignored...), located at the workload."""
    ref = workload.workload.ref
    at = location(workload.document.source, workload.document.line, root)
    return [{"level": "warning", "message": {"text": f"{ref}: {notice}"}, "locations": [at],
             "properties": {"policy": e.policy}}
            for e in workload.evaluations for notice in e.notices]
