"""A small, immutable projection of a workload manifest: what the engine needs and nothing else.

The same projection is built from a YAML file (CLI), an admission request (webhook) and a watch event
(operator), so that the three judge a workload identically. Ephemeral containers are ignored: they are
debugging aids added after the fact, never part of the workload's design.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeGuard

from readiness.records import record

EMPTY: Mapping[str, Any] = MappingProxyType({})


class ContainerRole(StrEnum):
    """Where a container sits in the pod: it decides which checks apply to it."""

    APP = "app"
    INIT = "init"
    SIDECAR = "sidecar"  # a native sidecar: an init container with restartPolicy: Always


class WorkloadClass(StrEnum):
    """How a kind behaves, which decides the checks that make sense for it."""

    SERVICE = "service"  # long-running, replicated: Deployment, StatefulSet, ReplicaSet, Rollout
    DAEMON = "daemon"  # one per node: DaemonSet (no replica count)
    BATCH = "batch"  # runs to completion: Job, CronJob, Pod with restartPolicy Never/OnFailure (no probes)
    POD = "pod"  # a bare Pod that keeps running (restartPolicy Always): no controller recreates it


RUN_TO_COMPLETION = frozenset({"Never", "OnFailure"})
"""Pod restartPolicy values of a pod that is done when its containers exit: judged like a Job's."""


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Where a kind keeps its pod template and replica count. Paths are tuples of keys."""

    kind: str
    group: str
    workload_class: WorkloadClass
    template_path: tuple[str, ...]
    """Path to the pod template (an object with `metadata` and `spec`). Empty: the object is a Pod."""
    replicas_path: tuple[str, ...] = ()
    """Path to the replica count; empty when the kind has none."""
    strategy_path: tuple[str, ...] = ()
    """Path to the update strategy; empty when the kind has none we judge."""


BUILTIN_KINDS: tuple[KindSpec, ...] = (
    KindSpec("Deployment", "apps", WorkloadClass.SERVICE, ("spec", "template"), ("spec", "replicas"),
             ("spec", "strategy")),
    KindSpec("StatefulSet", "apps", WorkloadClass.SERVICE, ("spec", "template"), ("spec", "replicas"),
             ("spec", "updateStrategy")),
    KindSpec("DaemonSet", "apps", WorkloadClass.DAEMON, ("spec", "template"), (), ("spec", "updateStrategy")),
    KindSpec("ReplicaSet", "apps", WorkloadClass.SERVICE, ("spec", "template"), ("spec", "replicas")),
    # The ReplicaSet's predecessor, still made by old charts and tutorials: replicated, no rollout strategy.
    KindSpec("ReplicationController", "", WorkloadClass.SERVICE, ("spec", "template"), ("spec", "replicas")),
    KindSpec("Job", "batch", WorkloadClass.BATCH, ("spec", "template")),
    KindSpec("CronJob", "batch", WorkloadClass.BATCH, ("spec", "jobTemplate", "spec", "template")),
    KindSpec("Pod", "", WorkloadClass.POD, ()),
    # Argo Rollouts keep a Deployment-shaped pod template; users of every peer ask for it.
    KindSpec("Rollout", "argoproj.io", WorkloadClass.SERVICE, ("spec", "template"), ("spec", "replicas"),
             ("spec", "strategy")),
)


BUILTIN_RESOURCES: Mapping[str, tuple[str, str, str]] = {
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "Pod": ("", "v1", "pods"),
    "Rollout": ("argoproj.io", "v1alpha1", "rollouts"),
}
"""Kind -> (API group, version, plural) of the built-in kinds: the operator watches and patches them,
the webhook registers for them."""


class KindRegistry:
    """The kinds the engine understands: the built-in ones plus custom kinds a user declares."""

    def __init__(self, specs: Iterable[KindSpec] = BUILTIN_KINDS) -> None:
        self._by_kind: dict[str, KindSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: KindSpec) -> None:
        self._by_kind[spec.kind] = spec

    def get(self, kind: str) -> KindSpec | None:
        return self._by_kind.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    @staticmethod
    def parse_custom(text: str) -> KindSpec:
        """The KindSpec of a `--custom-kind` declaration (see `parse_custom_kind`)."""
        return parse_custom_kind(text).spec


CUSTOM_KIND_SYNTAX = ("[group/]Kind=template.path[,replicas=path][,strategy=path]"
                      "[,class=service|daemon|batch][,plural=name]")
"""The one syntax of `--custom-kind`, in `readiness audit` and in the operator alike."""
_CUSTOM_KIND_OPTIONS = ("replicas", "strategy", "class", "plural")
_KIND_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclass(frozen=True, slots=True)
class CustomKind:
    """A parsed `--custom-kind` declaration."""

    spec: KindSpec
    plural: str | None = None
    """The resource's plural, when given (the operator watches it; unset: found by discovery)."""
    deprecation: str | None = None
    """A one-line notice when the declaration used a deprecated form, naming its replacement."""


def parse_custom_kind(text: str) -> CustomKind:
    """Parse a `--custom-kind` declaration (CUSTOM_KIND_SYNTAX), e.g.
    `argoproj.io/Rollout=spec.template,replicas=spec.replicas`. The operator's old form
    `group/Kind:plural=...` is accepted, with a deprecation notice naming the `,plural=` spelling."""
    declared = text.strip()
    head, sep, rest = declared.partition("=")
    head, colon, old_plural = head.strip().partition(":")
    group, _, kind = head.rpartition("/")
    if not sep or not rest.strip() or not _KIND_NAME.fullmatch(kind):
        raise ValueError(f"custom kind {text!r}: expected {CUSTOM_KIND_SYNTAX}")
    template_text, *option_texts = rest.split(",")
    options = _custom_options(text, option_texts)
    template = _dotted(template_text)
    if not template:
        raise ValueError(f"custom kind {text!r}: the pod template path is empty")
    try:
        wclass = WorkloadClass(options.get("class", "service"))
    except ValueError:
        raise ValueError(f"custom kind {text!r}: class must be service, daemon or batch") from None
    deprecation = None
    if colon:
        if "plural" in options:
            raise ValueError(f"custom kind {text!r}: the plural is given twice (`:` and `plural=`)")
        if old_plural.strip():
            options["plural"] = old_plural.strip()
        deprecation = (f"--custom-kind {declared!r}: `Kind:plural=` is deprecated, write "
                       f"{head}={rest}" + (f",plural={options['plural']}" if "plural" in options else ""))
    spec = KindSpec(kind, group, wclass, template, _dotted(options.get("replicas", "")),
                    _dotted(options.get("strategy", "")))
    return CustomKind(spec, options.get("plural"), deprecation)


def _custom_options(text: str, items: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in items:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"custom kind {text!r}: option {item.strip()!r} is not key=value")
        if key not in _CUSTOM_KIND_OPTIONS:
            raise ValueError(f"custom kind {text!r}: unknown option {key!r} "
                             f"(known: {', '.join(_CUSTOM_KIND_OPTIONS)})")
        options[key] = value
    return options


def _dotted(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.strip().split(".") if part)


DEFAULT_KINDS = KindRegistry()


@record
class WorkloadRef:
    """Names a workload: stable across the CLI, the operator and the webhook."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@record
class Container:
    """One container of the pod template, with its role."""

    name: str
    role: ContainerRole
    spec: Mapping[str, Any]
    """The raw container object: probes, resources, securityContext, lifecycle, env, image."""

    @property
    def security_context(self) -> Mapping[str, Any]:
        sc = self.spec.get("securityContext")
        return sc if isinstance(sc, Mapping) else EMPTY


@record
class Workload:
    """What the engine judges. Built by `project()`; never mutated."""

    ref: WorkloadRef
    workload_class: WorkloadClass
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    pod_labels: Mapping[str, str]
    """The pod template's labels: what PodDisruptionBudgets and spread constraints select."""
    pod_spec: Mapping[str, Any]
    containers: tuple[Container, ...]
    replicas: int | None
    """The declared replica count (defaulting to 1 as the API server does); None for kinds without one."""
    strategy: Mapping[str, Any] | None
    controlled: bool = False
    """True when a controller owns this object (a ReplicaSet of a Deployment, a Job of a CronJob): the
    owner is audited instead, so reports do not count the same pod template twice."""
    api_version: str = ""
    uid: str = ""
    generation: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pod_security_context(self) -> Mapping[str, Any]:
        sc = self.pod_spec.get("securityContext")
        return sc if isinstance(sc, Mapping) else EMPTY


class NotAWorkload(ValueError):
    """The object is not a kind the engine audits (a Service, a ConfigMap...)."""


class MalformedWorkload(ValueError):
    """The object is of a workload kind but its shape is wrong; the message names the field."""


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """isinstance(value, Mapping), fast for the plain dicts that YAML and JSON parsers build (the ABC
    check costs several lookups, and projection runs it a dozen times per workload)."""
    return value.__class__ is dict or isinstance(value, Mapping)


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not (obj.__class__ is dict or isinstance(obj, Mapping)):
            return None
        obj = obj.get(key)
    return obj


def describe(value: Any) -> str:
    """A value's type for a one-line error, with the value when it is short: `a number (8080)`,
    `a string ('false')`, `a 310-digit number` (never printed: over 4,300 digits, str() raises)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        if abs(value) < 10**18:
            return f"a number ({value})"
        return f"a {int(math.log10(abs(value))) + 1}-digit number"
    if isinstance(value, float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if _is_mapping(value) else f"a {type(value).__name__}"


def _text(value: Any, where: str) -> str:
    """A scalar read as a string (names, label values), as the projection always has; an integer too long
    to print (over 4,300 digits) is named instead of raising."""
    if value.__class__ is str:
        return value
    try:
        return "" if value is None else str(value)
    except ValueError:
        raise MalformedWorkload(f"{where}: expected a string, got {describe(value)}") from None


def _str_map(value: Any, where: str) -> Mapping[str, str]:
    if value is None:
        return EMPTY
    if not _is_mapping(value):
        raise MalformedWorkload(f"{where}: expected a mapping, got {type(value).__name__}")
    return {k if k.__class__ is str else _text(k, where):
            v if v.__class__ is str else _text(v, f"{where}.{k}") for k, v in value.items()}


CONTAINER_FIELD_TYPES: Mapping[str, type] = MappingProxyType({
    **dict.fromkeys(("securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe",
                     "lifecycle"), Mapping),
    **dict.fromkeys(("ports", "env", "envFrom", "volumeMounts", "command", "args"), list),
})
"""The container fields the checks read, by the type the API server requires: a value of another type
(`ports: 8080`) makes the container malformed, named, rather than judged as if the field were unset."""
POD_FIELD_TYPES: Mapping[str, type] = MappingProxyType({
    **dict.fromkeys(("hostNetwork", "hostPID", "hostIPC"), bool),
    **dict.fromkeys(("restartPolicy", "serviceAccountName", "serviceAccount"), str),
    "securityContext": Mapping, "volumes": list,
})
"""The same for the pod spec's fields."""
_EXPECTED = {Mapping: "a mapping", list: "a list", bool: "true or false", str: "a string"}


_FAST_CLASS = {Mapping: dict, list: list, bool: bool, str: str}
"""The class that parsed manifests hold for each expected type: tested first, isinstance only if not."""


def _check_types(obj: Mapping[str, Any], types: Mapping[str, type], where: str) -> None:
    # over the object's keys, not the table's: a container sets few of them (on the hot path)
    for key, value in obj.items():
        expected = types.get(key)
        if expected is None or value is None or value.__class__ is _FAST_CLASS[expected]:
            continue
        if not isinstance(value, expected):
            raise MalformedWorkload(f"{where}.{key}: expected {_EXPECTED[expected]}, got {describe(value)}")


def _containers(pod_spec: Mapping[str, Any]) -> tuple[Container, ...]:
    result: list[Container] = []
    for key, default_role in (("initContainers", ContainerRole.INIT), ("containers", ContainerRole.APP)):
        items = pod_spec.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise MalformedWorkload(f"spec.{key}: expected a list, got {type(items).__name__}")
        for index, item in enumerate(items):
            if not _is_mapping(item):
                raise MalformedWorkload(f"spec.{key}[{index}]: expected a mapping, got {type(item).__name__}")
            _check_types(item, CONTAINER_FIELD_TYPES, f"spec.{key}[{index}]")
            role = default_role
            if role is ContainerRole.INIT and item.get("restartPolicy") == "Always":
                role = ContainerRole.SIDECAR
            name = item.get("name")
            if name.__class__ is not str:  # the f-string only when needed: this runs for every container
                name = _text(name, f"spec.{key}[{index}].name")
            name = name or f"{key}[{index}]"
            result.append(Container(name, role, item))
    return tuple(result)


INT32_MAX = 2**31 - 1
"""Kubernetes' replica counts are int32: the API server rejects anything larger."""


def _replicas(obj: Mapping[str, Any], spec: KindSpec) -> int | None:
    if not spec.replicas_path:
        return None
    value = _dig(obj, spec.replicas_path)
    if value is None:
        return 1  # the API server's default
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedWorkload(f"{'.'.join(spec.replicas_path)}: expected an integer, got {describe(value)}")
    if abs(value) > INT32_MAX:
        raise MalformedWorkload(f"{'.'.join(spec.replicas_path)}: expected a 32-bit integer, "
                                f"got {describe(value)}")
    return value


def _workload_class(declared: WorkloadClass, pod_spec: Mapping[str, Any]) -> WorkloadClass:
    """A bare Pod that runs to completion behaves like a Job's pod, not like a service."""
    if declared is WorkloadClass.POD and pod_spec.get("restartPolicy") in RUN_TO_COMPLETION:
        return WorkloadClass.BATCH
    return declared


def project(obj: Mapping[str, Any], kinds: KindRegistry = DEFAULT_KINDS) -> Workload:
    """Build the engine's view of a manifest. Raises NotAWorkload or MalformedWorkload, never others."""
    if not _is_mapping(obj):
        raise MalformedWorkload(f"expected a mapping, got {type(obj).__name__}")
    kind = obj.get("kind")
    spec = kinds.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise NotAWorkload(f"kind {kind!r} is not a workload kind")
    meta = obj.get("metadata")
    if meta is None:
        meta = EMPTY
    if not _is_mapping(meta):
        raise MalformedWorkload("metadata: expected a mapping")
    name = meta.get("name") or meta.get("generateName") or ""
    template = _dig(obj, spec.template_path) if spec.template_path else obj
    if not _is_mapping(template):
        if _is_mapping(obj.get("spec")) and obj["spec"].get("workloadRef") is not None:
            raise MalformedWorkload("spec.workloadRef: the referenced pod template is not known here "
                                    "(the audit judges the Rollout through it)")
        where = ".".join(spec.template_path) or "(object)"
        raise MalformedWorkload(f"{where}: missing pod template")
    pod_spec = template.get("spec")
    if not _is_mapping(pod_spec):
        where = ".".join((*spec.template_path, "spec"))
        raise MalformedWorkload(f"{where}: missing pod spec")
    _check_types(pod_spec, POD_FIELD_TYPES, "spec")
    template_meta = template.get("metadata") if spec.template_path else meta
    owners = meta.get("ownerReferences")
    controlled = isinstance(owners, list) and any(
        _is_mapping(o) and o.get("controller") for o in owners
    )
    strategy = _dig(obj, spec.strategy_path) if spec.strategy_path else None
    generation = meta.get("generation")
    return Workload(
        ref=WorkloadRef(spec.kind, _text(meta.get("namespace") or "", "metadata.namespace"),
                        _text(name, "metadata.name")),
        workload_class=_workload_class(spec.workload_class, pod_spec),
        labels=_str_map(meta.get("labels"), "metadata.labels"),
        annotations=_str_map(meta.get("annotations"), "metadata.annotations"),
        pod_labels=_str_map(
            template_meta.get("labels") if _is_mapping(template_meta) else None,
            "template.metadata.labels",
        ),
        pod_spec=pod_spec,
        containers=_containers(pod_spec),
        replicas=_replicas(obj, spec),
        strategy=strategy if _is_mapping(strategy) else None,
        controlled=controlled,
        api_version=_text(obj.get("apiVersion"), "apiVersion"),
        uid=_text(meta.get("uid"), "metadata.uid"),
        generation=generation if isinstance(generation, int) and 0 <= generation < 2**63 else 0,
    )


# -- Argo Rollouts' workloadRef -----------------------------------------------------------------------------

TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Deployment": ("spec", "template"), "ReplicaSet": ("spec", "template"), "PodTemplate": ("template",),
})
"""The kinds a Rollout's `spec.workloadRef` may name, and where each keeps the pod template."""
SCALE_DOWN_MODES = ("never", "onsuccess", "progressively")
"""`spec.workloadRef.scaleDown`: what Argo does to the referenced Deployment (unset: never)."""


@record
class TemplateRef:
    """An Argo Rollout's `spec.workloadRef`: the object whose pod template the Rollout runs, instead of a
    `spec.template` of its own (Argo Rollouts' "Reference Deployment From Rollout")."""

    rollout: WorkloadRef
    target: WorkloadRef
    """The referenced object, always in the Rollout's namespace."""
    scale_down: str
    """never: the target keeps its own replicas; onsuccess: Argo scales it to zero once the Rollout is
    healthy; progressively: down as the Rollout scales up (back up if the Rollout fails)."""

    def manages(self, target_replicas: int | None) -> bool:
        """Whether the target only lends its template: Argo scales it to zero, or it is at zero already.
        Such a target is judged through the Rollout, as a ReplicaSet is through its Deployment."""
        return self.scale_down != "never" or target_replicas == 0


def template_ref(obj: Mapping[str, Any]) -> TemplateRef | None:
    """The workloadRef of a Rollout that has no `spec.template` of its own; None for any other object.
    Raises MalformedWorkload naming the field when the reference is unusable."""
    if obj.get("kind") != "Rollout":
        return None
    spec = obj.get("spec")
    if not _is_mapping(spec) or spec.get("workloadRef") is None or spec.get("template") is not None:
        return None
    ref = spec["workloadRef"]
    if not _is_mapping(ref):
        raise MalformedWorkload(f"spec.workloadRef: expected a mapping, got {type(ref).__name__}")
    kind, name, scale_down = ref.get("kind"), ref.get("name"), ref.get("scaleDown") or "never"
    if kind not in TEMPLATE_PATHS:
        raise MalformedWorkload(f"spec.workloadRef.kind: expected {', '.join(TEMPLATE_PATHS)}, got {kind!r}")
    if not isinstance(name, str) or not name:
        raise MalformedWorkload("spec.workloadRef.name: missing")
    if scale_down not in SCALE_DOWN_MODES:
        raise MalformedWorkload(f"spec.workloadRef.scaleDown: expected {', '.join(SCALE_DOWN_MODES)}, "
                                f"got {scale_down!r}")
    meta = obj.get("metadata")
    meta = meta if _is_mapping(meta) else EMPTY
    namespace = str(meta.get("namespace") or "")
    return TemplateRef(WorkloadRef("Rollout", namespace, str(meta.get("name") or "")),
                       WorkloadRef(str(kind), namespace, name), str(scale_down))


def with_template(rollout: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The Rollout as Argo runs it: its `spec.template` taken from the referenced object (a Deployment's or
    ReplicaSet's `spec.template`, a PodTemplate's `template`). Raises MalformedWorkload when it has none."""
    path = TEMPLATE_PATHS.get(str(target.get("kind")), ())
    template = _dig(target, path) if path else None
    if not _is_mapping(template):
        meta = target.get("metadata")
        name = meta.get("name") if _is_mapping(meta) else None
        raise MalformedWorkload(f"spec.workloadRef: {target.get('kind')} {name} has no pod template")
    spec = rollout.get("spec")
    return {**rollout, "spec": {**(spec if _is_mapping(spec) else {}), "template": template}}
