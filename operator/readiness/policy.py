"""The ReadinessPolicy model: the single source of truth for the CRD (`readiness.crd` renders it).

Field docstrings become the CRD's descriptions, so `kubectl explain readinesspolicy.spec...` shows them:
write them for the platform engineer reading that output.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.alias_generators import to_camel

from readiness.checks import all_checks
from readiness.checks.base import CheckParams, Severity

API_GROUP = "readiness.dev"
API_VERSION = "v1alpha1"
KIND = "ReadinessPolicy"
PLURAL = "readinesspolicies"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
"""A Prometheus duration such as `30s`, `15m` or `1h30m`."""


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=True,
    )


class Enforcement(StrEnum):
    AUDIT = "audit"
    WARN = "warn"
    DENY = "deny"


class LabelSelectorRequirement(Model):
    key: str
    """The label key the requirement applies to."""
    operator: Annotated[str, Field(pattern="^(In|NotIn|Exists|DoesNotExist)$")]
    """One of In, NotIn, Exists, DoesNotExist."""
    values: list[str] | None = None
    """Values for In and NotIn; must be empty for Exists and DoesNotExist."""


class LabelSelector(Model):
    """A standard Kubernetes label selector. An empty selector matches everything."""

    match_labels: dict[str, str] | None = None
    """Labels that must all be present with these values."""
    match_expressions: list[LabelSelectorRequirement] | None = None
    """Set-based requirements that must all hold."""


class Match(Model):
    """Which workloads the policy judges. All given conditions must hold."""

    namespaces: list[str] = Field(default_factory=list)
    """Namespace globs to include (`team-*`). Empty means every namespace."""
    exclude_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"]
    )
    """Namespace globs to leave out; they win over `namespaces`. Defaults to the system namespaces."""
    namespace_selector: LabelSelector | None = None
    """Only namespaces whose labels match, for example `{matchLabels: {env: prod}}`."""
    selector: LabelSelector | None = None
    """Only workloads whose own labels match."""
    kinds: list[str] = Field(default_factory=lambda: ["Deployment", "StatefulSet", "DaemonSet"])
    """Workload kinds to judge: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, or a
    custom kind registered with the operator (such as Rollout)."""


class Exemption(Model):
    """A documented exception to the policy. It must give a reason; it may expire."""

    namespaces: list[str] = Field(default_factory=list)
    """Namespace globs the exemption covers. Empty means any namespace."""
    names: list[str] = Field(default_factory=list)
    """Workload name globs the exemption covers. Empty means any name."""
    kinds: list[str] = Field(default_factory=list)
    """Workload kinds the exemption covers. Empty means any kind."""
    selector: LabelSelector | None = None
    """Only workloads whose labels match."""
    checks: Annotated[list[str], Field(min_length=1)]
    """Check ids exempted, or `*` for all of them."""
    containers: list[str] = Field(default_factory=list)
    """Only these containers (globs). Empty means every container and workload-level findings too."""
    reason: Annotated[str, Field(min_length=1)]
    """Why the exception is acceptable, for the next person to read. Required."""
    expires: datetime | None = None
    """RFC 3339 time after which the exemption no longer applies and is reported as expired."""

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and _aware(self.expires) <= now


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class Alerting(Model):
    """How violations of this policy page someone: the PrometheusRule the operator writes."""

    enabled: bool = True
    """Write alert rules for this policy."""
    for_: Annotated[str, Field(alias="for", pattern=DURATION_PATTERN)] = "15m"
    """How long a violation must last before the alert fires. Short values page on every rollout."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels on every alert, for routing (`team: payments`)."""
    runbook_url: str = "https://github.com/readiness-operator/readiness-operator/blob/main/docs/checks/"
    """Base URL of the runbooks; the check id and `.md` are appended."""
    min_severity: Severity = Severity.WARNING
    """Findings below this severity do not alert (they still appear in reports and metrics)."""


class Reporting(Model):
    """Where the verdicts of this policy are written. Each can also be switched off operator-wide."""

    annotations: bool = True
    """Write `readiness.dev/verdict`, `readiness.dev/violations` and `readiness.dev/policies`."""
    labels: bool = True
    """Write the label `readiness.dev/compliant=true|false`."""
    events: bool = True
    """Post `ReadinessViolation` and `ReadinessRestored` Events when the verdict changes."""
    policy_reports: bool = True
    """Write wgpolicyk8s.io PolicyReports, one per namespace, when that CRD is installed."""


class CheckSettings(Model):
    """Per-check settings. Unset fields keep the catalog's defaults."""

    enabled: bool | None = None
    """Turn the check on or off. Unset keeps the catalog default (some checks are off by default)."""
    severity: Severity | None = None
    """Override the check's default severity: info, warning or error."""


def _check_settings_model(params: type[CheckParams], check_id: str) -> type[CheckSettings]:
    """A CheckSettings whose `parameters` field is the check's own typed parameter model."""
    return create_model(  # type: ignore[no-any-return,call-overload]
        f"CheckSettings_{check_id.replace('-', '_')}",
        __base__=CheckSettings,
        __doc__=f"Settings of the check `{check_id}`.",
        parameters=(params | None, Field(default=None, description=params.__doc__ or "Parameters.")),
    )


def _checks_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for check in all_checks():
        settings = _check_settings_model(check.params, check.id)
        fields[check.id.replace("-", "_")] = (
            settings | None,
            Field(default=None, alias=check.id, description=f"{check.title} ({check.category}, "
                  f"default {check.severity}{'' if check.enabled_by_default else ', off by default'})."),
        )
    return create_model(  # type: ignore[no-any-return,call-overload]
        "Checks",
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        __doc__="Per-check overrides, keyed by check id. Checks not listed keep their defaults; unknown ids "
                "are rejected. `readiness checks` lists the catalog.",
        **fields,
    )


Checks = _checks_model()


class ReadinessPolicySpec(Model):
    """What the policy judges, how strictly, and what it does about violations."""

    enforcement: Enforcement = Enforcement.AUDIT
    """audit: report only. warn: also return admission warnings to kubectl. deny: also reject workloads
    with error-severity findings at admission."""
    match: Match = Field(default_factory=Match)
    """Which workloads the policy judges."""
    checks: Checks = Field(default_factory=Checks)  # type: ignore[valid-type]
    """Per-check overrides: enabled, severity and parameters."""
    exemptions: list[Exemption] = Field(default_factory=list)
    """Central, documented exceptions."""
    allow_workload_exemptions: bool = False
    """Let workload owners exempt themselves with the `readiness.dev/exempt`, `readiness.dev/exempt-reason`
    and `readiness.dev/exempt-until` annotations. Off by default: anyone who can annotate a workload could
    otherwise bypass central policy."""
    audit_interval: Annotated[str, Field(pattern=DURATION_PATTERN)] = "10m"
    """How often every matched workload is re-audited, to catch expired exemptions and PodDisruptionBudgets
    that appeared or vanished. Changes to workloads and policies are audited at once regardless."""
    include_native_sidecars: bool = True
    """Judge native sidecars (init containers with restartPolicy: Always) like app containers for probe
    checks. Security checks always cover them."""
    alerting: Alerting = Field(default_factory=Alerting)
    """Prometheus alert rules for this policy."""
    reporting: Reporting = Field(default_factory=Reporting)
    """Where verdicts are written."""


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Annotated[str, Field(min_length=1, max_length=63)]


class ReadinessPolicy(BaseModel):
    """A ReadinessPolicy as read from YAML or the API server (status is ignored here)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    api_version: Annotated[str, Field(alias="apiVersion")] = f"{API_GROUP}/{API_VERSION}"
    kind: str = KIND
    metadata: Metadata
    spec: ReadinessPolicySpec = Field(default_factory=ReadinessPolicySpec)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != KIND:
            raise ValueError(f"expected kind {KIND}, got {value}")
        return value

    @property
    def name(self) -> str:
        return self.metadata.name

    @model_validator(mode="after")
    def _exemption_checks_known(self) -> ReadinessPolicy:
        known = {c.id for c in all_checks()}
        for index, exemption in enumerate(self.spec.exemptions):
            for check_id in exemption.checks:
                if check_id != "*" and check_id not in known:
                    raise ValueError(f"spec.exemptions[{index}].checks: unknown check id {check_id!r}")
        return self


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration string (`1h30m` -> 5400.0)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))


# -- status: written by the operator, read by `kubectl get` and dashboards -------------------------------

MAX_TOP_OFFENDERS = 10
"""The status lists at most this many offenders, so the object stays small at any cluster size."""


class Condition(Model):
    """A standard Kubernetes condition."""

    type: str
    """`Ready` (the policy is being enforced) or `Valid` (the spec passed the operator's validation)."""
    status: Annotated[str, Field(pattern="^(True|False|Unknown)$")]
    reason: str = ""
    """CamelCase reason, such as `Audited` or `InvalidSpec`."""
    message: str = ""
    """Human-readable detail; for an invalid policy, the field path and the problem."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None


class Offender(Model):
    """A workload with findings, for the status's short list of the worst."""

    namespace: str
    kind: str
    name: str
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    checks: list[str] = Field(default_factory=list)
    """The failing check ids (at most five)."""


class Summary(Model):
    """Counts over every workload the policy matched at the last audit."""

    matched: int = 0
    compliant: int = 0
    violating: int = 0
    by_severity: dict[str, int] = Field(default_factory=dict)
    """Open findings by severity: error, warning, info."""
    by_check: dict[str, int] = Field(default_factory=dict)
    """Open findings by check id."""


class ExemptionCounts(Model):
    active: int = 0
    """Exemptions that suppressed at least one finding at the last audit."""
    expired: int = 0
    """Exemptions that matched a workload but have expired (they no longer apply)."""


class RulesTarget(Model):
    """Where the policy's alert rules were written."""

    kind: str = ""
    """PrometheusRule, ConfigMap (when the PrometheusRule CRD is not installed), or Disabled."""
    namespace: str = ""
    name: str = ""


class ReadinessPolicyStatus(Model):
    """What the operator observed; never edit it by hand."""

    observed_generation: int | None = None
    """The spec generation the status describes."""
    last_audit_time: str | None = None
    """When every matched workload was last audited (RFC 3339)."""
    conditions: list[Condition] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    top_offenders: Annotated[list[Offender], Field(max_length=MAX_TOP_OFFENDERS)] = Field(default_factory=list)
    """The workloads with the most severe findings, worst first (at most ten)."""
    exemptions: ExemptionCounts = Field(default_factory=ExemptionCounts)
    rules: RulesTarget = Field(default_factory=RulesTarget)
