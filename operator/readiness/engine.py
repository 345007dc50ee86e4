"""The pure core: a policy, compiled once, judges workloads. No I/O, no clock unless given one.

The operator, the admission webhook and the CLI all call `Engine.evaluate`, so they can never disagree.
"""

from __future__ import annotations

import reprlib
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from readiness.checks import CATALOG, all_checks
from readiness.checks.base import FIELD, Category, Check, CheckParams, Severity
from readiness.context import AuditContext
from readiness.records import record
from readiness.selectors import GlobSet, LabelMatcher, compile_selector
from readiness.workload import BUILTIN_KINDS, ContainerRole, Workload, WorkloadClass, WorkloadRef

if TYPE_CHECKING:  # the policy models (pydantic) load only where a policy is validated
    from readiness.policy import Exemption, ReadinessPolicy

EXEMPT_ANNOTATION = "readiness.dev/exempt"
EXEMPT_REASON_ANNOTATION = "readiness.dev/exempt-reason"
EXEMPT_UNTIL_ANNOTATION = "readiness.dev/exempt-until"

EMPTY_CONTEXT = AuditContext()


@record
class Finding:
    """One open problem: a check that failed on a workload or one of its containers."""

    check: str
    category: Category
    severity: Severity
    message: str
    container: str | None = None
    field: str | None = None
    """Where in the container (or, for a workload check, the pod spec) the fault is, when the check says
    (`env[3]`, `livenessProbe`): reports point at that line rather than the container's."""


@dataclass(frozen=True, slots=True)
class Exempted:
    """A finding that an exemption suppressed, kept so reports can show what was waived and why."""

    finding: Finding
    source: str
    """`policy` (spec.exemptions[i]) or `annotation` (readiness.dev/exempt on the workload)."""
    reason: str
    expires: datetime | None


@dataclass(frozen=True, slots=True)
class ExpiredExemption:
    """An exemption that would apply to this workload but has expired: it no longer suppresses anything."""

    source: str
    checks: tuple[str, ...]
    reason: str
    expired_at: datetime


@dataclass(slots=True)
class Evaluation:
    """The verdict of one policy on one workload."""

    policy: str
    workload: WorkloadRef
    findings: list[Finding] = field(default_factory=list)
    exempted: list[Exempted] = field(default_factory=list)
    expired_exemptions: list[ExpiredExemption] = field(default_factory=list)
    checks_run: tuple[str, ...] = ()
    """Ids of the checks that applied to this workload (passes are these minus the findings' checks)."""
    results: int = 0
    """How many (check, container) judgements were made: the denominator of the score."""
    notices: list[str] = field(default_factory=list)
    """Problems with the input that did not stop the audit (an unreadable exemption annotation...)."""
    errors: list[str] = field(default_factory=list)
    """Checks that crashed on this workload; the others still ran."""

    @property
    def compliant(self) -> bool:
        return not self.findings

    def at_least(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= severity.rank]


@dataclass(frozen=True, slots=True)
class ActiveCheck:
    """A check as a policy configures it: resolved parameters and severity."""

    check: Check[Any]
    params: CheckParams
    severity: Severity
    roles: frozenset[ContainerRole] | None


@dataclass(frozen=True, slots=True)
class _CompiledExemption:
    index: int
    exemption: Exemption
    namespaces: GlobSet
    names: GlobSet
    kinds: frozenset[str]
    selector: LabelMatcher
    checks: frozenset[str]
    containers: GlobSet

    def covers_workload(self, workload: Workload) -> bool:
        ref = workload.ref
        return (
            (not self.namespaces or self.namespaces.matches(ref.namespace))
            and (not self.names or self.names.matches(ref.name))
            and (not self.kinds or ref.kind in self.kinds)
            and self.selector(workload.labels)
        )

    def covers_finding(self, finding: Finding) -> bool:
        if "*" not in self.checks and finding.check not in self.checks:
            return False
        if not self.containers:
            return True
        return finding.container is not None and self.containers.matches(finding.container)


class _Vars(dict[str, Any]):
    """Message template variables; unknown names fall back to the check's parameters."""

    def __init__(self, params: CheckParams, values: Mapping[str, Any]) -> None:
        super().__init__({name: _quotable(value) for name, value in values.items()})
        self._params = params

    def __missing__(self, key: str) -> Any:
        return getattr(self._params, key, "{" + key + "}")


QUOTED_CHARS_MAX = 200
"""The most of a manifest's value a finding's message quotes: a value can be as large as its input (a
list of aliases expands to millions of items), a message stays one line."""
_QUOTED = reprlib.Repr()
_QUOTED.maxlevel, _QUOTED.maxlist, _QUOTED.maxdict, _QUOTED.maxset, _QUOTED.maxtuple = 2, 4, 4, 4, 4
_QUOTED.maxstring = _QUOTED.maxother = _QUOTED.maxlong = 40
_SCALARS = (bool, float, type(None))


def _quotable(value: Any) -> Any:
    """A manifest's value as a message may quote it: short strings and numbers unchanged (a template may
    format them), anything else a bounded rendering (reprlib stops at a few items and levels, so it never
    walks what aliases made huge)."""
    cls = value.__class__
    if cls is str:
        return value if len(value) <= QUOTED_CHARS_MAX else _shortened(value)
    if cls is int:
        bits = value.bit_length()
        return value if bits <= 256 else f"an integer of about {bits * 3 // 10} digits"
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | dict | tuple | set | frozenset):
        return _shortened(_QUOTED.repr(value))
    return value


def _shortened(text: str) -> str:
    return text if len(text) <= QUOTED_CHARS_MAX else text[:QUOTED_CHARS_MAX - 3] + "..."


_FIXED_FIELDS = frozenset({"container", "workload"})
_SHARED_FINDINGS_MAX = 512
_FLAT_PLANS_MAX = 256

_Entry = tuple["_Step", Any, CheckParams, int]
"""(step, check function, parameters, container index or -1 for a workload-level check)."""
_Flat = tuple[tuple[_Entry, ...], int]
"""A flattened plan and its number of judgements."""


class _Step:
    """One active check, prepared for the hot loop: its function, parameters and a message formatter
    chosen once from the template's placeholders (most templates only name the container)."""

    __slots__ = ("_shared", "check", "container_fn", "needs_workload", "params", "plain", "roles", "severity",
                 "workload_fn")

    def __init__(self, active: ActiveCheck) -> None:
        check = active.check
        self.check = check
        self.params = active.params
        self.severity = active.severity
        self.roles = active.roles
        self.container_fn: Any = check.container_fn
        self.workload_fn: Any = check.workload_fn
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(check.message) if name is not None}
        except ValueError:
            fields = {"(invalid template)"}
        self.needs_workload = "workload" in fields
        # `plain`: the template uses only {container} and {workload} by name, so str.format can fill it
        # without the parameter fallback (_Vars) and without copying the outcome.
        self.plain = all(f in _FIXED_FIELDS for f in fields)
        self._shared: dict[Any, Finding] = {}

    def finding(self, workload: Workload, container: str | None, outcome: Mapping[str, Any]) -> Finding:
        if self.needs_workload:
            return self._format(workload, container, outcome)
        # Findings are immutable and, without {workload}, depend only on the container's name and the
        # outcome's values, which repeat across a cluster (app, web, istio-proxy; "runs as root"): share
        # one instance per (name, values) (bounded).
        if not outcome:
            key: Any = container
        else:
            try:
                key = (container, *outcome.items())
                hash(key)
            except TypeError:  # an unhashable detail (a list): format it each time
                return self._format(workload, container, outcome)
        shared = self._shared.get(key)
        if shared is None:
            shared = self._format(workload, container, outcome)
            if len(self._shared) < _SHARED_FINDINGS_MAX:
                self._shared[key] = shared
        return shared

    def _format(self, workload: Workload, container: str | None, outcome: Mapping[str, Any]) -> Finding:
        check = self.check
        try:
            if self.plain and not outcome:
                message = check.message.format(
                    container=container or "",
                    workload=str(workload.ref) if self.needs_workload else "",
                )
            else:
                values = _Vars(self.params, outcome)
                values.setdefault("container", container or "")
                if self.needs_workload:
                    values.setdefault("workload", str(workload.ref))
                message = check.message.format_map(values)
        except (ValueError, IndexError, AttributeError, KeyError):
            message = check.title
        at = outcome.get(FIELD) if outcome else None
        return Finding(check.id, check.category, self.severity, message, container,
                       at if at.__class__ is str else None)


@dataclass(frozen=True, slots=True)
class _Match:
    """The `match` part of a policy, as the engine compiles it."""

    namespaces: Sequence[str]
    exclude_namespaces: Sequence[str]
    kinds: Sequence[str]
    selector: Any
    namespace_selector: Any


def _selector(selector: Any) -> LabelMatcher:
    return compile_selector(selector.model_dump(by_alias=True, exclude_none=True) if selector else None)


class Engine:
    """A compiled policy. Build one per policy (or policy generation) and reuse it: compiling validates
    parameters and precomputes, per workload class, the list of checks to run."""

    def __init__(self, policy: ReadinessPolicy) -> None:
        from readiness.policy import UnlistedChecks  # loaded already: `policy` is one of its models

        spec = policy.spec
        match = _Match(spec.match.namespaces, spec.match.exclude_namespaces, spec.match.kinds,
                       spec.match.selector, spec.match.namespace_selector)
        self._policy: ReadinessPolicy | None = policy
        self._builtin_kinds: tuple[str, ...] = ()
        self._compile(policy.name, spec.checks, spec.unlisted_checks is UnlistedChecks.OFF,
                      spec.include_native_sidecars, spec.allow_workload_exemptions, match, spec.exemptions)

    @classmethod
    def builtin(cls, extra_kinds: Iterable[str] = ()) -> Engine:
        """The engine of the built-in policy (`default_policy()`), compiled from the catalog's defaults
        without building the policy object: no validation library is loaded, which is a third of the time
        of a small `readiness audit`. `policy` builds the object when something asks for it. A test checks
        that both ways compile the same engine."""
        engine = cls.__new__(cls)
        kinds = _builtin_policy_kinds(extra_kinds)
        engine._policy = None
        engine._builtin_kinds = tuple(kinds)
        engine._compile(BUILTIN_POLICY_NAME, None, False, True, BUILTIN_ALLOWS_WORKLOAD_EXEMPTIONS,
                        _Match((), (), kinds, None, None), ())
        return engine

    @property
    def policy(self) -> ReadinessPolicy:
        if self._policy is None:
            self._policy = default_policy(self._builtin_kinds)
        return self._policy

    def _compile(self, name: str, checks: Any, only_listed: bool, include_native_sidecars: bool,
                 allow_workload_exemptions: bool, match: _Match, exemptions: Sequence[Exemption]) -> None:
        self.name = name
        self._checks = checks
        self._only_listed = only_listed
        self._include_native_sidecars = include_native_sidecars
        self._allow_workload_exemptions = allow_workload_exemptions
        # Short enough for an admission warning line (the webhook clips at 120 characters).
        self._ignored_annotation_notice = "" if allow_workload_exemptions else (
            f"{EXEMPT_ANNOTATION} ignored: policy {name} has allowWorkloadExemptions: false")
        self.active: tuple[ActiveCheck, ...] = tuple(self._activate(check) for check in all_checks()
                                                      if self._enabled(check))
        self._by_class: dict[WorkloadClass, tuple[ActiveCheck, ...]] = {
            wc: tuple(a for a in self.active if wc in a.check.classes) for wc in WorkloadClass
        }
        self._ids_by_class = {wc: tuple(a.check.id for a in checks) for wc, checks in self._by_class.items()}
        self._plans = {wc: tuple(_Step(a) for a in checks) for wc, checks in self._by_class.items()}
        self._flat: dict[tuple[WorkloadClass, tuple[ContainerRole, ...]], _Flat] = {}
        self._namespaces = GlobSet(match.namespaces)
        self._excluded = GlobSet(match.exclude_namespaces)
        self._kinds = frozenset(match.kinds)
        self._selector = _selector(match.selector)
        self._namespace_selector = _selector(match.namespace_selector) if match.namespace_selector else None
        self._exemptions = tuple(self._compile_exemption(i, e) for i, e in enumerate(exemptions))

    # -- compiling -------------------------------------------------------------------------------------

    def _settings(self, check: Check[Any]) -> Any:
        return getattr(self._checks, check.id.replace("-", "_"), None)

    def _enabled(self, check: Check[Any]) -> bool:
        settings = self._settings(check)
        if settings is not None and settings.enabled is not None:
            return bool(settings.enabled)
        if self._only_listed:
            return settings is not None  # listed (perhaps only for a severity): on
        return check.enabled_by_default

    def _activate(self, check: Check[Any]) -> ActiveCheck:
        settings = self._settings(check)
        params = (settings.parameters if settings is not None else None) or check.default_params()
        severity = (settings.severity if settings is not None else None) or check.severity
        roles = check.roles
        if roles is not None and check.category is Category.PROBES and not self._include_native_sidecars:
            roles = roles - {ContainerRole.SIDECAR}
        return ActiveCheck(check, params, severity, roles)

    @staticmethod
    def _compile_exemption(index: int, exemption: Exemption) -> _CompiledExemption:
        return _CompiledExemption(
            index, exemption, GlobSet(exemption.namespaces), GlobSet(exemption.names),
            frozenset(exemption.kinds), _selector(exemption.selector), frozenset(exemption.checks),
            GlobSet(exemption.containers),
        )

    # -- matching --------------------------------------------------------------------------------------

    @property
    def kinds(self) -> frozenset[str]:
        """The workload kinds the policy judges (`match.kinds`): what a cluster audit lists."""
        return self._kinds

    @property
    def uses_namespace_labels(self) -> bool:
        return self._namespace_selector is not None

    def matches_namespace(self, namespace: str, namespace_labels: Mapping[str, str] | None = None,
                          unknown_labels_match: bool = False) -> bool:
        """Whether the policy's namespace globs and selector admit `namespace`. Unknown labels (None)
        fail a namespaceSelector (in a cluster: better to skip than to judge with the wrong policy),
        unless `unknown_labels_match` (the offline audit, which says that it assumed so)."""
        if self._excluded.matches(namespace):
            return False
        if self._namespaces and not self._namespaces.matches(namespace):
            return False
        if self._namespace_selector is not None:
            if namespace_labels is None:
                return unknown_labels_match
            return self._namespace_selector(namespace_labels)
        return True

    def matches(self, workload: Workload, namespace_labels: Mapping[str, str] | None = None,
                unknown_labels_match: bool = False) -> bool:
        """Whether the policy judges this workload. Controlled objects (a Deployment's ReplicaSets, a
        CronJob's Jobs) are judged through their owner."""
        return (
            not workload.controlled
            and workload.ref.kind in self._kinds
            and self.matches_namespace(workload.ref.namespace, namespace_labels, unknown_labels_match)
            and self._selector(workload.labels)
        )

    # -- evaluating ------------------------------------------------------------------------------------

    def evaluate(
        self, workload: Workload, context: AuditContext = EMPTY_CONTEXT, now: datetime | None = None,
    ) -> Evaluation:
        """Judge one workload. Never raises: a crashing check is recorded in `errors`."""
        wclass = workload.workload_class
        containers = workload.containers
        roles = (containers[0].role,) if len(containers) == 1 else tuple(c.role for c in containers)
        flat = self._flat.get((wclass, roles))
        if flat is None:
            flat = self._flatten(wclass, roles)
        entries, judgements = flat
        result = Evaluation(self.name, workload.ref, [], checks_run=self._ids_by_class[wclass])
        findings = result.findings
        failed: _Step | None = None
        # The hot loop: one flat tuple per (check, container) judgement, in check order then container
        # order, prepared once per shape of pod (workload class and container roles).
        for step, fn, params, index in entries:
            if step is failed:  # a crashed check skips its remaining containers, as if never judged
                judgements -= 1
                continue
            try:
                if index < 0:
                    outcome = fn(workload, params, context)
                    if outcome is not None:
                        findings.append(step.finding(workload, None, outcome))
                else:
                    container = containers[index]
                    outcome = fn(container, workload, params)
                    if outcome is not None:
                        findings.append(step.finding(workload, container.name, outcome))
            except Exception as error:  # a check bug must never stop the audit of the others
                failed = step
                result.errors.append(f"{step.check.id}: {type(error).__name__}: {error}")
        result.results = judgements
        if self._ignored_annotation_notice and EXEMPT_ANNOTATION in workload.annotations:
            result.notices.append(self._ignored_annotation_notice)  # said even when nothing is waived
        if findings and (self._exemptions or (self._allow_workload_exemptions
                                             and EXEMPT_ANNOTATION in workload.annotations)):
            self._apply_exemptions(result, workload, now or datetime.now(UTC))
        elif self._exemptions:
            self._note_expired(result, workload, now or datetime.now(UTC))
        return result

    def _flatten(self, wclass: WorkloadClass, roles: tuple[ContainerRole, ...]) -> _Flat:
        entries: list[_Entry] = []
        for step in self._plans[wclass]:
            if step.roles is None:
                entries.append((step, step.workload_fn, step.params, -1))
                continue
            entries.extend((step, step.container_fn, step.params, index)
                           for index, role in enumerate(roles) if role in step.roles)
        flat = (tuple(entries), len(entries))
        if len(self._flat) < _FLAT_PLANS_MAX:  # bounded: pathological inputs vary the container roles
            self._flat[(wclass, roles)] = flat
        return flat

    @staticmethod
    def _finding(active: ActiveCheck, workload: Workload, container: str | None, outcome: Mapping[str, Any],
                 ) -> Finding:
        return _Step(active).finding(workload, container, outcome)

    def _applicable(self, workload: Workload, now: datetime,
                    ) -> tuple[list[_Exemptor], list[ExpiredExemption]]:
        live: list[_Exemptor] = []
        expired: list[ExpiredExemption] = []
        for compiled in self._exemptions:
            if not compiled.covers_workload(workload):
                continue
            e = compiled.exemption
            if e.expired(now):
                expired.append(ExpiredExemption(f"policy:exemptions[{compiled.index}]", tuple(e.checks),
                                                e.reason, e.expires))  # type: ignore[arg-type]
            else:
                live.append(_Exemptor(f"policy:exemptions[{compiled.index}]", compiled.covers_finding,
                                      e.reason, e.expires))
        return live, expired

    def _note_expired(self, result: Evaluation, workload: Workload, now: datetime) -> None:
        _live, expired = self._applicable(workload, now)
        result.expired_exemptions.extend(expired)

    def _apply_exemptions(self, result: Evaluation, workload: Workload, now: datetime) -> None:
        live, expired = self._applicable(workload, now)
        if self._allow_workload_exemptions:
            annotation = annotation_exemption(workload.annotations, now, result.notices)
            if isinstance(annotation, ExpiredExemption):
                expired.append(annotation)
            elif annotation is not None:
                live.append(annotation)
        result.expired_exemptions.extend(expired)
        if not live:
            return
        kept: list[Finding] = []
        for finding in result.findings:
            exemptor = next((x for x in live if x.covers(finding)), None)
            if exemptor is None:
                kept.append(finding)
            else:
                result.exempted.append(Exempted(finding, exemptor.source, exemptor.reason, exemptor.expires))
        result.findings = kept


@dataclass(frozen=True, slots=True)
class _Exemptor:
    source: str
    covers: Any  # Callable[[Finding], bool]
    reason: str
    expires: datetime | None


def parse_time(text: str) -> datetime:
    """An RFC 3339 time or a plain date (taken as midnight UTC). Raises ValueError."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def annotation_exemption(
    annotations: Mapping[str, str], now: datetime, notices: list[str],
) -> _Exemptor | ExpiredExemption | None:
    """Read the workload's own exemption annotations. Invalid ones are ignored with a notice."""
    raw = annotations.get(EXEMPT_ANNOTATION, "").strip()
    if not raw:
        return None
    reason = annotations.get(EXEMPT_REASON_ANNOTATION, "").strip()
    if not reason:
        notices.append(f"{EXEMPT_ANNOTATION} ignored: {EXEMPT_REASON_ANNOTATION} is required")
        return None
    entries: list[tuple[str, str | None]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        check_id, _, container = item.partition(":")
        if check_id != "*" and check_id not in CATALOG:
            notices.append(f"{EXEMPT_ANNOTATION}: unknown check id {check_id!r} ignored")
            continue
        entries.append((check_id, container or None))
    until: datetime | None = None
    if EXEMPT_UNTIL_ANNOTATION in annotations:
        try:
            until = parse_time(annotations[EXEMPT_UNTIL_ANNOTATION])
        except ValueError:
            notices.append(f"{EXEMPT_ANNOTATION} ignored: {EXEMPT_UNTIL_ANNOTATION} "
                           f"{annotations[EXEMPT_UNTIL_ANNOTATION]!r} is not an RFC 3339 time")
            return None
    if until is not None and until <= now:
        return ExpiredExemption("annotation", tuple(c for c, _ in entries), reason, until)

    def covers(finding: Finding) -> bool:
        return any((c == "*" or c == finding.check) and (k is None or k == finding.container)
                   for c, k in entries)

    return _Exemptor("annotation", covers, reason, until)


BUILTIN_POLICY_NAME = "default"
BUILTIN_ALLOWS_WORKLOAD_EXEMPTIONS = True
"""The built-in policy (the offline CLI's default) honours `readiness.dev/exempt` annotations with a
reason, as every peer CLI honours its in-manifest waivers: without a central policy there is nowhere
else to write them. A ReadinessPolicy decides for itself (`allowWorkloadExemptions`, off by default)."""


def _builtin_policy_kinds(extra_kinds: Iterable[str]) -> list[str]:
    """The kinds the built-in policy judges: every built-in workload kind, then `extra_kinds`."""
    kinds = [spec.kind for spec in BUILTIN_KINDS]
    return kinds + [kind for kind in extra_kinds if kind not in kinds]


def default_policy_document(extra_kinds: Iterable[str] = ()) -> dict[str, Any]:
    """The built-in policy as a user would write it."""
    from readiness.policy import API_GROUP, API_VERSION, KIND

    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND,
            "metadata": {"name": BUILTIN_POLICY_NAME},
            "spec": {"match": {"kinds": _builtin_policy_kinds(extra_kinds), "excludeNamespaces": []},
                     "allowWorkloadExemptions": BUILTIN_ALLOWS_WORKLOAD_EXEMPTIONS}}


def default_policy(extra_kinds: Iterable[str] = ()) -> ReadinessPolicy:
    """The built-in policy the CLI uses when none is given: the catalog's defaults, judging every kind
    (and `extra_kinds`). Made without validation (readiness.modelkit.trusted), so that it builds no
    validator; a test checks that it equals `default_policy_document()` validated."""
    from readiness.modelkit import trusted
    from readiness.policy import Match, Metadata, ReadinessPolicy, ReadinessPolicySpec

    match = trusted(Match, kinds=_builtin_policy_kinds(extra_kinds), exclude_namespaces=[])
    return trusted(ReadinessPolicy, metadata=trusted(Metadata, name=BUILTIN_POLICY_NAME),
                   spec=trusted(ReadinessPolicySpec, match=match,
                                allow_workload_exemptions=BUILTIN_ALLOWS_WORKLOAD_EXEMPTIONS))


def evaluate_all(engines: Iterable[Engine], workload: Workload, context: AuditContext = EMPTY_CONTEXT,
                 now: datetime | None = None, namespace_labels: Mapping[str, str] | None = None,
                 ) -> list[Evaluation]:
    """Every matching policy's verdict on one workload."""
    return [e.evaluate(workload, context, now) for e in engines if e.matches(workload, namespace_labels)]
