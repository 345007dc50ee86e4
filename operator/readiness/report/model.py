"""The results of an audit, computed once and rendered by every output format.

`audit()` turns loaded documents into `AuditResult`: a verdict per workload (every matching policy's
evaluation), the documents that were skipped (Services, ConfigMaps... counted by kind), and the input
errors (unparseable documents, malformed workloads, crashing checks), which are never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from readiness.checks import all_checks
from readiness.checks.base import Check, Severity
from readiness.context import AuditContext
from readiness.engine import Engine, Evaluation, Exempted, Finding, evaluate_all
from readiness.loader import Document, InputError, container_line
from readiness.workload import DEFAULT_KINDS, KindRegistry, MalformedWorkload, NotAWorkload, Workload, project

SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)


Piece = bytes | memoryview
"""A piece of a rendered report: bytes, or a view of the shared memory a parallel audit's worker wrote."""


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
        """The container's `name:` line for container findings, else the document's first line."""
        container = finding.container
        if container is None:
            return self.document.line
        line = self._lines.get(container)
        if line is None:
            line = self._lines[container] = container_line(self.document, container)
        return line


@dataclass(frozen=True, slots=True)
class Summary:
    workloads: int
    compliant: int
    violating: int
    findings: Mapping[str, int]
    """Open findings by severity (error, warning, info)."""
    exempted: int
    judgements: int
    score: int
    unmatched: int
    """Workloads of a known kind that no policy judged (controlled objects, excluded namespaces)."""


@dataclass(slots=True)
class AuditResult:
    policies: list[str]
    checks: list[Check[Any]] = field(default_factory=list)
    """The checks some policy runs, in catalog order (SARIF's rules, JUnit's test cases)."""
    workloads: list[WorkloadResult] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Documents of kinds the engine does not audit, by kind."""
    unmatched: int = 0
    errors: list[InputError] = field(default_factory=list)

    def summary(self) -> Summary:
        by_severity = {s.value: 0 for s in SEVERITIES}
        exempted = judgements = compliant = 0
        for result in self.workloads:
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
        passed = judgements - exempted - sum(by_severity.values())
        return Summary(
            workloads=len(self.workloads), compliant=compliant, violating=len(self.workloads) - compliant,
            findings=by_severity, exempted=exempted, judgements=judgements,
            score=score(passed, by_severity["warning"], by_severity["error"]), unmatched=self.unmatched,
        )

    def worst(self) -> Severity | None:
        worst: Severity | None = None
        for result in self.workloads:
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


def score(passed: int, warnings: int, errors: int) -> int:
    """Polaris' score, 100 * 2S / (2S + W + 2D), over (check, container) judgements.

    Info findings and exempted findings are left out of both sides: info is advice a policy chose not
    to grade, and an exemption is a documented decision. With nothing judged the score is 100.
    """
    passed = max(passed, 0)
    denominator = 2 * passed + warnings + 2 * errors
    return 100 if denominator == 0 else round(100 * 2 * passed / denominator)


def audit(
    documents: Sequence[Document],
    engines: Sequence[Engine],
    kinds: KindRegistry = DEFAULT_KINDS,
    now: datetime | None = None,
    context_objects: Sequence[Mapping[str, Any]] | None = None,
) -> AuditResult:
    """Judge every workload among `documents` with every matching policy. The context (PodDisruptionBudgets,
    HorizontalPodAutoscalers, Namespace labels) comes from `context_objects` when given (a part of a stream
    audited on its own: the objects of the whole stream), else from `documents`."""
    result = AuditResult([e.name for e in engines], active_checks(engines))
    objects = context_objects if context_objects is not None else context_objects_of(documents)
    context = AuditContext.from_objects(objects)
    namespace_labels = _namespace_labels(objects)
    for document in documents:
        workload = _project(document, kinds, result)
        if workload is None:
            continue
        labels = namespace_labels.get(workload.ref.namespace)
        evaluations = evaluate_all(engines, workload, context, now, labels)
        if not evaluations:
            result.unmatched += 1
            continue
        for evaluation in evaluations:
            result.errors.extend(InputError(document.source, document.line,
                                            f"{workload.ref}: check {error} (policy {evaluation.policy})")
                                 for error in evaluation.errors)
        result.workloads.append(WorkloadResult(document, workload, evaluations))
    return result


CONTEXT_KINDS = frozenset({"PodDisruptionBudget", "HorizontalPodAutoscaler", "Namespace"})
"""The kinds an audit reads besides workloads: the checks' context and the namespaces' labels."""


def context_objects_of(documents: Iterable[Document]) -> list[Mapping[str, Any]]:
    """The objects of `documents` that make up an audit's context, in input order."""
    return [d.obj for d in documents
            if isinstance(d.obj, dict) and isinstance(d.obj.get("kind"), str)
            and d.obj["kind"] in CONTEXT_KINDS]


def active_checks(engines: Sequence[Engine]) -> list[Check[Any]]:
    active = {a.check.id for engine in engines for a in engine.active}
    return [check for check in all_checks() if check.id in active]


def _project(document: Document, kinds: KindRegistry, result: AuditResult) -> Workload | None:
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
        return project(obj, kinds)
    except NotAWorkload:
        result.skipped[kind] += 1
    except MalformedWorkload as error:
        result.errors.append(InputError(document.source, document.line, f"{_describe(obj)}: {error}"))
    return None


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"{obj.get('kind')} {name}" if name else str(obj.get("kind"))


def _a(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}")


def _namespace_labels(objects: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, str]]:
    """Labels of the Namespace objects in the input, for policies with a namespaceSelector. A namespace
    that is not in the input has unknown labels, and such policies then skip its workloads."""
    labels: dict[str, Mapping[str, str]] = {}
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue
        meta = obj.get("metadata")
        if isinstance(meta, Mapping) and isinstance(meta.get("name"), str):
            raw = meta.get("labels")
            known = raw if isinstance(raw, Mapping) else {}
            labels[meta["name"]] = {str(k): str(v) for k, v in known.items()}
    return labels
