"""The ReadinessPolicy model: the single source of truth for the CRD (`readiness.crd` renders it).

Field docstrings become the CRD's descriptions, so `kubectl explain readinesspolicy.spec...` shows them:
write them for the platform engineer reading that output. Constraints declared here (patterns, bounds,
enums, `__cel_rules__`) are enforced twice with the same meaning: by pydantic when the CLI or the operator
loads a policy (`load_policy`), and by the API server through the generated CRD.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import typing
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from readiness.checks import CATALOG, all_checks
from readiness.checks.base import CheckParams, Severity, camel, param_fields

API_GROUP = "readiness.dev"
API_VERSION = "v1alpha1"
KIND = "ReadinessPolicy"
PLURAL = "readinesspolicies"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
"""A Prometheus duration such as `30s`, `15m` or `1h30m`."""

RFC3339_PATTERN = (
    r"^([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
    r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""An RFC 3339 date-time with an explicit offset. The API server's `date-time` format alone also accepts
times without an offset, year 0000 and offsets of 24 hours or more, which Python's datetime (and so the
operator) cannot represent; the pattern keeps the server as strict as `load_policy`."""

KIND_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
"""A Kubernetes kind: CamelCase, as in `Deployment`."""

URL_PATTERN = r"^https?://"

WILDCARD = "*"

# Bounds keep objects small and let the API server's CEL cost estimator bound the rules below.
MAX_GLOBS = 128
MAX_EXEMPTIONS = 256
MAX_NAME_LENGTH = 253
MAX_REASON_LENGTH = 1024

MAX_POLICY_NAME_LENGTH = 63
"""metadata.name: a DNS subdomain, as for any cluster-scoped object, and at most 63 characters because the
operator writes it as a label value (`readiness.dev/policy` on its PrometheusRules) and a metric label."""
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUALIFIED_NAME_PATTERN = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_ANNOTATIONS_BYTES = 256 * 1024
"""The API server's limit on the total size of an object's annotations."""

MAX_POLICY_BYTES = 1024 * 1024
"""The largest policy `load_policy` accepts, measured as the compact JSON that kubectl sends. etcd refuses
objects over 1.5 MiB (its default `--max-request-bytes`); 1 MiB leaves room for the status, managedFields
and metadata the API server adds, so that every policy the CLI accepts can be stored and have its status
written. The CRD cannot measure bytes: between 1 MiB and etcd's limit the server alone accepts a policy."""


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True,
    )

    __cel_rules__: ClassVar[list[tuple[str, str]]] = []
    """(CEL rule, message) pairs that `readiness.crd` emits as `x-kubernetes-validations` on this object.
    A class that declares one must enforce the same rule in a pydantic validator."""


Glob = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
KindName = Annotated[str, Field(pattern=KIND_PATTERN, max_length=63)]


class Enforcement(StrEnum):
    """What the operator does about violations."""

    AUDIT = "audit"
    WARN = "warn"
    DENY = "deny"


class UnlistedChecks(StrEnum):
    """What happens to the checks a policy does not list under `checks`."""

    CATALOG = "catalog"
    OFF = "off"


# -- check ids -------------------------------------------------------------------------------------------


def unknown_check_message(check_id: str) -> str:
    """`unknown check id 'x' (did you mean y?)`, shared by every place that names a check."""
    close = difflib.get_close_matches(check_id, CATALOG, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown check id {check_id!r}{hint}"


def _known_check_or_wildcard(value: str) -> str:
    if value != WILDCARD and value not in CATALOG:
        raise ValueError(unknown_check_message(value))
    return value


def _check_id_enum() -> list[str]:
    return [WILDCARD, *(check.id for check in all_checks())]


ExemptCheckId = Annotated[
    str,
    AfterValidator(_known_check_or_wildcard),
    # The CRD lists the ids too, so the API server rejects a typo as well.
    Field(json_schema_extra={"enum": _check_id_enum()}),
]


# -- selectors -------------------------------------------------------------------------------------------


class LabelSelectorRequirement(Model):
    """One set-based requirement on a label."""

    __cel_rules__: ClassVar[list[tuple[str, str]]] = [(
        "(self.operator == 'In' || self.operator == 'NotIn') == (has(self.values) && size(self.values) > 0)",
        "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
    )]

    key: Annotated[str, Field(min_length=1, max_length=317)]
    """The label key the requirement applies to."""
    # maxLength bounds the cost of the CEL rule above in the API server's estimator.
    operator: Annotated[
        Literal["In", "NotIn", "Exists", "DoesNotExist"], Field(json_schema_extra={"maxLength": 12}),
    ]
    """One of In, NotIn, Exists, DoesNotExist."""
    values: Annotated[list[Annotated[str, Field(max_length=63)]], Field(max_length=MAX_GLOBS)] | None = None
    """Values for In and NotIn; must be empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if (self.operator in ("In", "NotIn")) != bool(self.values):
            raise ValueError(self.__cel_rules__[0][1])
        return self


class LabelSelector(Model):
    """A standard Kubernetes label selector. An empty selector matches everything."""

    match_labels: dict[str, str] | None = None
    """Labels that must all be present with these values."""
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=32)] | None = None
    """Set-based requirements that must all hold."""


class Match(Model):
    """Which workloads the policy judges. All given conditions must hold."""

    namespaces: Annotated[list[Glob], Field(max_length=MAX_GLOBS)] = Field(default_factory=list)
    """Namespace globs to include (`team-*`). Empty means every namespace."""
    exclude_namespaces: Annotated[list[Glob], Field(max_length=MAX_GLOBS)] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"]
    )
    """Namespace globs to leave out; they win over `namespaces`. The default leaves out the system
    namespaces; set it to `[]` to judge those too."""
    namespace_selector: LabelSelector | None = None
    """Only namespaces whose labels match, for example `{matchLabels: {env: prod}}`."""
    selector: LabelSelector | None = None
    """Only workloads whose own labels match."""
    kinds: Annotated[list[KindName], Field(min_length=1, max_length=32)] = Field(
        default_factory=lambda: ["Deployment", "StatefulSet", "DaemonSet", "ReplicationController"]
    )
    """Workload kinds to judge: Deployment, StatefulSet, DaemonSet, ReplicationController, ReplicaSet, Job,
    CronJob, Pod, or a custom kind registered with the operator (such as Rollout)."""


# -- exemptions ------------------------------------------------------------------------------------------


def _rfc3339(value: Any) -> Any:
    """Accept an RFC 3339 string or a timezone-aware datetime (YAML parsers produce those); reject the
    looser forms pydantic would take (dates, numbers, times without an offset)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must be an RFC 3339 date-time with an offset, such as 2030-01-31T00:00:00Z")
        return value
    if isinstance(value, date) or not isinstance(value, str) or not re.match(RFC3339_PATTERN, value):
        raise ValueError(f"must be an RFC 3339 date-time such as 2030-01-31T00:00:00Z, got {str(value)!r}")
    try:  # parsed here: strict validation takes no strings for a datetime
        return datetime.fromisoformat(value)
    except ValueError:  # 2030-02-30, 23:59:60: the API server rejects them too
        raise ValueError(f"{value!r} is not a valid date and time") from None


Rfc3339 = Annotated[
    datetime, BeforeValidator(_rfc3339), Field(json_schema_extra={"pattern": RFC3339_PATTERN}),
]


class Exemption(Model):
    """A documented exception to the policy. It must say whom it covers and why; it may expire."""

    __cel_rules__: ClassVar[list[tuple[str, str]]] = [(
        "(has(self.namespaces) && size(self.namespaces) > 0) || (has(self.names) && size(self.names) > 0)"
        " || (has(self.kinds) && size(self.kinds) > 0) || has(self.selector)"
        " || (has(self.containers) && size(self.containers) > 0)",
        "an exemption must name namespaces, names, kinds, a selector or containers; "
        "write namespaces: ['*'] to exempt every workload",
    )]

    namespaces: Annotated[list[Glob], Field(max_length=MAX_GLOBS)] = Field(default_factory=list)
    """Namespace globs the exemption covers. Empty means any namespace; `['*']` states a cluster-wide
    exemption explicitly (an exemption must name at least one of namespaces, names, kinds, selector or
    containers)."""
    names: Annotated[list[Glob], Field(max_length=MAX_GLOBS)] = Field(default_factory=list)
    """Workload name globs the exemption covers. Empty means any name."""
    kinds: Annotated[list[KindName], Field(max_length=32)] = Field(default_factory=list)
    """Workload kinds the exemption covers. Empty means any kind."""
    selector: LabelSelector | None = None
    """Only workloads whose labels match."""
    checks: Annotated[list[ExemptCheckId], Field(min_length=1, max_length=64)]
    """Check ids exempted, or `*` for all of them. Required."""
    containers: Annotated[list[Glob], Field(max_length=MAX_GLOBS)] = Field(default_factory=list)
    """Only these containers (globs), for example an injected sidecar. Empty means every container and
    workload-level findings too."""
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH)]
    """Why the exception is acceptable, for the next person to read (a ticket link helps). Required."""
    expires: Rfc3339 | None = None
    """RFC 3339 time (`2030-01-31T00:00:00Z`) after which the exemption no longer applies; it is then
    reported as expired in the status and reports. Unset: never expires."""

    @model_validator(mode="after")
    def _names_its_scope(self) -> Exemption:
        if not (self.namespaces or self.names or self.kinds or self.selector is not None or self.containers):
            raise ValueError(self.__cel_rules__[0][1])
        return self

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and _aware(self.expires) <= now


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- alerting and reporting ------------------------------------------------------------------------------


class Alerting(Model):
    """How violations of this policy page someone: the PrometheusRule the operator writes."""

    enabled: bool = True
    """Write alert rules for this policy."""
    for_: Annotated[str, Field(alias="for", pattern=DURATION_PATTERN, max_length=32)] = "15m"
    """How long a violation must last before the alert fires (a Prometheus duration). Short values page on
    every rollout."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels on every alert, for routing (`team: payments`) and for the Prometheus rule selector
    (`release: kube-prometheus-stack`)."""
    runbook_url: Annotated[str, Field(pattern=URL_PATTERN, max_length=2048)] = (
        "https://github.com/readiness-operator/readiness-operator/blob/main/docs/checks/"
    )
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
    """Write wgpolicyk8s.io PolicyReports when that CRD is installed: one per workload, holding the results
    of every policy that reports on it. Off for this policy: its results are left out of them."""


# -- per-check settings ----------------------------------------------------------------------------------


class CheckSettings(Model):
    """Per-check settings. Unset fields keep the catalog's defaults."""

    enabled: bool | None = None
    """Turn the check on or off. Unset keeps the catalog default (some checks are off by default)."""
    severity: Severity | None = None
    """Override the check's default severity: info, warning or error. Unset keeps the catalog's."""


def _params_description(params: type[CheckParams]) -> str:
    text = (params.__doc__ or "Parameters.").strip()
    return f"{text} Fields left out keep their defaults." if param_fields(params) else text


class _GeneratedCheckSettings(CheckSettings):
    """Base of the generated per-check settings models."""


def _check_settings_model(params: type[CheckParams], check_id: str) -> type[CheckSettings]:
    """A CheckSettings whose `parameters` field is the check's own typed parameter model."""
    optional_params: Any = params | None  # a runtime union, which create_model's stubs do not describe
    return create_model(
        f"CheckSettings_{check_id.replace('-', '_')}",
        __base__=_GeneratedCheckSettings,
        __doc__=f"Settings of the check `{check_id}`.",
        parameters=(optional_params, Field(default=None, description=_params_description(params))),
    )


class ChecksBase(BaseModel):
    """Base of the generated `Checks` model: rejects unknown ids with the closest one suggested."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _known_ids(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            names = set(cls.model_fields)
            for key in data:
                if key not in CATALOG and key not in names:
                    raise ValueError(unknown_check_message(str(key)))
        return data


def _check_description(check_id: str) -> str:
    check = CATALOG[check_id]
    state = "" if check.enabled_by_default else ", off by default"
    return f"{check.title} ({check.category}, default severity {check.severity}{state})."


def _checks_model() -> type[ChecksBase]:
    fields: dict[str, Any] = {}
    for check in all_checks():
        settings = _check_settings_model(check.params, check.id)
        fields[check.id.replace("-", "_")] = (
            settings | None, Field(default=None, alias=check.id, description=_check_description(check.id)),
        )
    return create_model(
        "Checks",
        __base__=ChecksBase,
        __doc__="Per-check overrides, keyed by check id. Checks not listed keep their defaults; unknown ids "
                "are rejected. `readiness checks` lists the catalog.",
        **fields,
    )


Checks = _checks_model()


# -- the policy ------------------------------------------------------------------------------------------


class ReadinessPolicySpec(Model):
    """What the policy judges, how strictly, and what it does about violations."""

    enforcement: Enforcement = Enforcement.AUDIT
    """audit: report only. warn: also return admission warnings to kubectl. deny: also reject workloads
    with error-severity findings at admission. Start with audit, move to warn, then deny."""
    match: Match = Field(default_factory=Match)
    """Which workloads the policy judges."""
    checks: Checks = Field(default_factory=Checks)  # type: ignore[valid-type]
    """Per-check overrides: enabled, severity and parameters."""
    unlisted_checks: UnlistedChecks = UnlistedChecks.CATALOG
    """catalog: checks not listed under `checks` keep their catalog default, so checks added by an upgrade
    start judging at once. off: only the listed checks judge (those not disabled there), so an upgrade
    never adds findings by itself: the choice for a lenient baseline that must stay quiet."""
    exemptions: Annotated[list[Exemption], Field(max_length=MAX_EXEMPTIONS)] = Field(default_factory=list)
    """Central, documented exceptions, each with a reason and optionally an expiry."""
    allow_workload_exemptions: bool = False
    """Let workload owners exempt themselves with the `readiness.dev/exempt`, `readiness.dev/exempt-reason`
    and `readiness.dev/exempt-until` annotations. Off by default: anyone who can annotate a workload could
    otherwise bypass central policy."""
    audit_interval: Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)] = "10m"
    """How often every matched workload is re-audited, to catch expired exemptions and PodDisruptionBudgets
    that appeared or vanished. Changes to workloads and policies are audited at once regardless."""
    include_native_sidecars: bool = True
    """Judge native sidecars (init containers with restartPolicy: Always) like app containers for probe
    checks. Security checks always cover them."""
    alerting: Alerting = Field(default_factory=Alerting)
    """Prometheus alert rules for this policy."""
    reporting: Reporting = Field(default_factory=Reporting)
    """Where verdicts are written."""


def _qualified_name(key: str) -> str:
    """A label or annotation key as the API server checks it: `[prefix/]name`."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > MAX_NAME_LENGTH or not re.fullmatch(DNS_SUBDOMAIN_PATTERN, prefix)):
        raise ValueError(f"key {key!r}: the prefix must be a lowercase DNS subdomain such as example.com")
    if len(name) > MAX_POLICY_NAME_LENGTH or not re.fullmatch(QUALIFIED_NAME_PATTERN, name):
        raise ValueError(f"key {key!r}: the name must be at most 63 characters (alphanumerics, '-', '_', "
                         "'.'), starting and ending with an alphanumeric")
    return key


def _label_values(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        _qualified_name(key)
        if len(value) > MAX_POLICY_NAME_LENGTH or not re.fullmatch(LABEL_VALUE_PATTERN, value):
            raise ValueError(f"{key}: value {value!r} must be at most 63 characters (alphanumerics, '-', "
                             "'_', '.'), starting and ending with an alphanumeric")
    return labels


def _annotation_keys(annotations: dict[str, str]) -> dict[str, str]:
    for key in annotations:
        _qualified_name(key)
    size = sum(len(key) + len(value) for key, value in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        raise ValueError(f"annotations total {size} bytes, over the API server's limit of "
                         f"{MAX_ANNOTATIONS_BYTES}")
    return annotations


class Metadata(BaseModel):
    """The ObjectMeta fields the API server knows; anything else is rejected, as `kubectl apply` does."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              defer_build=True)
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=MAX_POLICY_NAME_LENGTH)]
    labels: Annotated[dict[str, str], AfterValidator(_label_values)] = Field(default_factory=dict)
    annotations: Annotated[dict[str, str], AfterValidator(_annotation_keys)] = Field(default_factory=dict)
    # Written by the API server (`kubectl get -o yaml`, and what the operator reads): accepted as they are.
    namespace: str | None = None
    generate_name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[dict[str, Any]] = Field(default_factory=list)
    managed_fields: list[dict[str, Any]] = Field(default_factory=list)
    self_link: str | None = None


class ReadinessPolicy(BaseModel):
    """A ReadinessPolicy as read from YAML or the API server. Unknown fields are rejected, as the API
    server's strict field validation (`kubectl apply`'s default) rejects them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)
    api_version: Annotated[str, Field(alias="apiVersion")] = f"{API_GROUP}/{API_VERSION}"
    kind: str = KIND
    metadata: Metadata
    spec: ReadinessPolicySpec = Field(default_factory=ReadinessPolicySpec)
    """The policy: which workloads, which checks, how strictly."""
    status: ReadinessPolicyStatus | None = None
    """Written by the operator; checked as the API server checks it, otherwise unused here."""

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if value != f"{API_GROUP}/{API_VERSION}":
            raise ValueError(f"expected {API_GROUP}/{API_VERSION}, got {value}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != KIND:
            raise ValueError(f"expected kind {KIND}, got {value}")
        return value

    @property
    def name(self) -> str:
        return self.metadata.name


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration string (`1h30m` -> 5400.0)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))


# -- loading with one-line errors ------------------------------------------------------------------------


class PolicyError(ValueError):
    """A policy that does not validate. Its str is one line: `<source>: <field path>: <problem>`."""


def load_policy(data: Mapping[str, Any], source: str) -> ReadinessPolicy:
    """Validate one ReadinessPolicy document as the API server validates it; raise PolicyError naming the
    first bad field.

    The document goes through JSON, as kubectl sends it, and is validated strictly, with the names of the
    YAML only: `"3"` is no integer, `"yes"` and `1` are no booleans, `run_as_root` is no check id. Before
    that it is decoded as the API server decodes it (`as_the_server_decodes`)."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: expected a {KIND} mapping, got {type(data).__name__}")
    text = json.dumps(as_the_server_decodes(data), separators=(",", ":"), default=_json_scalar)
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(f"{source}: the policy is {len(text.encode())} bytes as JSON, over the limit of "
                          f"{MAX_POLICY_BYTES} (1 MiB)")
    try:
        return ReadinessPolicy.model_validate_json(text, strict=True, by_alias=True, by_name=False)
    except ValidationError as error:
        errors = error.errors(include_url=False)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PolicyError(f"{source}: {describe_error(errors[0])}{more}") from None


INT64 = range(-(2**63), 2**63)


def as_the_server_decodes(value: Any) -> Any:
    """The document as the API server sees it before validation: a null map value means the key is absent
    (the server prunes it, then applies the CRD's default), an integral float is an integer (`3.0` is a
    valid replica count) and an integer beyond int64 is a float (so only a `number` field takes it)."""
    if isinstance(value, Mapping):
        return {key: as_the_server_decodes(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [as_the_server_decodes(item) for item in value]
    if isinstance(value, float) and value.is_integer() and int(value) in INT64:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
        return float(value)
    return value


def _json_scalar(value: Any) -> str:
    """What a YAML parser makes of an unquoted timestamp, written back as text (kubectl's YAML reader
    keeps timestamps as strings); a date or a time without an offset then fails the RFC 3339 pattern."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def describe_error(error: Mapping[str, Any]) -> str:
    """`spec.exemptions[0].reason: field required`: pydantic's error as a field path and a message."""
    path = field_path(error["loc"])
    message = _message(error)
    return f"{path}: {message}" if path else message


def field_path(loc: tuple[int | str, ...]) -> str:
    """`('spec', 'exemptions', 0, 'expires')` -> `spec.exemptions[0].expires`, in the YAML's spelling."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = part.replace("_", "-") if part.replace("_", "-") in CATALOG else (
                to_camel(part) if "_" in part else part)  # run_as_root is run-as-root, not runAsRoot
            path += f".{name}" if path else name
    return path


_PREFIXES = ("Value error, ", "Assertion failed, ")

_PATTERN_MEANINGS = {
    DURATION_PATTERN: "must be a Prometheus duration such as 30s, 15m or 1h30m",
    KIND_PATTERN: "must be a CamelCase kind such as Deployment",
    URL_PATTERN: "must be an http:// or https:// URL",
    DNS_SUBDOMAIN_PATTERN: "must be a lowercase DNS subdomain (a-z, 0-9, '-' and '.', starting and ending "
                           "with a letter or digit), such as prod-policy",
}
"""Patterns named in words: a regular expression is no help to the person reading the error."""


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's field; a dataclass's
        return f"unknown field {error['loc'][-1]!r}{_field_hint(error['loc'])}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    if kind == "string_pattern_mismatch":
        message = _PATTERN_MEANINGS.get(error.get("ctx", {}).get("pattern", ""), message)
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    # JSON's words (policies are validated as JSON); YAML users write lists and mappings.
    message = message.replace("valid array", "valid list").replace("be an object", "be a mapping")
    value = error.get("input")
    if kind not in ("value_error", "assertion_error") and isinstance(value, str | int | float | bool):
        shown = repr(value)
        message += f" (got {shown[:60]}...)" if len(shown) > 64 else f" (got {shown})"
    message = message[:1].lower() + message[1:]
    return " ".join(message.split())


def _field_hint(loc: tuple[int | str, ...]) -> str:
    """` (did you mean X?)` from the fields of the model at `loc`'s parent, when one is close."""
    model: type | None = ReadinessPolicy
    for part in loc[:-1]:
        model = _child_model(model, part) if model is not None else None
    if model is None:
        return ""
    names = [alias for _name, alias, _annotation in fields_of(model)]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def fields_of(model: type) -> list[tuple[str, str, Any]]:
    """(name, name in YAML, annotation) of a pydantic model's fields or a check's parameters."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [(name, field.alias or name, field.annotation) for name, field in model.model_fields.items()]
    if issubclass(model, CheckParams):
        hints = typing.get_type_hints(model)
        return [(f.name, camel(f.name), hints.get(f.name)) for f in param_fields(model)]
    return []


def _child_model(model: type, part: int | str) -> type | None:
    if isinstance(part, int):  # list item: the model was already unwrapped from list[...]
        return model
    for name, alias, annotation in fields_of(model):
        if part in (name, alias):
            return _model_in(annotation)
    return None


def _model_in(annotation: Any) -> type | None:
    """The model (or check parameters) inside `X | None`, `list[X]` or `X` itself."""
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel)
                                         or dataclasses.is_dataclass(annotation)):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# -- status: written by the operator, read by `kubectl get` and dashboards -------------------------------

MAX_TOP_OFFENDERS = 10
"""The status lists at most this many offenders, so the object stays small at any cluster size."""


class Condition(Model):
    """A standard Kubernetes condition."""

    type: str
    """`Ready` (the policy is being enforced) or `Valid` (the spec passed the operator's validation)."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = ""
    """CamelCase reason, such as `Audited` or `InvalidSpec`."""
    message: str = ""
    """Human-readable detail; for an invalid policy, the field path and the problem."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The spec generation this condition was computed from."""


class Offender(Model):
    """A workload with findings, for the status's short list of the worst."""

    namespace: str
    """The workload's namespace."""
    kind: str
    """The workload's kind, such as Deployment."""
    name: str
    """The workload's name."""
    errors: int = 0
    """Open error-severity findings."""
    warnings: int = 0
    """Open warning-severity findings."""
    infos: int = 0
    """Open info-severity findings."""
    checks: list[str] = Field(default_factory=list)
    """The failing check ids, most severe first (then the most findings, then by id): at most five."""


MAX_STATUS_CHECKS = 256
"""Bounds `summary.checks` (one item per failing check: the catalog has far fewer)."""


class CheckCount(Model):
    """One failing check, counted over the matched workloads."""

    check: str
    """The check id, as `readiness explain` takes it."""
    severity: Severity
    """The most severe of its open findings: error, warning or info."""
    violating: int = 0
    """Matched workloads with at least one open finding of this check."""
    findings: int = 0
    """Its open findings (a workload may have one per container)."""


class Summary(Model):
    """Counts over every workload the policy matched at the last audit."""

    matched: int = 0
    """Workloads the policy judged."""
    compliant: int = 0
    """Matched workloads without open findings."""
    violating: int = 0
    """Matched workloads with at least one open finding."""
    by_severity: dict[str, int] = Field(default_factory=dict)
    """Open findings by severity: error, warning and info, each always present (0 when none)."""
    checks: Annotated[list[CheckCount], Field(max_length=MAX_STATUS_CHECKS)] = Field(default_factory=list)
    """The failing checks, most severe first, then the most violating workloads, then by id. A list of
    objects, not a map keyed by check id: `kubectl describe` title-cases map keys (`Pdb - Blocks -
    Evictions`) and prints list items verbatim."""
    by_check: dict[str, int] | None = None
    """Deprecated, no longer written (replaced by `checks`): open findings by check id. Accepted so that
    a status written by an older operator still validates; the next status write removes it."""


class ExemptionCounts(Model):
    """How the policy's exemptions were used at the last audit."""

    active: int = 0
    """Exemptions that suppressed at least one finding at the last audit."""
    expired: int = 0
    """Exemptions that matched a workload but have expired (they no longer apply)."""


class RulesTarget(Model):
    """Where the policy's alert rules were written."""

    kind: str = ""
    """PrometheusRule, ConfigMap (when the PrometheusRule CRD is not installed), or Disabled."""
    namespace: str = ""
    """Namespace of the object holding the rules."""
    name: str = ""
    """Name of the object holding the rules."""


class ReadinessPolicyStatus(Model):
    """What the operator observed; never edit it by hand."""

    observed_generation: int | None = None
    """The spec generation the status describes."""
    last_audit_time: str | None = None
    """When every matched workload was last audited (RFC 3339)."""
    conditions: Annotated[list[Condition], Field(json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    })] = Field(default_factory=list)
    """Ready and Valid, in the standard Kubernetes shape."""
    summary: Summary = Field(default_factory=Summary)
    """Counts over the matched workloads."""
    top_offenders: Annotated[list[Offender], Field(max_length=MAX_TOP_OFFENDERS)] = Field(
        default_factory=list
    )
    """The workloads with the most severe findings, worst first (at most ten)."""
    exemptions: ExemptionCounts = Field(default_factory=ExemptionCounts)
    """Active and expired exemptions."""
    rules: RulesTarget = Field(default_factory=RulesTarget)
    """Where the alert rules were written."""
