"""The check catalog's building blocks: a check is data plus one small pure function.

A check module declares its parameters as a `CheckParams` dataclass and registers its function with
`@container_check(...)` or `@workload_check(...)`. Everything else (the CRD schema of its parameters,
`readiness explain`, the docs page, the fixture test) is derived from that one declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar, cast, dataclass_transform

from readiness.context import AuditContext
from readiness.workload import Container, ContainerRole, Workload, WorkloadClass


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


class Category(StrEnum):
    PROBES = "probes"
    RESOURCES = "resources"
    SECURITY = "security"
    LIFECYCLE = "lifecycle"
    AVAILABILITY = "availability"
    IMAGES = "images"
    CONFIG = "config"


def camel(name: str) -> str:
    """`max_ratio` -> `maxRatio`: a parameter's name in a policy's YAML."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass_transform(frozen_default=True)
class CheckParams:
    """Base of every check's typed parameters. Each subclass is made a frozen dataclass: camelCase in YAML,
    snake_case in Python, unknown fields rejected, constraints as `Annotated[int, Ge(0)]`
    (annotated_types), cross-field rules in `__post_init__` (raise ValueError). Each field's docstring is
    its description (readiness.modelkit.docstring).

    Plain Python on purpose: the checks and the engine import no validation library, so an audit with the
    built-in policy starts in a third of the time. pydantic validates parameters where a policy sets them
    (readiness.policy), reading `__pydantic_config__`."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "alias_generator": camel, "populate_by_name": True, "extra": "forbid",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)


class NoParams(CheckParams):
    """This check takes no parameters."""


def param_fields(params: type[CheckParams]) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a check's parameters, in declaration order."""
    return dataclasses.fields(cast(Any, params))


Fail = Mapping[str, Any]
"""A failure: the values substituted into the check's message template (may be empty)."""

FAIL: Fail = MappingProxyType({})


FIELD = "field"
"""The detail that says where the fault is, relative to the container (a container check) or the pod spec
(a workload check): `fail(field="env[3]")`. Reports point at that line; templates may use `{field}`."""


def fail(**details: Any) -> Fail:
    return details


P = TypeVar("P", bound=CheckParams)
P_contra = TypeVar("P_contra", bound=CheckParams, contravariant=True)

ContainerFn = Callable[[Container, Workload, Any], Fail | None]
WorkloadFn = Callable[[Workload, Any, AuditContext], Fail | None]

ALL_ROLES = frozenset(ContainerRole)
APP_AND_SIDECARS = frozenset({ContainerRole.APP, ContainerRole.SIDECAR})
LONG_RUNNING = frozenset({WorkloadClass.SERVICE, WorkloadClass.DAEMON, WorkloadClass.POD})
ALL_CLASSES = frozenset(WorkloadClass)


@dataclass(frozen=True, slots=True)
class Check(Generic[P]):
    """One entry of the catalog."""

    id: str
    """Stable kebab-case id: used in policies, annotations, metrics and exemptions. Never renamed."""
    category: Category
    severity: Severity
    """Default severity; a policy may override it."""
    title: str
    """One line naming the problem, for listings."""
    message: str
    """One-line message template; `{container}`, `{workload}` and the function's details are substituted."""
    rationale: str
    """Why it matters in production: printed by `readiness explain` and the docs page."""
    remediation: str
    """How to fix it, with a YAML snippet where one helps."""
    params: type[P]
    enabled_by_default: bool
    classes: frozenset[WorkloadClass]
    """The workload classes the check applies to (batch workloads skip probes and replicas, ...)."""
    roles: frozenset[ContainerRole] | None
    """Container roles the check visits; None for a workload-level check."""
    container_fn: ContainerFn | None = None
    workload_fn: WorkloadFn | None = None
    references: tuple[str, ...] = ()
    """Related ids in other tools (Polaris, kube-score, kube-linter, Checkov, PSA), for migrating users."""
    depends_on: tuple[str, ...] = ()
    """Kinds of other objects the verdict reads from the context (PodDisruptionBudget,
    HorizontalPodAutoscaler, ServiceAccount). They may not exist yet when the workload is admitted (later in
    the same `kubectl apply`, a Helm hook order), so admission only warns "not yet" on such findings and
    leaves the verdict to the audit."""

    def default_params(self) -> P:
        return self.params()


CATALOG: dict[str, Check[Any]] = {}


def _register(check: Check[Any]) -> None:
    if check.id in CATALOG:
        raise RuntimeError(f"duplicate check id {check.id!r}")
    CATALOG[check.id] = check


def container_check(
    *,
    id: str,
    category: Category,
    severity: Severity,
    title: str,
    message: str,
    rationale: str,
    remediation: str,
    params: type[CheckParams] = NoParams,
    enabled_by_default: bool = True,
    classes: frozenset[WorkloadClass] = ALL_CLASSES,
    roles: frozenset[ContainerRole] = ALL_ROLES,
    references: tuple[str, ...] = (),
    depends_on: tuple[str, ...] = (),
) -> Callable[[ContainerFn], ContainerFn]:
    """Register a check that judges each container of the given roles on its own."""

    def register(fn: ContainerFn) -> ContainerFn:
        _register(Check(id, category, severity, title, message, rationale.strip(), remediation.strip(),
                        params, enabled_by_default, classes, roles, container_fn=fn,
                        references=references, depends_on=depends_on))
        return fn

    return register


def workload_check(
    *,
    id: str,
    category: Category,
    severity: Severity,
    title: str,
    message: str,
    rationale: str,
    remediation: str,
    params: type[CheckParams] = NoParams,
    enabled_by_default: bool = True,
    classes: frozenset[WorkloadClass] = ALL_CLASSES,
    references: tuple[str, ...] = (),
    depends_on: tuple[str, ...] = (),
) -> Callable[[WorkloadFn], WorkloadFn]:
    """Register a check that judges the workload (pod-level fields, replicas, strategy, context)."""

    def register(fn: WorkloadFn) -> WorkloadFn:
        _register(Check(id, category, severity, title, message, rationale.strip(), remediation.strip(),
                        params, enabled_by_default, classes, None, workload_fn=fn, references=references,
                        depends_on=depends_on))
        return fn

    return register
