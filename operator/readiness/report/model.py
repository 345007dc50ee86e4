"""The results of an audit, computed once and rendered by every output format.

`audit()` turns loaded documents into `AuditResult`: a verdict per workload (every matching policy's
evaluation), the documents that were skipped (Services, ConfigMaps... counted by kind), and the input
errors (unparseable documents, malformed workloads, crashing checks), which are never silently dropped.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from readiness.checks import all_checks
from readiness.checks.base import Check, Severity
from readiness.context import AuditContext, disruption_budget_problem
from readiness.engine import Engine, Evaluation, Exempted, Finding, evaluate_all
from readiness.loader import Anchor, Document, InputError, SkippedInput, container_line, field_line
from readiness.workload import (
    DEFAULT_KINDS,
    TEMPLATE_PATHS,
    KindRegistry,
    MalformedWorkload,
    NotAWorkload,
    TemplateRef,
    Workload,
    WorkloadRef,
    project,
    template_ref,
    with_template,
)

SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server sets on every namespace (its name): selectors on it work offline too."""


Piece = bytes | memoryview
"""A piece of a rendered report: bytes, or a view of the shared memory a parallel audit's worker wrote."""


@dataclass(frozen=True, slots=True)
class NoObjects(InputError):
    """An input that holds no Kubernetes object at all: an input error (exit 2), reported in every format
    like the others; its message names the input, so it is said as it is."""

    def __str__(self) -> str:
        return self.message


@dataclass(slots=True)
class WorkloadResult:
    """One audited workload: where it was read and every matching policy's verdict."""

    document: Document
    workload: Workload
    evaluations: list[Evaluation]
    _lines: dict[str, int] = field(default_factory=dict)
    """Container name -> line, computed once: every renderer asks for each finding's line."""
    prerendered: tuple[str, Piece] | None = None
    """(format, this workload's part of that report), rendered ahead by the process that judged it (both
    processes of a parallel audit, see readiness.report.parallel); None: the renderer makes it."""
    _score: int | None = -1
    """`workload_score`, computed once (the summary and the renderers ask); -1: not yet."""

    @property
    def score(self) -> int | None:
        """This workload's score (see `workload_score`); None when no check applied to it."""
        if self._score == -1:
            self._score = workload_score(self)
        return self._score

    def prerendered_as(self, output: str) -> Piece | None:
        """This workload's part of the `output` report when it was rendered ahead, else None."""
        ahead = self.prerendered
        return ahead[1] if ahead is not None and ahead[0] == output else None

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        return [(e.policy, f) for e in self.evaluations for f in e.findings]

    @property
    def exempted(self) -> list[tuple[str, Exempted]]:
        return [(e.policy, x) for e in self.evaluations for x in e.exempted]

    @property
    def compliant(self) -> bool:
        return all(not e.findings for e in self.evaluations)

    def line_of(self, finding: Finding) -> int:
        """The line of the finding's field when it names one (`env[3]`), else the container's `name:` line
        for container findings, else the document's first line."""
        container = finding.container
        if finding.field is not None:
            key = f"{container or ''}\0{finding.field}"  # NUL: in no container name or field path
            line = self._lines.get(key)
            if line is None:
                anchors = _anchors(self._field_root(container), finding.field)
                line = self._lines[key] = field_line(self.document, container, anchors)
            return line
        if container is None:
            return self.document.line
        line = self._lines.get(container)
        if line is None:
            line = self._lines[container] = container_line(self.document, container)
        return line

    def _field_root(self, container: str | None) -> Any:
        """What a finding's field path starts from: its container's spec, or the pod spec."""
        if container is None:
            return self.workload.pod_spec
        return next((c.spec for c in self.workload.containers if c.name == container), None)


_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


def _anchors(root: Any, path: str) -> list[Anchor]:
    """The text anchors of a field path (`env[3]` -> the `env` key, then the name of its item 3)."""
    anchors: list[Anchor] = []
    value = root
    for step in _STEP.finditer(path):
        key, index = step.group(1), step.group(2)
        anchors.append(("key", key))
        value = value.get(key) if isinstance(value, Mapping) else None
        if index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            name = value.get("name") if isinstance(value, Mapping) else None
            if not isinstance(name, str):
                break  # an item without a name: its list's key is as near as the text scan gets
            anchors.append(("name", name))
    return anchors


@dataclass(frozen=True, slots=True)
class Summary:
    workloads: int
    compliant: int
    violating: int
    findings: Mapping[str, int]
    """Open findings by severity (error, warning, info)."""
    exempted: int
    judgements: int
    score: int | None
    """The run's score (`run_score`); None when nothing was judged."""
    unmatched: int
    """Workloads of a known kind that no policy judged (controlled objects, excluded namespaces)."""
    scored: int = 0
    """Workloads with at least one judgement: those the score averages."""
    warnings_only: int = 0
    """Scored workloads whose worst open finding is a warning (scores PASS_SCORE to 99)."""
    not_ready: int = 0
    """Scored workloads with an open error-level finding (scores below PASS_SCORE)."""


@dataclass(slots=True)
class AuditResult:
    policies: list[str]
    checks: list[Check[Any]] = field(default_factory=list)
    """The checks some policy runs, in catalog order (SARIF's rules, JUnit's test cases)."""
    workloads: list[WorkloadResult] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Documents of kinds the engine does not audit, by kind: the context kinds among them were read
    (`context_kinds`), the others not (`skipped_kinds`)."""
    unmatched: int = 0
    errors: list[InputError] = field(default_factory=list)
    assumed: dict[tuple[str, str], None] = field(default_factory=dict)
    """(policy, namespace) pairs judged on an assumption: the policy has a namespaceSelector and the
    namespace's labels are unknown (no Namespace object in the input, no --namespace-labels), so it is
    assumed to match. An ordered set: each pair is said once, in the order first met."""
    skipped_files: list[SkippedInput] = field(default_factory=list)
    """Files of a directory walk that hold no Kubernetes object (readiness.discovery): each a notice, their
    number in every format's summary."""
    counted: list[WorkloadResult] | None = None
    """The workloads the summary counts, when `workloads` shows only some of them (`only_violating`)."""
    source_notices: list[str] = field(default_factory=list)
    """What the input's source says about itself (a cluster audit: no ReadinessPolicy in the cluster, so
    the built-in policy judged it), first among the notices."""

    @property
    def all_workloads(self) -> list[WorkloadResult]:
        """Every audited workload, shown or not: what the summary and "nothing was judged" count."""
        return self.workloads if self.counted is None else self.counted

    def only_violating(self) -> AuditResult:
        """This result showing only the workloads with open findings (--only-failing); the summary still
        counts them all."""
        shown = [w for w in self.workloads if not w.compliant]
        return dataclasses.replace(self, workloads=shown, counted=self.all_workloads)

    def context_kinds(self) -> dict[str, int]:
        """Objects read as the audit's context (PodDisruptionBudgets, HPAs, ServiceAccounts, Namespaces),
        by kind: not audited themselves, but not skipped either."""
        return {kind: count for kind, count in sorted(self.skipped.items()) if kind in CONTEXT_KINDS}

    def skipped_kinds(self) -> dict[str, int]:
        """Objects neither audited nor read (Services, ConfigMaps...), by kind."""
        return {kind: count for kind, count in sorted(self.skipped.items()) if kind not in CONTEXT_KINDS}

    def skipped_file_count(self) -> int:
        """How many files of a directory walk were skipped (a Helm chart counts all of its files)."""
        return sum(skipped.files for skipped in self.skipped_files)

    def notices(self) -> list[str]:
        """What the whole run must say besides its verdicts, in every format: the assumptions it made,
        then "nothing was judged" when that is so."""
        said = [*self.source_notices,
                *(assumption_notice(policy, namespace) for policy, namespace in self.assumed)]
        empty = self.nothing_judged()
        return [*said, empty] if empty else said

    def nothing_judged(self) -> str | None:
        """`nothing was judged: why` when no policy made a single judgement, else None. An audit that
        judged nothing is not a clean one: the CLI exits 3 for it unless --allow-empty."""
        workloads = self.all_workloads
        if any(e.results for w in workloads for e in w.evaluations):
            return None
        skipped = sum(self.skipped.values())
        if workloads:
            why = f"no check applied to the {len(workloads)} matched workload(s)"
        elif self.unmatched:
            why = (f"no policy ({', '.join(self.policies)}) matched any of the {self.unmatched} workload(s) "
                   f"(match.kinds, namespaces, excludeNamespaces, selector, namespaceSelector; "
                   f"owned objects are judged through their owner)")
        else:
            why = "the input holds no workload" + (f" ({skipped} other object(s) skipped)" if skipped else "")
        return f"{NOTHING_JUDGED}: {why}"

    def summary(self) -> Summary:
        by_severity = {s.value: 0 for s in SEVERITIES}
        exempted = judgements = compliant = 0
        workloads = self.all_workloads
        for result in workloads:
            clean = True
            for evaluation in result.evaluations:
                judgements += evaluation.results
                exempted += len(evaluation.exempted)
                findings = evaluation.findings
                if findings:
                    clean = False
                    for finding in findings:
                        by_severity[finding.severity] += 1  # a StrEnum: the same key as its value
            compliant += clean
        scores = [s for w in workloads if (s := w.score) is not None]
        not_ready = sum(s < PASS_SCORE for s in scores)
        return Summary(
            workloads=len(workloads), compliant=compliant, violating=len(workloads) - compliant,
            findings=by_severity, exempted=exempted, judgements=judgements,
            score=run_score(scores), unmatched=self.unmatched, scored=len(scores),
            warnings_only=sum(PASS_SCORE <= s < 100 for s in scores), not_ready=not_ready,
        )

    def worst(self) -> Severity | None:
        worst: Severity | None = None
        for result in self.all_workloads:
            for evaluation in result.evaluations:
                for finding in evaluation.findings:
                    if finding.severity is Severity.ERROR:
                        return Severity.ERROR  # nothing is worse: no need to look further
                    if worst is None or finding.severity.rank > worst.rank:
                        worst = finding.severity
        return worst

    def fails(self, threshold: Severity | None) -> bool:
        """Whether any open finding is at or above `threshold` (None: never)."""
        worst = self.worst()
        return threshold is not None and worst is not None and worst.rank >= threshold.rank


NOTHING_JUDGED = "nothing was judged"


def assumption_notice(policy: str, namespace: str) -> str:
    """The notice for a (policy, namespace) judged on an assumed namespaceSelector match."""
    return (f"namespace {namespace}: labels unknown (no Namespace object in the input, no --namespace-labels "
            f"{namespace}:KEY=VALUE), assumed to match the namespaceSelector of policy {policy}")


# -- the score (docs/cli.md, "Score") ---------------------------------------------------------------------
# A score a person can act on: 100 is clean, PASS_SCORE..99 has warnings only, below PASS_SCORE has an
# error-level finding (what the default --fail-on error gate fails on), however much else passes. Within
# its band, the share of checks passed sets the number. Checks, not (check, container) judgements: a pod of
# five containers without probes has one thing to fix, not five.

PASS_SCORE = 60
"""A workload (and a run) scores at least this exactly when no open finding is at error severity."""
ERROR_WEIGHT = 3
"""A check failing at error counts as this many passed (or warning) checks in a score's share."""


_ERROR, _WARNING = Severity.ERROR, Severity.WARNING


def check_counts(evaluation: Evaluation) -> tuple[int, int, int]:
    """(checks passed, checks failing at warning, checks failing at error) of one policy's verdict: a
    check counts once, at the worst severity of its open findings. Checks whose findings are all exempted
    or info count on neither side: an exemption is a documented decision, info is advice a policy chose
    not to grade."""
    if not evaluation.results:
        return 0, 0, 0
    findings, exempted = evaluation.findings, evaluation.exempted
    if not findings and not exempted:  # the usual case, and the fast one
        return len(evaluation.checks_run), 0, 0
    errors: set[str] = set()
    warnings: set[str] = set()
    ungraded = {x.finding.check for x in exempted} if exempted else set()
    for finding in findings:  # one pass, the enum members bound once: a quarter of the time of two sets
        check, severity = finding.check, finding.severity
        ungraded.add(check)
        if severity is _ERROR:
            errors.add(check)
        elif severity is _WARNING:
            warnings.add(check)
    # every finding's check is one that ran: the passes are the others
    passed = max(len(evaluation.checks_run) - len(ungraded), 0)
    return passed, len(warnings - errors), len(errors)


def band_score(passed: int, warnings: int, errors: int) -> int:
    """100 without findings; else the share of checks passed, S / (S + W + 3E), placed in its band:
    PASS_SCORE + 39 * share with warnings only (60-99), 59 * share with any error (0-59)."""
    if not warnings and not errors:
        return 100
    share = passed / (passed + warnings + ERROR_WEIGHT * errors)
    if errors:
        return min(PASS_SCORE - 1, round((PASS_SCORE - 1) * share))
    return min(99, PASS_SCORE + round((99 - PASS_SCORE) * share))


def workload_score(result: WorkloadResult) -> int | None:
    """A workload's score over every policy that judged it; None when no check applied to it."""
    passed = warnings = errors = 0
    for evaluation in result.evaluations:
        s, w, e = check_counts(evaluation)
        passed, warnings, errors = passed + s, warnings + w, errors + e
    if not (passed or warnings or errors):
        return None
    return band_score(passed, warnings, errors)


def run_score(scores: Sequence[int]) -> int | None:
    """The mean of the workloads' scores (each workload counts once, whatever its size), kept below
    PASS_SCORE when any workload is: a run passes only if every workload does. None: nothing scored."""
    if not scores:
        return None
    mean = round(sum(scores) / len(scores))
    return min(mean, PASS_SCORE - 1) if min(scores) < PASS_SCORE else mean


def audit(
    documents: Sequence[Document],
    engines: Sequence[Engine],
    kinds: KindRegistry = DEFAULT_KINDS,
    now: datetime | None = None,
    context_objects: Sequence[Mapping[str, Any]] | None = None,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> AuditResult:
    """Judge every workload among `documents` with every matching policy. The context (PodDisruptionBudgets,
    HorizontalPodAutoscalers, Namespace labels) comes from `context_objects` when given (a part of a stream
    audited on its own: the objects of the whole stream), else from `documents`. `namespace_labels` (from
    --namespace-labels) replace the labels of the Namespace objects of the same name. A namespace whose
    labels are still unknown is assumed to match a namespaceSelector, and `AuditResult.assumed` says so:
    skipping its workloads would let a CI gate pass on manifests it never judged."""
    result = AuditResult([e.name for e in engines], active_checks(engines))
    objects = context_objects if context_objects is not None else context_objects_of(documents)
    context = AuditContext.from_objects(objects)
    known = _namespace_labels(objects)
    for name, labels in (namespace_labels or {}).items():
        known[name] = {**labels, NAMESPACE_NAME_LABEL: name}
    links = _template_links(documents)
    for document in documents:
        workload = _project(document, kinds, result, links)
        if workload is None:
            continue
        evaluations = _evaluate(engines, workload, context, now, known.get(workload.ref.namespace), result)
        if not evaluations:
            result.unmatched += 1
            continue
        for evaluation in evaluations:
            result.errors.extend(InputError(document.source, document.line,
                                            f"{workload.ref}: check {error} (policy {evaluation.policy})")
                                 for error in evaluation.errors)
        result.workloads.append(WorkloadResult(document, workload, evaluations))
    return result


CONTEXT_KINDS = frozenset({"PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceAccount", "Namespace"})
"""The kinds an audit reads besides workloads: the checks' context and the namespaces' labels."""


def _evaluate(engines: Sequence[Engine], workload: Workload, context: AuditContext, now: datetime | None,
              labels: Mapping[str, str] | None, result: AuditResult) -> list[Evaluation]:
    """Every matching policy's verdict, a namespaceSelector with unknown labels taken as matching (and
    noted in `result.assumed`)."""
    if labels is not None:
        return evaluate_all(engines, workload, context, now, labels)
    evaluations = []
    for engine in engines:
        if engine.matches(workload, None, unknown_labels_match=True):
            if engine.uses_namespace_labels:  # it matched on the assumption only
                result.assumed[(engine.name, workload.ref.namespace)] = None
            evaluations.append(engine.evaluate(workload, context, now))
    return evaluations


def context_objects_of(documents: Iterable[Document]) -> list[Mapping[str, Any]]:
    """The objects of `documents` that make up an audit's context, in input order."""
    return [d.obj for d in documents
            if isinstance(d.obj, dict) and isinstance(d.obj.get("kind"), str)
            and d.obj["kind"] in CONTEXT_KINDS]


def active_checks(engines: Sequence[Engine]) -> list[Check[Any]]:
    active = {a.check.id for engine in engines for a in engine.active}
    return [check for check in all_checks() if check.id in active]


@dataclass(frozen=True, slots=True)
class _TemplateLinks:
    """Argo Rollouts that run another object's pod template (`spec.workloadRef`), and those objects."""

    targets: Mapping[WorkloadRef, Mapping[str, Any]]
    """The referenced objects found in the input."""
    managing: Mapping[WorkloadRef, TemplateRef]
    """Each referenced object's reference, by the object."""

    def resolve(self, obj: Mapping[str, Any], ref: TemplateRef) -> Mapping[str, Any]:
        target = self.targets.get(ref.target)
        if target is None:
            raise MalformedWorkload(f"spec.workloadRef: {ref.target}, whose pod template the Rollout runs, "
                                    "is not in the input")
        return with_template(obj, target)

    def through_rollout(self, workload: Workload) -> Workload:
        """A referenced Deployment that only lends its template (Argo scales it to zero) is judged
        through its Rollout, like a controlled object: not on its own."""
        ref = self.managing.get(workload.ref)
        if ref is None or not ref.manages(workload.replicas):
            return workload
        return dataclasses.replace(workload, controlled=True)


def _template_links(documents: Sequence[Document]) -> _TemplateLinks | None:
    """None when no Rollout references a template (the usual case: no second pass over the input)."""
    refs: list[TemplateRef] = []
    for document in documents:
        obj = document.obj
        if isinstance(obj, dict) and obj.get("kind") == "Rollout":
            try:
                ref = template_ref(obj)
            except MalformedWorkload:  # _project reports it
                continue
            if ref is not None:
                refs.append(ref)
    if not refs:
        return None
    wanted = {ref.target for ref in refs}
    targets: dict[WorkloadRef, Mapping[str, Any]] = {}
    for document in documents:
        obj = document.obj
        meta = obj.get("metadata") if isinstance(obj, dict) and obj.get("kind") in TEMPLATE_PATHS else None
        if isinstance(meta, dict):
            key = WorkloadRef(obj["kind"], str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            if key in wanted:
                targets[key] = obj
    return _TemplateLinks(targets, {ref.target: ref for ref in refs})


def _project(document: Document, kinds: KindRegistry, result: AuditResult,
             links: _TemplateLinks | None = None) -> Workload | None:
    obj = document.obj
    if not isinstance(obj, dict):
        result.errors.append(InputError(document.source, document.line,
                                        f"expected a Kubernetes object (a mapping), got {_a(obj)}"))
        return None
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        result.errors.append(InputError(document.source, document.line, "document has no kind"))
        return None
    try:
        ref = template_ref(obj)  # None unless a Rollout runs another object's template
        if ref is not None:
            obj = (links or _NO_LINKS).resolve(obj, ref)
        workload = project(obj, kinds)
        return links.through_rollout(workload) if links is not None else workload
    except NotAWorkload:
        result.skipped[kind] += 1
        problem = disruption_budget_problem(obj) if kind == "PodDisruptionBudget" else None
        if problem is not None:  # a budget that protects nothing: say so, and judge the rest without it
            result.errors.append(InputError(document.source, document.line, f"{_describe(obj)}: {problem}"))
    except MalformedWorkload as error:
        result.errors.append(InputError(document.source, document.line, f"{_describe(obj)}: {error}"))
    return None


_NO_LINKS = _TemplateLinks({}, {})


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    try:
        return f"{obj.get('kind')} {name}" if name else str(obj.get("kind"))
    except ValueError:  # a name of over 4,300 digits, which str() refuses: the error message names it
        return str(obj.get("kind"))


def _a(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
             type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


def _namespace_labels(objects: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, str]]:
    """Labels of the Namespace objects in the input, for policies with a namespaceSelector, with the
    `kubernetes.io/metadata.name` label the API server sets on every namespace."""
    labels: dict[str, Mapping[str, str]] = {}
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue
        meta = obj.get("metadata")
        if isinstance(meta, Mapping) and isinstance(meta.get("name"), str):
            raw = meta.get("labels")
            known = raw if isinstance(raw, Mapping) else {}
            labels[meta["name"]] = {**{str(k): str(v) for k, v in known.items()},
                                    NAMESPACE_NAME_LABEL: meta["name"]}
    return labels
