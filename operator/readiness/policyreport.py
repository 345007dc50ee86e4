"""wgpolicyk8s.io/v1alpha2 PolicyReports: our verdicts in the format Policy Reporter and others read.

    workload_report(ref, identity, judged, *, now=None, max_results=MAX_RESULTS, max_bytes=MAX_BYTES)
        -> dict | None

One PolicyReport per workload, as Kyverno writes them: `scope` names the workload (so Policy Reporter's
and `kubectl get polr`'s Kind and Name columns are filled), the report is owned by the workload (the
garbage collector deletes it with the workload) and named `readiness-<workload uid>` (Kyverno names its
own `<uid>`: the prefix keeps both apart). It holds one result per (policy, check) of every policy that
matched the workload:

- `fail`: the check has open findings. Its containers are in `properties.containers`, its first message
  in `message` (with a count of the others); `severity` maps ours: error -> high, warning -> medium,
  info -> low.
- `skip`: every finding of the check was exempted; `properties` give the exemption's reason, source
  (`policy:exemptions[i]` or `annotation`) and expiry.
- `error`: the check crashed on this workload (Evaluation.errors).
- `pass`: the check ran (Evaluation.checks_run) and none of the above holds.

Results carry no `resources`: the report's `scope` says which workload they are about, as in Kyverno's.
`identity` is anything with `api_version` and `uid` (a `Workload` fits); without a uid there is nothing
to own the report, and a cluster-scoped workload has no namespace for one: both give None.

Size: a report keeps at most `max_results` results and about `max_bytes` of them, dropping passes first,
then skips, then the least severe failures. A truncated report says so in its annotations
(`readiness.dev/truncated: "true"`, `readiness.dev/results-omitted`), while `summary` still counts every
result.

Determinism: results are sorted, so the same input gives the same output. Timestamps come from `now`, so
to decide whether a report must be written, compare the `readiness.dev/fingerprint` annotation, a hash of
everything but the timestamps.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from readiness.alerts import MANAGED_BY
from readiness.checks import CATALOG
from readiness.checks.base import Severity
from readiness.engine import Evaluation, Exempted, Finding
from readiness.policy import API_GROUP, ReadinessPolicy
from readiness.workload import BUILTIN_KINDS, WorkloadRef

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "readiness-operator"
MAX_RESULTS = 2000
MAX_BYTES = 500_000
"""A third of etcd's limit: leaves room for metadata, managedFields and a client's own additions."""
TRUNCATED_ANNOTATION = f"{API_GROUP}/truncated"
OMITTED_ANNOTATION = f"{API_GROUP}/results-omitted"
FINGERPRINT_ANNOTATION = f"{API_GROUP}/fingerprint"

REPORT_SEVERITY: Mapping[Severity, str] = {
    Severity.ERROR: "high",
    Severity.WARNING: "medium",
    Severity.INFO: "low",
}
"""Our severities on the PolicyReport scale (critical, high, medium, low, info)."""

_DEFAULT_API_VERSIONS = {k.kind: f"{k.group}/v1" if k.group else "v1" for k in BUILTIN_KINDS}
_DEFAULT_API_VERSIONS["Rollout"] = "argoproj.io/v1alpha1"
# Which results to keep first when a report must be cut: the ones a reader acts on.
_KEEP_ORDER = {"fail": 0, "error": 1, "skip": 2, "pass": 3}
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


class HasIdentity(Protocol):
    @property
    def api_version(self) -> str: ...

    @property
    def uid(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Limits:
    results: int
    bytes: int


REPORT_PREFIX = "readiness-"


def report_name(uid: str) -> str:
    return f"{REPORT_PREFIX}{uid}"


def workload_report(
    ref: WorkloadRef, identity: HasIdentity | None, judged: Iterable[tuple[ReadinessPolicy, Evaluation]],
    *, now: datetime | None = None, max_results: int = MAX_RESULTS, max_bytes: int = MAX_BYTES,
) -> dict[str, Any] | None:
    """The workload's PolicyReport over every (policy, its evaluation of the workload), or None when
    there is nothing to report, no namespace to put it in, or no uid to own it by."""
    judged = list(judged)
    if not (judged and ref.namespace and identity is not None and identity.uid):
        return None
    stamp = {"seconds": int((now or datetime.now(UTC)).timestamp()), "nanos": 0}
    results = [result for policy, evaluation in judged for result in _results(policy, evaluation, stamp)]
    return _report(_resource(ref, identity), identity.uid, results, _Limits(max_results, max_bytes))


# -- results ---------------------------------------------------------------------------------------------

def _resource(ref: WorkloadRef, identity: HasIdentity) -> dict[str, str]:
    return {
        "apiVersion": identity.api_version or _DEFAULT_API_VERSIONS.get(ref.kind, ""),
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
        "uid": identity.uid,
    }


def _configured_severity(policy: ReadinessPolicy, check_id: str) -> Severity:
    settings = getattr(policy.spec.checks, check_id.replace("-", "_"), None)
    if settings is not None and settings.severity is not None:
        return Severity(settings.severity)
    check = CATALOG.get(check_id)
    return check.severity if check is not None else Severity.WARNING


def _results(policy: ReadinessPolicy, evaluation: Evaluation, stamp: dict[str, int]) -> list[dict[str, Any]]:
    failing: dict[str, list[Finding]] = defaultdict(list)
    for finding in evaluation.findings:
        failing[finding.check].append(finding)
    exempted: dict[str, list[Exempted]] = defaultdict(list)
    for waived in evaluation.exempted:
        exempted[waived.finding.check].append(waived)
    crashed = {error.partition(":")[0]: error for error in evaluation.errors}
    results = []
    for check_id in sorted({*evaluation.checks_run, *failing, *exempted, *crashed}):
        if check_id in failing:
            result = _fail(failing[check_id])
        elif check_id in crashed:
            result = _base("error", _configured_severity(policy, check_id), crashed[check_id], {})
        elif check_id in exempted:
            result = _skip(exempted[check_id])
        else:
            result = _base("pass", _configured_severity(policy, check_id), "passed", {})
        result.update(policy=policy.name, rule=check_id, category=_category(check_id), timestamp=stamp)
        results.append(result)
    return results


def _category(check_id: str) -> str:
    check = CATALOG.get(check_id)
    return str(check.category) if check is not None else ""


def _base(outcome: str, severity: Severity, message: str, properties: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {"source": SOURCE, "result": outcome, "severity": REPORT_SEVERITY[severity],
                              "scored": True, "message": message}
    if properties:
        result["properties"] = properties
    return result


def _fail(findings: list[Finding]) -> dict[str, Any]:
    findings = sorted(findings, key=lambda f: (f.container or "", f.message))
    severity = max((f.severity for f in findings), key=lambda s: s.rank)
    message = findings[0].message
    if len(findings) > 1:
        message += f" (and {len(findings) - 1} more)"
    containers = [f.container for f in findings if f.container]
    return _base("fail", severity, message, {"containers": ",".join(containers)} if containers else {})


def _skip(waived: list[Exempted]) -> dict[str, Any]:
    first = sorted(waived, key=lambda w: (w.source, w.finding.container or ""))[0]
    properties = {"exemptionReason": first.reason, "exemptionSource": first.source}
    if first.expires is not None:
        properties["exemptionExpires"] = first.expires.isoformat()
    return _base("skip", first.finding.severity, f"exempted: {first.reason}", properties)


# -- reports ---------------------------------------------------------------------------------------------

def _sort_key(result: Mapping[str, Any]) -> tuple[str, str]:
    return (result["policy"], result["rule"])


def _keep_key(result: Mapping[str, Any]) -> tuple[int, int, tuple[str, str]]:
    return (_KEEP_ORDER[result["result"]], _SEVERITY_ORDER[result["severity"]], _sort_key(result))


def _cap(results: list[dict[str, Any]], limits: _Limits) -> list[dict[str, Any]]:
    """The results to keep, most useful first, within both limits."""
    if len(results) <= limits.results and _size(results) <= limits.bytes:
        return results
    kept: list[dict[str, Any]] = []
    used = 0
    for result in sorted(results, key=_keep_key):
        size = _size([result])
        if len(kept) >= limits.results or used + size > limits.bytes:
            break
        kept.append(result)
        used += size
    return kept


def _size(results: list[dict[str, Any]]) -> int:
    return len(json.dumps(results, separators=(",", ":")))


def _fingerprint(results: list[dict[str, Any]], summary: Mapping[str, int]) -> str:
    timeless = [{k: v for k, v in r.items() if k != "timestamp"} for r in results]
    text = json.dumps([timeless, summary], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _report(scope: dict[str, str], uid: str, results: list[dict[str, Any]],
            limits: _Limits) -> dict[str, Any]:
    summary = {outcome: 0 for outcome in ("pass", "fail", "warn", "error", "skip")}
    for result in results:
        summary[result["result"]] += 1
    kept = sorted(_cap(results, limits), key=_sort_key)
    annotations = {FINGERPRINT_ANNOTATION: _fingerprint([scope, *kept], summary)}
    if len(kept) < len(results):
        annotations[TRUNCATED_ANNOTATION] = "true"
        annotations[OMITTED_ANNOTATION] = str(len(results) - len(kept))
    owner = {"apiVersion": scope["apiVersion"], "kind": scope["kind"], "name": scope["name"], "uid": uid}
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport",
        "metadata": {
            "name": report_name(uid),
            "namespace": scope["namespace"],
            "labels": dict(MANAGED_BY),
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "scope": scope,
        "summary": summary,
        "results": kept,
    }
