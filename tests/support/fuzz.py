"""Hostile workloads for property-based fuzzing of the engine and the renderers (issue 12).

`batches` draws an audit's worth of documents: workloads whose every field may hold a value of the wrong
type (nulls, huge numbers, unicode, lists where maps go), every probe handler, conflicting security
contexts, native sidecars, and the context objects around them (PodDisruptionBudgets, autoscalers,
ServiceAccounts), odd ones included. `check_batch` runs them through `project()`, `Engine.evaluate` (the
built-in policy and one that enables the whole catalog) and every renderer, and returns what went wrong:
the property is that nothing does. Shared by tests/unit/test_fuzz.py (CI-sized) and
benchmarks/fuzz_bench.py (100,000 examples).
"""

from __future__ import annotations

import functools
import json
import traceback
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from readiness.checks import all_checks
from readiness.context import AuditContext
from readiness.engine import Engine
from readiness.loader import Document, load_json
from readiness.report import FORMATS, RenderOptions, renderer
from readiness.report.model import audit
from readiness.workload import BUILTIN_KINDS, MalformedWorkload, NotAWorkload, project

HUGE = (10**309, int("1" + "0" * 320), -(10**400), 2**64, 2**63, 2**31, -1, 0)
"""Beyond float range (OverflowError on float()), beyond int64 and int32, and the edges."""
huge = st.one_of(st.sampled_from(HUGE), st.integers(5000, 5001).map(lambda digits: 10**digits))
"""... and beyond what str() prints (4,300 digits; made by a map, since hypothesis prints its constants)."""

WORDS = (
    "", "0", "1", "-1", "100m", "1Gi", "1e3", "1E400", "25%", "100%", "0%", "1e5%", "%", "latest", "Always",
    "Never", "OnFailure", "RuntimeDefault", "Localhost", "Unconfined", "ALL", "NET_RAW", "SYS_ADMIN", "true",
    "false", "True", "null", "http", "8080", "/healthz", "Recreate", "RollingUpdate", "OnDelete", "app",
    "web", "nginx:1.25", "nginx@sha256:" + "a" * 64, "registry:5000/app", "Default", "Unmasked", "\x00",
    "\x1b[31m", "é", "名前", "\ud7ff", "\U0001f600", "a\nb", "<&>\"'", "]]>",
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), huge,
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=6),
)
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(("name", "type", "port", "path", "add", "drop", "cpu", "memory",
                                     "key", "value", "matchLabels", "app")) | st.text(max_size=4),
                    inner, max_size=3),
), max_leaves=6)


def maybe(strategy: st.SearchStrategy[Any], odds: int = 5) -> st.SearchStrategy[Any]:
    """The well-typed value most of the time (`odds` branches against one; hypothesis does not pick them
    evenly: 5 gives about 70%), else anything at all (the type-wrong value at this level). The structure
    leading to the pod spec gets long odds, or few workloads would get as far as the checks."""
    # one_of merges equal branches, so each copy is a distinct (identity) map; flatmap would cost 3x
    copies = [strategy.map(functools.partial(_same, copy=copy)) for copy in range(odds)]
    return st.one_of(*copies, anything)


def _same(value: Any, copy: int) -> Any:
    return value


def record(required: dict[str, Any] | None = None, odds: int = 5,
           **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return maybe(st.fixed_dictionaries(required or {}, optional=optional), odds)


ints = st.one_of(st.integers(-2, 700), huge)
ports = st.one_of(st.integers(0, 70000), st.sampled_from(("http", "metrics", "8080", "")), huge)
handler = st.one_of(
    st.fixed_dictionaries({"httpGet": record(port=maybe(ports),
                                             path=maybe(st.sampled_from(("/", "/healthz", "/index.html"))),
                                             scheme=maybe(st.just("HTTP")))}),
    st.fixed_dictionaries({"tcpSocket": record(port=maybe(ports))}),
    st.fixed_dictionaries({"grpc": record(port=maybe(ports), service=maybe(st.text(max_size=3)))}),
    st.fixed_dictionaries({"exec": record(command=maybe(st.lists(st.sampled_from(WORDS), max_size=3)))}),
    anything,
)
probe = maybe(st.builds(lambda h, extra: {**h, **extra} if isinstance(h, dict) else h, handler,
                        st.fixed_dictionaries({}, optional={
                            k: maybe(ints) for k in ("periodSeconds", "failureThreshold", "timeoutSeconds",
                                                     "initialDelaySeconds", "successThreshold")})))
quantity = st.one_of(st.sampled_from(("100m", "1", "1Gi", "512Mi", "1e3", "1E400", "0", "-1", "x", "")),
                     huge, st.integers(0, 10**6), st.floats())
amounts = maybe(st.fixed_dictionaries({}, optional={
    name: maybe(quantity) for name in ("cpu", "memory", "ephemeral-storage")}))
resources = record(requests=amounts, limits=amounts)
seccomp = record(type=st.one_of(st.sampled_from(("RuntimeDefault", "Localhost", "Unconfined", "")),
                                st.lists(st.sampled_from(WORDS), max_size=2),
                                st.dictionaries(st.sampled_from(WORDS), scalars, max_size=2), anything),
                 localhostProfile=maybe(st.text(max_size=3)))
flag = maybe(st.booleans(), odds=10)
"""A boolean, sometimes a string or number that reads like one ("false" is in WORDS)."""
security_context = record(
    runAsNonRoot=flag, runAsUser=maybe(ints), runAsGroup=maybe(ints), privileged=flag,
    allowPrivilegeEscalation=flag, readOnlyRootFilesystem=flag, seccompProfile=seccomp,
    procMount=maybe(st.sampled_from(("Default", "Unmasked"))),
    capabilities=record(add=maybe(st.lists(maybe(st.sampled_from(WORDS)), max_size=3)),
                        drop=maybe(st.lists(maybe(st.sampled_from(WORDS)), max_size=3))),
)
container_ports = st.one_of(st.lists(record(name=maybe(st.sampled_from(("http", "metrics"))),
                                            containerPort=maybe(ports), hostPort=maybe(ports)), max_size=3),
                            st.sampled_from((8080, "8080", None)), anything)
env = maybe(st.lists(record(name=maybe(st.sampled_from(("PASSWORD", "API_TOKEN", "HOME"))),
                            value=maybe(st.text(max_size=4)),
                            valueFrom=record(secretKeyRef=record(name=maybe(st.text(max_size=3))))),
                     max_size=3))
container = maybe(odds=12, strategy=st.fixed_dictionaries({}, optional={
    "name": maybe(st.sampled_from(("app", "web", "istio-proxy", "", "a\x01b", "<x>"))),
    "image": maybe(st.sampled_from(WORDS)),
    "imagePullPolicy": maybe(st.sampled_from(("Always", "IfNotPresent"))),
    "restartPolicy": maybe(st.sampled_from(("Always", "Never"))),
    "livenessProbe": probe, "readinessProbe": probe, "startupProbe": probe,
    "resources": resources, "securityContext": security_context, "ports": container_ports, "env": env,
    "lifecycle": record(preStop=maybe(handler), postStart=maybe(handler)),
    "volumeMounts": maybe(st.lists(anything, max_size=2)),
}))
containers = st.one_of(maybe(st.lists(container, max_size=3), odds=12), st.none())
pod_spec = maybe(odds=12, strategy=st.fixed_dictionaries({"containers": containers}, optional={
    "initContainers": containers,
    "hostNetwork": flag, "hostPID": flag, "hostIPC": flag,
    "securityContext": security_context,
    "terminationGracePeriodSeconds": maybe(ints),
    "automountServiceAccountToken": flag,
    "serviceAccountName": maybe(st.sampled_from(("default", "robot", ""))),
    "restartPolicy": maybe(st.sampled_from(("Always", "Never", "OnFailure"))),
    "volumes": maybe(st.lists(record(name=maybe(st.text(max_size=3)), hostPath=record(path=maybe(st.text()))),
                              max_size=2)),
    "topologySpreadConstraints": maybe(st.lists(record(topologyKey=maybe(st.text(max_size=3)),
                                                       maxSkew=maybe(ints), whenUnsatisfiable=anything,
                                                       labelSelector=anything), max_size=2)),
    "affinity": anything,
}))
labels = maybe(st.dictionaries(st.sampled_from(("app", "tier", "")) | st.text(max_size=3),
                               st.one_of(st.sampled_from(("web", "db", "")), scalars), max_size=3))
annotation_maps = maybe(st.dictionaries(
    st.sampled_from(("readiness.dev/exempt", "readiness.dev/exempt-reason", "readiness.dev/exempt-until")),
    st.one_of(st.sampled_from(("*", "run-as-root", "because", "2020-01-01", "2999-01-01", "not a date")),
              scalars), max_size=3))
metadata = record(
    odds=12, name=maybe(st.sampled_from(("web", "db", "", "名前", "a\x02"))),
    namespace=maybe(st.sampled_from(("", "prod"))),
    labels=labels, annotations=annotation_maps, generation=maybe(ints),
    ownerReferences=maybe(st.lists(record(controller=flag), max_size=1)),
)
template = record({"spec": pod_spec}, odds=12, metadata=record(labels=labels))
rolling = record(maxUnavailable=maybe(st.one_of(ints, st.sampled_from(("25%", "100%", "0", "50%", "1e5%")))),
                 maxSurge=maybe(st.one_of(ints, st.sampled_from(("25%", "0%", "0")))))
strategy = record(type=maybe(st.sampled_from(("RollingUpdate", "Recreate", "OnDelete"))),
                  rollingUpdate=rolling, canary=rolling)
KINDS = tuple(spec.kind for spec in BUILTIN_KINDS)


@st.composite
def workloads(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(KINDS))
    meta = draw(metadata)
    if kind == "Pod":
        return {"kind": kind, "metadata": meta, "spec": draw(pod_spec)}
    body = draw(template)
    if kind == "CronJob":
        body = {"spec": {"template": body}}
        return {"kind": kind, "metadata": meta, "spec": {"jobTemplate": body}}
    spec = draw(record({"template": st.just(body)}, odds=12, replicas=maybe(ints), strategy=strategy,
                       updateStrategy=strategy, minReadySeconds=maybe(ints)))
    return {"kind": kind, "metadata": meta, "spec": spec}


selector = st.one_of(
    record(matchLabels=st.one_of(st.dictionaries(st.sampled_from(("app", "tier")), scalars, max_size=2),
                                 st.just(["app", "web"]), anything),
           matchExpressions=maybe(st.lists(record(key=maybe(st.just("app")), operator=anything,
                                                  values=anything), max_size=2))),
    st.none(), anything,
)
pdbs = st.fixed_dictionaries({"kind": st.just("PodDisruptionBudget"), "metadata": metadata,
                              "spec": record(selector=selector, minAvailable=anything | ints,
                                             maxUnavailable=anything | ints)})
hpas = st.fixed_dictionaries({"kind": st.just("HorizontalPodAutoscaler"), "metadata": metadata,
                              "spec": record(minReplicas=maybe(ints), maxReplicas=maybe(ints),
                                             scaleTargetRef=record(
                                                 kind=maybe(st.sampled_from(KINDS)),
                                                 name=maybe(st.sampled_from(("web", "db")))))})
accounts = st.fixed_dictionaries({"kind": st.just("ServiceAccount"), "metadata": metadata,
                                  "automountServiceAccountToken": flag})
context_objects = st.one_of(pdbs, hpas, accounts)


@st.composite
def lists(draw: st.DrawFn) -> Any:
    """A `List`, with null items and Lists nested in it."""
    items = draw(st.lists(st.one_of(workloads(), st.none(), anything, context_objects), max_size=3))
    if draw(st.booleans()):
        items.append({"kind": "List", "items": draw(st.lists(workloads(), min_size=1, max_size=2))})
    return {"kind": "List", "items": items}


documents = st.one_of(workloads(), workloads(), workloads(), context_objects, lists(), anything)
"""One document of an audit's input: a workload most of the time."""
batches = st.lists(documents, min_size=1, max_size=5)
"""One audit's input: documents, in order."""


def full_catalog_engine() -> Engine:
    """A policy that enables every check of the catalog (the built-in one leaves some off)."""
    from readiness.policy import ReadinessPolicy

    return Engine(ReadinessPolicy.model_validate({"metadata": {"name": "everything"}, "spec": {
        "match": {"kinds": list(KINDS)}, "checks": {c.id: {"enabled": True} for c in all_checks()}}}))


@dataclass
class Outcome:
    """What went wrong in one or more examples."""

    examples: int = 0
    """Documents fed (a List counts once)."""
    batches: int = 0
    """Audits run on them and rendered, in every format."""
    workloads: int = 0
    crashes: Counter[str] = field(default_factory=Counter)
    """Checks that raised (swallowed by the engine into `Evaluation.errors`), by check id."""
    failures: Counter[str] = field(default_factory=Counter)
    """Anything else that raised or produced broken output, by stage and exception."""
    samples: dict[str, str] = field(default_factory=dict)
    """The first message of each crash or failure kind, to start debugging from."""

    @property
    def clean(self) -> bool:
        return not self.crashes and not self.failures

    def add(self, other: Outcome) -> None:
        self.examples += other.examples
        self.batches += other.batches
        self.workloads += other.workloads
        self.crashes.update(other.crashes)
        self.failures.update(other.failures)
        for key, value in other.samples.items():
            self.samples.setdefault(key, value)

    def _fail(self, key: str, error: Exception) -> None:
        self.failures[key] += 1
        if key not in self.samples:
            frame = traceback.extract_tb(error.__traceback__)[-1]
            self.samples[key] = f"{error!r:.300} at {frame.filename}:{frame.lineno}"


def documents_of(batch: list[Any]) -> list[Document]:
    """The batch as the loader would hand it over (Lists expanded), read back from JSON when it can be
    written as JSON (integers of more than 4,300 digits cannot), else as they are."""
    documents: list[Document] = []
    for index, obj in enumerate(batch):
        try:
            text = json.dumps(obj, indent=2)
        except (ValueError, TypeError):
            documents.append(Document("fuzz.yaml", index + 1, obj, ""))
            continue
        loaded = load_json(text, "fuzz.json")
        documents.extend(loaded.documents)
    return documents


def check_batch(batch: list[Any], engines: list[Engine]) -> Outcome:
    outcome = Outcome(examples=len(batch), batches=1)
    context = _context(batch, outcome)
    for obj in batch:
        _judge(obj, engines, context, outcome)
    try:
        result = audit(documents_of(batch), engines)
    except Exception as error:
        outcome._fail(f"audit: {type(error).__name__}", error)
        return outcome
    for name in FORMATS:
        try:
            text = renderer(name)(result, RenderOptions())
            _valid(name, text)
        except Exception as error:
            outcome._fail(f"render {name}: {type(error).__name__}", error)
    return outcome


def _context(batch: list[Any], outcome: Outcome) -> AuditContext:
    objects = [o for o in batch if isinstance(o, dict)]
    try:
        return AuditContext.from_objects(objects)
    except Exception as error:
        outcome._fail(f"context: {type(error).__name__}", error)
        return AuditContext()


def _judge(obj: Any, engines: list[Engine], context: AuditContext, outcome: Outcome) -> None:
    try:
        workload = project(obj)
    except (NotAWorkload, MalformedWorkload):
        return
    except Exception as error:
        outcome._fail(f"project: {type(error).__name__}", error)
        return
    outcome.workloads += 1
    for engine in engines:
        try:
            evaluation = engine.evaluate(workload, context)
        except Exception as error:
            outcome._fail(f"evaluate: {type(error).__name__}", error)
            continue
        for error_line in evaluation.errors:
            check = error_line.partition(":")[0]
            outcome.crashes[check] += 1
            outcome.samples.setdefault(f"check {check}", error_line[:400])


def _valid(name: str, text: str) -> None:
    """JSON and SARIF parse; JUnit is well-formed XML."""
    if name in ("json", "sarif"):
        json.loads(text)
    elif name == "junit":
        ElementTree.fromstring(text.encode())
