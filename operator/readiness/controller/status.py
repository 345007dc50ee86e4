"""A policy's status, computed purely from the latest verdicts held in memory."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from readiness.checks.base import Severity
from readiness.engine import Evaluation, Finding
from readiness.policy import MAX_TOP_OFFENDERS, ReadinessPolicyStatus
from readiness.workload import WorkloadRef

OFFENDER_CHECKS = 5
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)
"""All three always in bySeverity, zeros included: `kubectl get -o wide` shows 0, not <none>."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worst_checks(findings: Iterable[Finding]) -> list[tuple[str, Severity, int]]:
    """(check, its most severe finding's severity, its findings), most severe first, then the most
    findings, then by id: errors never hide behind warnings that sort first alphabetically."""
    severity: dict[str, Severity] = {}
    count: Counter[str] = Counter()
    for finding in findings:
        count[finding.check] += 1
        known = severity.get(finding.check)
        if known is None or finding.severity.rank > known.rank:
            severity[finding.check] = finding.severity
    return sorted(((check, severity[check], n) for check, n in count.items()),
                  key=lambda item: (-item[1].rank, -item[2], item[0]))


def _offender(ref: WorkloadRef, result: Evaluation, counts: tuple[int, int, int]) -> dict[str, Any]:
    checks = [check for check, _severity, _n in worst_checks(result.findings)[:OFFENDER_CHECKS]]
    return {"namespace": ref.namespace, "kind": ref.kind, "name": ref.name,
            "errors": counts[0], "warnings": counts[1], "infos": counts[2], "checks": checks}


Rank = tuple[int, int, int, str, str, str]
"""Worst first: most errors, then warnings, then infos; then by namespace, kind and name."""


def _exemption_key(ref: WorkloadRef, source: str) -> str:
    # A policy exemption is one object however many workloads it covers; an annotation is per workload.
    return f"{source}@{ref}" if source == "annotation" else source


def summarize(results: Mapping[WorkloadRef, Evaluation]) -> dict[str, Any]:
    """summary, topOffenders and exemptions, in the CRD's camelCase. Runs on every status flush over
    every matched workload, so only the offenders that make the list are built (a heap, not a sort)."""
    by_severity: Counter[str] = Counter()
    checks: dict[str, list[Any]] = {}  # check id -> [most severe, violating workloads, findings]
    ranked: list[tuple[Rank, WorkloadRef, Evaluation, tuple[int, int, int]]] = []
    active: set[str] = set()
    expired: set[str] = set()
    for ref, result in results.items():
        if result.findings:
            severities = Counter(f.severity for f in result.findings)
            by_severity.update({str(severity): n for severity, n in severities.items()})
            _count_checks(checks, result.findings)
            counts = (severities[Severity.ERROR], severities[Severity.WARNING], severities[Severity.INFO])
            rank = (-counts[0], -counts[1], -counts[2], ref.namespace, ref.kind, ref.name)
            ranked.append((rank, ref, result, counts))
        if result.exempted:
            active.update(_exemption_key(ref, e.source) for e in result.exempted)
        if result.expired_exemptions:
            expired.update(_exemption_key(ref, e.source) for e in result.expired_exemptions)
    violating = len(ranked)
    top = heapq.nsmallest(MAX_TOP_OFFENDERS, ranked, key=itemgetter(0))
    return {
        "summary": {"matched": len(results), "compliant": len(results) - violating, "violating": violating,
                    "bySeverity": {str(s): by_severity[str(s)] for s in SEVERITIES},
                    "checks": _check_counts(checks)},
        "topOffenders": [_offender(ref, result, counts) for _rank, ref, result, counts in top],
        "exemptions": {"active": len(active), "expired": len(expired)},
    }


def _count_checks(checks: dict[str, list[Any]], findings: Iterable[Finding]) -> None:
    for check, severity, n in worst_checks(findings):
        counted = checks.setdefault(check, [severity, 0, 0])
        if severity.rank > counted[0].rank:
            counted[0] = severity
        counted[1] += 1
        counted[2] += n


def _check_counts(checks: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """summary.checks: most severe first, then the most violating workloads, then by id."""
    ordered = sorted(checks.items(), key=lambda item: (-item[1][0].rank, -item[1][1], item[0]))
    return [{"check": check, "severity": str(severity), "violating": violating, "findings": findings}
            for check, (severity, violating, findings) in ordered]


def condition(type_: str, ok: bool, reason: str, message: str, generation: int | None,
              previous: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A condition whose lastTransitionTime moves only when its status does."""
    status = "True" if ok else "False"
    old = next((c for c in previous or () if c.get("type") == type_), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else None
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since or now_rfc3339(), "observedGeneration": generation}


def valid_status(summary: dict[str, Any], rules: Mapping[str, str], generation: int | None,
                 audit_time: str | None, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    previous_conditions = list((previous or {}).get("conditions") or ())
    matched = summary["summary"]["matched"]
    # Ready: compiled and audited with. Before the first audit (a new policy), the counts are partial.
    ready = ("Audited", f"{matched} workloads audited") if audit_time else (
        "Pending", "compiled; waiting for the first audit")
    status = {
        "observedGeneration": generation,
        "lastAuditTime": audit_time,
        "conditions": [
            condition("Ready", audit_time is not None, *ready, generation, previous_conditions),
            condition("Valid", True, "Valid", "", generation, previous_conditions),
        ],
        **summary,
        "rules": dict(rules),
    }
    return _checked(status)


def invalid_status(error: str, generation: int | None, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    previous_conditions = list((previous or {}).get("conditions") or ())
    return _checked({
        "observedGeneration": generation,
        "lastAuditTime": (previous or {}).get("lastAuditTime"),
        "conditions": [
            condition("Ready", False, "InvalidSpec", f"not enforced: {error}", generation,
                      previous_conditions),
            condition("Valid", False, "InvalidSpec", error, generation, previous_conditions),
        ],
        "summary": {"matched": 0, "compliant": 0, "violating": 0,
                    "bySeverity": {str(s): 0 for s in SEVERITIES}, "checks": []},
        "topOffenders": [],
        "exemptions": {"active": 0, "expired": 0},
        "rules": {"kind": "", "namespace": "", "name": ""},
    })


def _checked(status: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through the status model: a field-name drift fails in unit tests, not in the cluster."""
    model = ReadinessPolicyStatus.model_validate(status)
    return model.model_dump(by_alias=True, mode="json")


def merge_patch(previous: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """`desired` as a JSON merge patch over `previous` (RFC 7386): a merge patch never deletes a map key
    it leaves out, so keys that disappeared (`summary.byCheck`, written by older versions) are sent as
    null. Lists are replaced whole by a merge patch and need nothing."""
    patch: dict[str, Any] = dict(desired)
    for key, old in (previous or {}).items():
        new = desired.get(key)
        if key not in desired:
            patch[key] = None
        elif isinstance(old, Mapping) and isinstance(new, Mapping):
            patch[key] = merge_patch(old, new)
    return patch


def comparable(status: Mapping[str, Any] | None) -> Any:
    """The status without the fields that move on their own (times), to decide whether to write."""
    if not status:
        return None
    try:  # normalise: the API server drops nulls we sent, which must not look like a change
        status = _checked(dict(status))
    except ValueError:
        return None
    stripped = {k: v for k, v in status.items() if k != "lastAuditTime"}
    stripped["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                              for c in status.get("conditions") or ()]
    return stripped
