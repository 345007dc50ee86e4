"""wgpolicyk8s.io/v1alpha2 PolicyReports: our verdicts in the format Policy Reporter and others read.

    policy_reports(policy, evaluations, owner, *, workloads=None, now=None,
                   max_results=MAX_RESULTS, max_bytes=MAX_BYTES) -> list[dict]

One PolicyReport per namespace, named `readiness-<policy>`, with one result per (workload, check):

- `fail`: the check has open findings. Its containers are in `properties.containers`, its first message
  in `message` (with a count of the others); `severity` maps ours: error -> high, warning -> medium,
  info -> low.
- `skip`: every finding of the check was exempted; `properties` give the exemption's reason, source
  (`policy:exemptions[i]` or `annotation`) and expiry.
- `error`: the check crashed on this workload (Evaluation.errors).
- `pass`: the check ran (Evaluation.checks_run) and none of the above holds.

`workloads` maps a WorkloadRef to anything with `api_version` and `uid` (a `Workload` fits); without an
entry the resource gets the kind's usual apiVersion and no uid. `owner` needs the policy's `uid` (see
`readiness.alerts.owner_reference`).

Size: etcd refuses objects over about 1.5 MB, so a report keeps at most `max_results` results and about
`max_bytes` of them, dropping passes first, then skips, then the least severe failures. A truncated report
says so in its annotations (`readiness.dev/truncated: "true"`, `readiness.dev/results-omitted`), while
`summary` still counts every result.

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

from readiness.alerts import MANAGED_BY, POLICY_LABEL, owner_reference
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


def report_name(policy: ReadinessPolicy) -> str:
    return f"readiness-{policy.name}"


def policy_reports(
    policy: ReadinessPolicy, evaluations: Iterable[Evaluation], owner: Mapping[str, str], *,
    workloads: Mapping[WorkloadRef, HasIdentity] | None = None, now: datetime | None = None,
    max_results: int = MAX_RESULTS, max_bytes: int = MAX_BYTES,
) -> list[dict[str, Any]]:
    """One PolicyReport per namespace with evaluations, sorted by namespace. Cluster-scoped workloads
    (no namespace) are left out: a PolicyReport is namespaced."""
    stamp = {"seconds": int((now or datetime.now(UTC)).timestamp()), "nanos": 0}
    identities = workloads or {}
    by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for evaluation in evaluations:
        if evaluation.workload.namespace:
            resource = _resource(evaluation.workload, identities.get(evaluation.workload))
            by_namespace[evaluation.workload.namespace].extend(
                _results(policy, evaluation, resource, stamp))
    limits = _Limits(max_results, max_bytes)
    return [_report(policy, namespace, results, owner, limits)
            for namespace, results in sorted(by_namespace.items())]


# -- results ---------------------------------------------------------------------------------------------

def _resource(ref: WorkloadRef, identity: HasIdentity | None) -> dict[str, str]:
    resource = {
        "apiVersion": (identity.api_version if identity else "") or _DEFAULT_API_VERSIONS.get(ref.kind, ""),
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }
    if identity is not None and identity.uid:
        resource["uid"] = identity.uid
    return resource


def _configured_severity(policy: ReadinessPolicy, check_id: str) -> Severity:
    settings = getattr(policy.spec.checks, check_id.replace("-", "_"), None)
    if settings is not None and settings.severity is not None:
        return Severity(settings.severity)
    check = CATALOG.get(check_id)
    return check.severity if check is not None else Severity.WARNING


def _results(policy: ReadinessPolicy, evaluation: Evaluation, resource: dict[str, str],
             stamp: dict[str, int]) -> list[dict[str, Any]]:
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
        result.update(policy=policy.name, rule=check_id, category=_category(check_id),
                      resources=[resource], timestamp=stamp)
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

def _sort_key(result: Mapping[str, Any]) -> tuple[str, str, str]:
    resource = result["resources"][0]
    return (resource["kind"], resource["name"], result["rule"])


def _keep_key(result: Mapping[str, Any]) -> tuple[int, int, tuple[str, str, str]]:
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


def _report(policy: ReadinessPolicy, namespace: str, results: list[dict[str, Any]],
            owner: Mapping[str, str], limits: _Limits) -> dict[str, Any]:
    summary = {outcome: 0 for outcome in ("pass", "fail", "warn", "error", "skip")}
    for result in results:
        summary[result["result"]] += 1
    kept = sorted(_cap(results, limits), key=_sort_key)
    annotations = {FINGERPRINT_ANNOTATION: _fingerprint(kept, summary)}
    if len(kept) < len(results):
        annotations[TRUNCATED_ANNOTATION] = "true"
        annotations[OMITTED_ANNOTATION] = str(len(results) - len(kept))
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport",
        "metadata": {
            "name": report_name(policy),
            "namespace": namespace,
            "labels": {**MANAGED_BY, POLICY_LABEL: policy.name},
            "annotations": annotations,
            "ownerReferences": [owner_reference(policy, owner)],
        },
        "summary": summary,
        "results": kept,
    }
