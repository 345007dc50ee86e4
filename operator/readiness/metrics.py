"""Prometheus metrics of the operator, on a registry of their own (tests can make several).

Series (a contract: the alert rules in `readiness.alerts` and users' dashboards read them):

- `readiness_workload_violations{policy,namespace,kind,workload,check,severity}` (gauge): one series per
  open finding of a workload, grouped by (check, severity). The value is the number of findings in the
  group, that is the number of failing containers (1 for a workload-level check). Exempted findings are
  not open and have no series. A series disappears when its findings close, when the workload is
  forgotten and when its policy is deleted: a missing series means "compliant", never a stale 0.
- `readiness_policy_workloads{policy,state}` (gauge): workloads the policy matched, by state
  (`compliant`, `violating`); their sum is the number matched.
- `readiness_exemptions{policy,state}` (gauge): exemptions by state (`active`, `expired`).
- `readiness_audit_duration_seconds{scope}` (histogram): `scope="workload"` times one evaluation of one
  workload (microseconds to milliseconds), `scope="policy"` a full re-audit of every workload a policy
  matches (seconds). One histogram without the label would mix both and answer nothing.
- `readiness_evaluations_total` (counter): workload evaluations, all policies together.
- `readiness_api_errors_total{operation,code}` (counter): failed Kubernetes API calls, by operation
  (`patch`, `list`, `create-event`...) and HTTP status code (or a short reason such as `timeout`). Answers
  the operator expects and handles are not errors: the 404 of an existence probe (is the PrometheusRule
  CRD installed?), of deleting what is gone, and the 422 of annotations too big (counted below).
- `readiness_writes_truncated_total` (counter): workload writes cut to fit the API server's 256 KiB bound
  on all of an object's annotations: the label, the verdict and a shortened violations list are written
  (a Warning Event `ReadinessOutputTruncated` says what was left out, once per verdict).
- `readiness_build_info{version}` (gauge, always 1): also lets `absent(readiness_build_info)` tell that the
  operator is not being scraped.

Cost: `observe` is O(findings of that workload): the series each (policy, workload) owns are kept with
their values, so removing the closed ones never scans the registry and unchanged values are not
rewritten. Thread-safe (Kopf runs sync handlers in threads, and the HTTP server scrapes from its own).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter as Tally
from collections.abc import Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from readiness import __version__
from readiness.engine import Finding
from readiness.workload import WorkloadRef

VIOLATION_LABELS = ("policy", "namespace", "kind", "workload", "check", "severity")
WORKLOAD_STATES = ("compliant", "violating")
EXEMPTION_STATES = ("active", "expired")
AUDIT_SCOPES = ("workload", "policy")

# From 100 µs (one workload) to 5 min (a full policy re-audit of a large cluster on a slow API server).
AUDIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

LabelValues = tuple[str, ...]
"""Values of VIOLATION_LABELS, in that order."""


class ReadinessMetrics:
    """Every metric of the operator. `observe` and the `forget*` methods keep the violation series exact."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.violations = Gauge(
            "readiness_workload_violations",
            "Open findings of a workload under a policy, by check and severity (value: findings, one per "
            "failing container).", VIOLATION_LABELS, registry=self.registry)
        self.policy_workloads = Gauge(
            "readiness_policy_workloads", "Workloads a policy matched, by state (compliant, violating).",
            ("policy", "state"), registry=self.registry)
        self.exemptions = Gauge(
            "readiness_exemptions", "Exemptions of a policy, by state (active, expired).",
            ("policy", "state"), registry=self.registry)
        self.audit_duration = Histogram(
            "readiness_audit_duration_seconds",
            "Time to audit one workload (scope=workload) or every workload of a policy (scope=policy).",
            ("scope",), buckets=AUDIT_BUCKETS, registry=self.registry)
        self.evaluations = Counter(
            "readiness_evaluations", "Workload evaluations, all policies together.", registry=self.registry)
        self.api_errors = Counter(
            "readiness_api_errors", "Failed Kubernetes API calls, by operation and status code.",
            ("operation", "code"), registry=self.registry)
        self.rewrites = Counter(
            "readiness_write_retries", "Workload writes that failed even after the writer's own retries and "
            "were scheduled again (with backoff, until they land).", registry=self.registry)
        self.events = Counter(
            "readiness_events", "Announcements by outcome: posted (an Event on the workload), summarized "
            "(counted in a summary Event on the policy), dropped (not posted: the workload's announced "
            "annotation is then left as it was, so the next operator start announces it again).",
            ("outcome",), registry=self.registry)
        self.writes_truncated = Counter(
            "readiness_writes_truncated", "Workload writes cut to fit Kubernetes' 256 KiB bound on an "
            "object's annotations (the label first, then the verdict, then a shortened violations list).",
            registry=self.registry)
        self.build_info = Gauge(
            "readiness_build_info", "Always 1; the operator's version is in the label.", ("version",),
            registry=self.registry)
        self.build_info.labels(version=__version__).set(1)
        self._lock = threading.Lock()
        # policy -> workload -> the violation series that workload owns (label tuple -> value).
        self._series: dict[str, dict[WorkloadRef, dict[LabelValues, int]]] = {}
        self._server: WSGIServer | None = None

    # -- violations ------------------------------------------------------------------------------------

    def observe(self, policy: str, ref: WorkloadRef, findings: Sequence[Finding]) -> None:
        """Make `policy`'s violation series of this workload exactly `findings` (open ones only)."""
        counts: Tally[LabelValues] = Tally(
            (policy, ref.namespace, ref.kind, ref.name, f.check, str(f.severity)) for f in findings
        )
        with self._lock:
            workloads = self._series.setdefault(policy, {})
            previous = workloads.get(ref, {})
            for labels in previous.keys() - counts.keys():
                self._remove(labels)
            for labels, count in counts.items():
                # Periodic re-audits mostly find nothing new: skip the registry when the value is unchanged.
                if previous.get(labels) != count:
                    self.violations.labels(*labels).set(count)
            if counts:
                workloads[ref] = dict(counts)
            else:
                workloads.pop(ref, None)

    def forget(self, policy: str, ref: WorkloadRef) -> None:
        """The workload is gone (or the policy no longer matches it): drop its series for that policy."""
        with self._lock:
            for labels in self._series.get(policy, {}).pop(ref, {}):
                self._remove(labels)

    def forget_policy(self, policy: str) -> None:
        """The policy is deleted: every series naming it disappears."""
        with self._lock:
            for owned in self._series.pop(policy, {}).values():
                for labels in owned:
                    self._remove(labels)
            for state in WORKLOAD_STATES:
                self._remove_from(self.policy_workloads, (policy, state))
            for state in EXEMPTION_STATES:
                self._remove_from(self.exemptions, (policy, state))

    def _remove(self, labels: LabelValues) -> None:
        self._remove_from(self.violations, labels)

    @staticmethod
    def _remove_from(metric: Gauge, labels: LabelValues) -> None:
        with contextlib.suppress(KeyError):  # never set: nothing to remove
            metric.remove(*labels)

    def violation_series(self, policy: str | None = None) -> int:
        """How many violation series are open (for one policy, or all): for status and benchmarks."""
        with self._lock:
            policies = [self._series.get(policy, {})] if policy is not None else list(self._series.values())
            return sum(len(owned) for workloads in policies for owned in workloads.values())

    # -- per-policy gauges, counters -------------------------------------------------------------------

    def set_policy_workloads(self, policy: str, compliant: int, violating: int) -> None:
        self.policy_workloads.labels(policy, "compliant").set(compliant)
        self.policy_workloads.labels(policy, "violating").set(violating)

    def set_exemptions(self, policy: str, active: int, expired: int) -> None:
        self.exemptions.labels(policy, "active").set(active)
        self.exemptions.labels(policy, "expired").set(expired)

    def observe_audit(self, scope: str, seconds: float) -> None:
        """Record an audit's duration; `scope` is `workload` or `policy`."""
        if scope not in AUDIT_SCOPES:
            raise ValueError(f"audit scope must be one of {', '.join(AUDIT_SCOPES)}, got {scope!r}")
        self.audit_duration.labels(scope).observe(seconds)

    def api_error(self, operation: str, code: str) -> None:
        self.api_errors.labels(operation, str(code)).inc()

    # -- exposition ------------------------------------------------------------------------------------

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve /metrics on `address:port` from a daemon thread; returns the bound port (useful with 0)."""
        server, _thread = start_http_server(port, address, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        """Stop the HTTP server started by `serve`, if any."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
