"""Kopf wiring: event handlers on workloads, indexes on their context, create/update/resume handlers and
a deletion event on policies (no Kopf finalizer on any object: see readiness.controller.ticker).

Workloads get only `@kopf.on.event`, which keeps no state on the object: no `kopf.zalando.org/*`
annotation and no finalizer ever lands on a workload. Their projection lives in `State.workloads`,
filled by that handler, rather than in a `@kopf.index`: in Kopf 1.45.2 every indexed object's worker
calls `drop_toggle()` on the operator-wide "indexed" barrier, which wakes every waiting worker, so
indexing N workloads costs O(N^2) wake-ups at start-up (measured: 500,000 for 1,000 Deployments, and
the start-up of 10,000 would take minutes). Policies, namespaces, PodDisruptionBudgets,
HorizontalPodAutoscalers stay Kopf indexes: they are few, and the barrier guarantees that they are all
known before the first workload is audited, so a restart never writes a verdict computed without them.
ServiceAccounts are an index too, for the same guarantee, keeping only the token flag of those that set
it; they are more numerous (one per namespace at least), so they pay the barrier's start-up cost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
import orjson

from readiness.context import autoscaler, disruption_budget, service_account_automount
from readiness.controller.auditor import Auditor, AuditQueue
from readiness.controller.heap import HeapKeeper
from readiness.controller.output import Outputs
from readiness.controller.publisher import Publisher
from readiness.controller.settings import OperatorSettings
from readiness.controller.state import IndexedWorkload, LentTemplate, PolicyEntry, State, fingerprint
from readiness.controller.writer import Writer
from readiness.engine import Engine
from readiness.metrics import ReadinessMetrics
from readiness.policy import API_GROUP, API_VERSION, PLURAL, PolicyError, load_policy, parse_duration
from readiness.workload import (
    BUILTIN_RESOURCES,
    KindRegistry,
    MalformedWorkload,
    NotAWorkload,
    TemplateRef,
    Workload,
    WorkloadRef,
    parse_custom_kind,
    project,
    template_ref,
    with_template,
)

log = logging.getLogger(__name__)

TIMER_TICK = 1.0
"""The periodic-audit task ticks this often and re-audits each policy whose auditInterval has elapsed."""
MIN_AUDIT_INTERVAL = 1.0


@dataclasses.dataclass(frozen=True)
class WatchedKind:
    kind: str
    group: str
    version: str
    plural: str


@dataclasses.dataclass
class Runtime:
    """Everything the handlers share; the async parts are created in the startup handler."""

    settings: OperatorSettings
    kinds: KindRegistry
    watched: list[WatchedKind]
    state: State = dataclasses.field(default_factory=State)
    metrics: ReadinessMetrics = dataclasses.field(default_factory=ReadinessMetrics)
    auditor: Auditor | None = None
    audits: AuditQueue | None = None
    publisher: Publisher | None = None
    writer: Writer | None = None
    heap: HeapKeeper | None = None
    api: Any = None
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    metrics_port: int | None = None
    last_periodic: dict[str, float] = dataclasses.field(default_factory=dict)
    policy_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    registry: kopf.OperatorRegistry | None = None


def watched_kinds(settings: OperatorSettings, kinds: KindRegistry) -> list[WatchedKind]:
    watched: list[WatchedKind] = []
    for kind in settings.kinds:
        if kind not in BUILTIN_RESOURCES:
            raise ValueError(f"--kinds: unknown kind {kind!r} (built-in: {', '.join(BUILTIN_RESOURCES)})")
        group, version, plural = BUILTIN_RESOURCES[kind]
        watched.append(WatchedKind(kind, group, version, plural))
    for text in settings.custom_kinds:
        custom = parse_custom_kind(text)  # the CLI's parser: one syntax (settings.deprecations warns)
        kinds.register(custom.spec)
        # Kopf resolves a kind name to the served plural and preferred version itself.
        spec = custom.spec
        watched.append(WatchedKind(spec.kind, spec.group, "", custom.plural or spec.kind))
    return watched


# -- projections kept in the indexes ---------------------------------------------------------------------

BULKY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
"""Annotations no check reads that can be as big as the object itself (`kubectl apply` copies the whole
manifest into the first): never kept in the projection. They still count in the fingerprint."""


PROJECTED_METADATA = ("name", "generateName", "namespace", "uid", "generation", "labels", "annotations",
                      "ownerReferences")
"""The metadata `project()` reads; managedFields and the rest never reach the projection."""


def compact(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """A copy of `body` with only what the projection reads: no status, no managedFields, no
    BULKY_ANNOTATIONS. The projection keeps sub-trees of what it is given (the pod spec): made by an orjson
    round-trip, those share their dict keys with every other workload's (orjson caches short keys),
    where the JSON parser behind the watch gives each object its own copy of every key (3.3 KB of a
    Deployment's 4.4 KB projection, measured). The raw body is never mutated: Kopf owns it."""
    meta = body.get("metadata")
    if not isinstance(meta, Mapping):
        return body  # malformed: project() names the problem
    slim_meta = {key: meta[key] for key in PROJECTED_METADATA if key in meta}
    annotations = slim_meta.get("annotations")
    if isinstance(annotations, Mapping) and any(key in annotations for key in BULKY_ANNOTATIONS):
        slim_meta["annotations"] = {k: v for k, v in annotations.items() if k not in BULKY_ANNOTATIONS}
    slim = {key: value for key, value in body.items() if key not in ("metadata", "status")}
    slim["metadata"] = slim_meta
    try:
        copied: Mapping[str, Any] = orjson.loads(orjson.dumps(slim))
    except (orjson.JSONEncodeError, TypeError):  # not plain JSON data (tests feed YAML): keep as it is
        return slim
    return copied


def index_workload(runtime: Runtime, body: Mapping[str, Any], plural: str, digest: str | None = None,
                   ) -> dict[WorkloadRef, IndexedWorkload]:
    """The index entry of one workload; {} for a malformed one (logged once, counted, skipped).
    `digest`: its fingerprint when the caller computed it already."""
    state = runtime.state
    try:
        slim = compact(body)
        link = _remember_link(state, slim)
        digest = digest or fingerprint(body)
        if link is not None:  # an Argo Rollout running another workload's pod template
            slim, digest = _with_indexed_template(state, slim, link, digest)
        workload = _judged_through_rollout(state, project(slim, runtime.kinds))
    except (MalformedWorkload, NotAWorkload) as error:
        # _TemplatePending: judged once the referenced object is seen (its event re-projects this one)
        meta = body.get("metadata") or {}
        ref = WorkloadRef(str(body.get("kind")), str(meta.get("namespace") or ""),
                          str(meta.get("name") or ""))
        if runtime.state.malformed.get(ref) != str(error):
            runtime.state.malformed[ref] = str(error)
            log.warning("%s %s: %s", "not judging yet" if isinstance(error, _TemplatePending)
                        else "skipping malformed", ref, error)
        return {}
    runtime.state.malformed.pop(workload.ref, None)
    # The Workload keeps only the pod spec, labels and annotations: managedFields and status are dropped.
    outputs = Outputs.observed(workload.annotations, workload.labels)
    return {workload.ref: IndexedWorkload(workload, digest, outputs, plural)}


def _remember_link(state: State, slim: Mapping[str, Any]) -> TemplateRef | None:
    """Keep a Rollout's workloadRef (and its body, to re-project it when the target changes); a target it
    no longer names goes to `state.unlinked`, to be judged on its own again."""
    link = template_ref(slim)
    if link is None and not state.template_refs:
        return None
    meta = slim.get("metadata") or {}
    rollout = link.rollout if link is not None else WorkloadRef(
        str(slim.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    old = state.template_refs.get(rollout)
    if old is not None and (link is None or old.target != link.target):
        state.unlinked.add(old.target)
    if link is None:
        state.template_refs.pop(rollout, None)
        state.rollout_bodies.pop(rollout, None)
    else:
        state.template_refs[rollout] = link
        state.rollout_bodies[rollout] = slim
    return link


class _TemplatePending(MalformedWorkload):
    """The workload a Rollout's workloadRef names is not (yet) in the index."""


def _with_indexed_template(state: State, rollout: Mapping[str, Any], link: TemplateRef, digest: str,
                           ) -> tuple[Mapping[str, Any], str]:
    """The Rollout with the referenced workload's pod template, from that workload's projection, and a
    fingerprint that changes with the template (so a template change re-audits the Rollout)."""
    target = state.workloads.get(link.target)
    lent = state.lent_templates.get(link.target)
    if target is not None:
        projected = target.workload
        template: Mapping[str, Any] = {"metadata": {"labels": dict(projected.pod_labels)},
                                       "spec": projected.pod_spec}
        source_fingerprint = target.fingerprint
    elif lent is not None:
        template, source_fingerprint = lent.template, lent.fingerprint
    else:
        raise _TemplatePending(f"spec.workloadRef: {link.target} is not visible to the operator (not "
                               "created yet, or it could not be read): the Rollout is judged once it is")
    source = {"kind": link.target.kind, "metadata": {"name": link.target.name},
              "spec": {"template": template}, "template": template}
    return with_template(rollout, source), f"{digest}+{source_fingerprint}"


def _judged_through_rollout(state: State, workload: Workload) -> Workload:
    """A workload that only lends its pod template to a Rollout (Argo scales it to zero: scaleDown
    onsuccess or progressively, or it is at zero already) is judged through the Rollout, never alerted on
    by itself, like a controlled object."""
    if not state.template_refs or workload.controlled:
        return workload
    link = next((r for r in state.template_refs.values() if r.target == workload.ref), None)
    if link is None or not link.manages(workload.replicas):
        return workload
    return dataclasses.replace(workload, controlled=True)


def relink_templates(runtime: Runtime, ref: WorkloadRef, deleted: bool) -> list[WorkloadRef]:
    """After an event on `ref`: the workloads whose projection depends on it, re-projected from what the
    index holds. A Rollout's (dis)appearance flips whether its target is judged on its own; a target's
    change is its Rollouts' template change."""
    state = runtime.state
    if not state.template_refs and not state.unlinked:
        return []
    changed: list[WorkloadRef] = []
    link = state.template_refs.get(ref)
    if deleted and link is not None:
        del state.template_refs[ref]
        state.rollout_bodies.pop(ref, None)
        state.unlinked.add(link.target)
    targets = {*state.unlinked, *([link.target] if link is not None else [])}
    state.unlinked.clear()
    for target in targets:
        entry = state.workloads.get(target)
        if entry is not None:
            workload = _judged_through_rollout(state, dataclasses.replace(entry.workload, controlled=False))
            if workload.controlled != entry.workload.controlled:
                state.workloads[target] = dataclasses.replace(entry, workload=workload)
                state.audited.pop(target, None)  # same fingerprint, other verdict: audit it again
                changed.append(target)
    for rollout, link in list(state.template_refs.items()):
        body = state.rollout_bodies.get(rollout)
        if link.target != ref or body is None:
            continue
        entry = state.workloads.get(rollout)
        indexed = index_workload(runtime, body, entry.plural if entry else "rollouts",
                                 entry.fingerprint.partition("+")[0] if entry else fingerprint(body))
        if rollout in indexed:
            state.workloads[rollout] = indexed[rollout]
            changed.append(rollout)
        else:
            state.workloads.pop(rollout, None)
    return changed


_engines: dict[str, PolicyEntry] = {}
"""Each policy's compiled current generation (tens of KiB each): an edit replaces it, a deletion drops it."""


def index_policy(body: Mapping[str, Any]) -> dict[str, PolicyEntry]:
    """Compile a policy once per generation. An invalid one is kept with its error (Valid=False)."""
    meta = body.get("metadata") or {}
    name, uid, generation = str(meta.get("name")), str(meta.get("uid")), int(meta.get("generation") or 0)
    cached = _engines.get(name)
    if cached is None or (cached.uid, cached.generation) != (uid, generation):
        data = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
        try:
            policy = load_policy(data, f"ReadinessPolicy {name}")
            engine = Engine(policy)
            interval = max(MIN_AUDIT_INTERVAL, parse_duration(policy.spec.audit_interval))
            cached = PolicyEntry(name, uid, generation, engine, None, interval)
        except (PolicyError, ValueError) as error:
            cached = PolicyEntry(name, uid, generation, None, str(error).splitlines()[0], 0.0)
        _engines[name] = cached
    return {name: cached}


def forget_policy_engine(name: str) -> None:
    _engines.pop(name, None)


def index_pdb(body: Mapping[str, Any]) -> dict[str, Any]:
    budget = disruption_budget(body)
    return {budget.namespace: budget} if budget is not None else {}


def index_hpa(body: Mapping[str, Any]) -> dict[str, Any]:
    """((namespace, target kind, target name), minReplicas, maxReplicas) by namespace."""
    found = autoscaler(body)
    return {found[0][0]: found} if found is not None else {}


def index_service_account(body: Mapping[str, Any]) -> dict[str, Any]:
    """(name, automountServiceAccountToken) of a ServiceAccount that sets the flag, by namespace. The
    others (most of a cluster's thousands) mount the token as the default does and are not kept."""
    found = service_account_automount(body)
    if found is None:
        return {}
    (namespace, name), flag = found
    return {namespace: (name, flag)}


def context_fingerprint(body: Mapping[str, Any]) -> str:
    return repr((body.get("spec"), (body.get("metadata") or {}).get("labels")))


def automount_fingerprint(body: Mapping[str, Any]) -> str:
    """What a ServiceAccount contributes to verdicts: its flag; "" when unset, as for an absent one."""
    found = service_account_automount(body)
    return "" if found is None else repr(found[1])


# -- registration ----------------------------------------------------------------------------------------

def register(runtime: Runtime, registry: kopf.OperatorRegistry) -> None:
    """Register every handler into `registry`, closing over `runtime` (no module-level globals, so tests
    can run several operators one after another)."""
    for watched in runtime.watched:
        _register_workload(runtime, registry, watched)
    if any(watched.kind == "Rollout" for watched in runtime.watched):
        _register_pod_templates(runtime, registry)
    _register_context(runtime, registry)
    _register_policies(runtime, registry)


def _resource(watched: WatchedKind) -> tuple[str, ...]:
    if watched.version:
        return (watched.group, watched.version, watched.plural)
    return (watched.group, watched.plural)


def _register_workload(runtime: Runtime, registry: kopf.OperatorRegistry, watched: WatchedKind) -> None:
    resource = _resource(watched)
    suffix = watched.kind.lower()

    @kopf.on.event(*resource, id=f"audit_{suffix}", registry=registry)
    async def audit(type: str | None, body: kopf.Body, resource: kopf.Resource, **_: Any) -> None:
        # Returns without awaiting any write: the audit is queued (see AuditQueue), so Kopf's worker for
        # this object, and the raw body it holds, are released at once rather than after our PATCH.
        meta = body.get("metadata") or {}
        ref = WorkloadRef(watched.kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if type == "DELETED":
            runtime.state.fetched_for.pop(ref, None)
        else:
            if watched.kind == "Rollout":
                await read_unwatched_template(runtime, ref, body)
            remember_workload(runtime, ref, body, resource.plural)
        on_workload_event(runtime, ref, type)
        for linked in relink_templates(runtime, ref, type == "DELETED"):
            on_workload_event(runtime, linked, "MODIFIED")


def lend_template(body: Mapping[str, Any]) -> LentTemplate | None:
    """The pod template of a PodTemplate, Deployment or ReplicaSet, for the Rollouts that reference it."""
    template = body.get("template") if body.get("kind") == "PodTemplate" else (body.get("spec") or {}).get(
        "template")
    if not isinstance(template, Mapping):
        return None
    slim = compact({"metadata": {}, "template": template})["template"]
    return LentTemplate(slim, fingerprint({"spec": slim}))


async def read_unwatched_template(runtime: Runtime, rollout: WorkloadRef, body: Mapping[str, Any]) -> None:
    """A Rollout naming a Deployment or ReplicaSet whose kind the operator does not watch: read the target
    (one GET per change of the Rollout, never per status update) so the Rollout is judged, not pending."""
    try:
        link = template_ref(body)
    except MalformedWorkload:
        return  # the index names the problem
    state = runtime.state
    if (link is None or link.target.kind == "PodTemplate" or runtime.writer is None
            or any(watched.kind == link.target.kind for watched in runtime.watched)):
        return
    digest = fingerprint(body)
    if state.fetched_for.get(rollout) == digest:
        return
    group, version, plural = BUILTIN_RESOURCES[link.target.kind]
    target = link.target
    path = f"/apis/{group}/{version}/namespaces/{target.namespace}/{plural}/{target.name}"
    try:
        found = await runtime.writer.get(path)
    except Exception as error:  # ApiException 404 (absent: pending, said once) or any failure
        if getattr(error, "status", None) != 404:
            log.warning("could not read %s for %s: %s", target, rollout, error)
            return  # retried on the Rollout's next event
        found = None
    state.fetched_for[rollout] = digest
    lent = lend_template(found) if isinstance(found, Mapping) else None
    if lent is None:
        state.lent_templates.pop(target, None)
    else:
        state.lent_templates[target] = lent


def _register_pod_templates(runtime: Runtime, registry: kopf.OperatorRegistry) -> None:
    """PodTemplates are watched when Rollouts are: a Rollout's `spec.workloadRef` may name one. They are few
    (no built-in controller creates them), and only their pod templates are kept."""
    state = runtime.state

    @kopf.on.event("", "v1", "podtemplates", id="pod_templates", registry=registry)
    async def pod_template_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata") or {}
        ref = WorkloadRef("PodTemplate", str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        lent = None if type == "DELETED" else lend_template(body)
        if lent == state.lent_templates.get(ref):
            return
        if lent is None:
            state.lent_templates.pop(ref, None)
        else:
            state.lent_templates[ref] = lent
        for linked in relink_templates(runtime, ref, deleted=False):
            on_workload_event(runtime, linked, "MODIFIED")


def remember_workload(runtime: Runtime, ref: WorkloadRef, body: Mapping[str, Any], plural: str) -> None:
    """Keep the projection of a workload seen on the watch, projecting only when what we judge changed:
    the echo of our own patch (one per workload at start-up) then costs a hash, not a projection."""
    state = runtime.state
    digest = fingerprint(body)
    entry = state.workloads.get(ref)
    meta = body.get("metadata") or {}
    if (entry is not None and entry.fingerprint == digest and entry.plural == plural
            and entry.workload.uid == str(meta.get("uid") or "")):
        outputs = Outputs.observed(meta.get("annotations") or {}, meta.get("labels") or {})
        if outputs != entry.outputs:
            state.workloads[ref] = dataclasses.replace(entry, outputs=outputs)
        return
    entry = index_workload(runtime, body, plural, digest).get(ref)
    if entry is None:
        state.workloads.pop(ref, None)
    else:
        state.workloads[ref] = entry


def on_workload_event(runtime: Runtime, ref: WorkloadRef, event_type: str | None) -> None:
    auditor, audits, state = runtime.auditor, runtime.audits, runtime.state
    assert auditor is not None and audits is not None
    if event_type == "DELETED":
        auditor.forget(ref)
        state.malformed.pop(ref, None)
        return
    item = state.workload(ref)
    if item is None:  # malformed: logged by the index
        auditor.forget(ref)
        return
    lock = auditor.locks.get(ref)
    if lock is None or not lock.locked():  # the watch is the truth, unless our own write is in flight
        state.known[ref] = item.outputs
    if state.audited.get(ref) == item.fingerprint:
        return  # our own patch, a status update, or nothing we judge: no evaluation at all
    audits.put(ref)


def _register_context(runtime: Runtime, registry: kopf.OperatorRegistry) -> None:
    # Index functions are `async def` although they never await: Kopf runs plain `def` handlers in a
    # thread pool, a thread hop per object.
    state = runtime.state

    @kopf.index("", "v1", "namespaces", id="namespaces", registry=registry)
    async def namespaces(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.on.event("", "v1", "namespaces", id="namespace_changed", registry=registry)
    async def namespace_changed(name: str, labels: kopf.Labels, type: str | None, **_: Any) -> None:
        current = dict(labels)
        previous = state.seen_namespace_labels.get(name)
        state.seen_namespace_labels[name] = current
        if type == "DELETED":
            state.seen_namespace_labels.pop(name, None)
            return
        if previous is None or previous == current:
            return
        if any(engine.uses_namespace_labels for engine in state.engines()):
            await _reaudit(runtime, state.refs_in(name))

    @kopf.index("policy", "v1", "poddisruptionbudgets", id="pdbs", registry=registry)
    async def pdbs(body: kopf.Body, **_: Any) -> dict[str, Any]:
        return index_pdb(body)

    @kopf.index("autoscaling", "v2", "horizontalpodautoscalers", id="hpas", registry=registry)
    async def hpas(body: kopf.Body, **_: Any) -> dict[str, Any]:
        return index_hpa(body)

    @kopf.index("", "v1", "serviceaccounts", id="service_accounts", registry=registry)
    async def service_accounts(body: kopf.Body, **_: Any) -> dict[str, Any]:
        return index_service_account(body)

    async def context_changed(kind: str, namespace: str | None, name: str, current: str, type: str | None,
                              ) -> None:
        """`current`: the object's context fingerprint, "" when it is gone or contributes nothing."""
        namespace = namespace or ""
        key = f"{kind}/{namespace}/{name}"
        current = "" if type == "DELETED" else current
        previous = state.seen_context.get(key, "")
        if current:
            state.seen_context[key] = current
        else:
            state.seen_context.pop(key, None)
        if previous == current:
            return
        state.contexts.pop(namespace, None)
        if type is not None:  # None: the initial listing, audited by the workloads' own events
            await _reaudit(runtime, state.refs_in(namespace))

    @kopf.on.event("policy", "v1", "poddisruptionbudgets", id="pdb_changed", registry=registry)
    async def pdb_changed(namespace: str | None, name: str, body: kopf.Body, type: str, **_: Any) -> None:
        await context_changed("pdb", namespace, name, context_fingerprint(body), type)

    @kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", id="hpa_changed", registry=registry)
    async def hpa_changed(namespace: str | None, name: str, body: kopf.Body, type: str, **_: Any) -> None:
        await context_changed("hpa", namespace, name, context_fingerprint(body), type)

    @kopf.on.event("", "v1", "serviceaccounts", id="service_account_changed", registry=registry)
    async def service_account_changed(namespace: str | None, name: str, body: kopf.Body, type: str,
                                      **_: Any) -> None:
        await context_changed("sa", namespace, name, automount_fingerprint(body), type)


async def _reaudit(runtime: Runtime, refs: list[WorkloadRef]) -> None:
    """Re-evaluate even though the workloads themselves did not change (their context did)."""
    assert runtime.auditor is not None
    for ref in refs:
        runtime.state.audited.pop(ref, None)
    await runtime.auditor.audit_many(refs)


def _register_policies(runtime: Runtime, registry: kopf.OperatorRegistry) -> None:
    resource = (API_GROUP, API_VERSION, PLURAL)

    @kopf.index(*resource, id="policies", registry=registry)
    async def policies(body: kopf.Body, **_: Any) -> dict[str, PolicyEntry]:
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return {}  # being deleted: judge nothing with it from now on
        return index_policy(body)

    @kopf.on.resume(*resource, id="policy_changed", registry=registry)
    @kopf.on.create(*resource, id="policy_changed", registry=registry)
    @kopf.on.update(*resource, id="policy_changed", registry=registry)
    async def policy_changed(name: str, body: kopf.Body, reason: str, **_: Any) -> None:
        await on_policy_changed(runtime, name, body, reason == kopf.Reason.RESUME)

    # Deletion is seen as a watch event, not an on.delete handler, and the periodic re-audit runs in
    # one task (readiness.controller.ticker), not a Kopf timer: either would put Kopf's finalizer on
    # every policy, and a policy deleted while the operator is away would hang on it.
    @kopf.on.event(*resource, id="policy_deleted", registry=registry)
    async def policy_deleted(name: str, type: str | None, **_: Any) -> None:
        if type == "DELETED":
            await on_policy_deleted(runtime, name)


async def on_policy_changed(runtime: Runtime, name: str, body: Mapping[str, Any], resumed: bool) -> None:
    auditor, publisher = runtime.auditor, runtime.publisher
    assert auditor is not None and publisher is not None
    entry = index_policy(body)[name]
    publisher.seed(name, body.get("status"))
    if entry.engine is None:
        if runtime.policy_errors.get(name) != entry.error:
            runtime.policy_errors[name] = entry.error or ""
            log.warning("policy %s is invalid: %s", name, entry.error)  # logged once per error
        refs = auditor.drop_policy(name)
        await auditor.audit_many(refs)  # its part disappears from the workloads
        await publisher.write_invalid(name, entry.error or "invalid", entry.generation)
        await publisher.delete_rules(name)
        return
    runtime.policy_errors.pop(name, None)
    await publisher.sync_rules(entry)
    if not resumed:
        await auditor.audit_policy(name)
    # On resume (operator start) every workload gets its own initial event, audited with the complete
    # policy index: a policy-wide audit here would only evaluate everything twice.
    publisher.mark_audited(name, force=not resumed)
    runtime.last_periodic[name] = time.monotonic()


async def on_policy_deleted(runtime: Runtime, name: str) -> None:
    auditor, publisher = runtime.auditor, runtime.publisher
    assert auditor is not None and publisher is not None
    forget_policy_engine(name)
    refs = auditor.drop_policy(name)
    await auditor.audit_many(refs)
    await publisher.delete_rules(name)  # its PolicyReport results go with the next flush (drop_policy)
    publisher.forget(name)
    runtime.last_periodic.pop(name, None)
    runtime.policy_errors.pop(name, None)


def policy_due(runtime: Runtime, name: str, now: float) -> bool:
    """Whether a policy's auditInterval has elapsed since its last audit by this replica. Never before
    its create/resume handler audited it: a standby replica (never resumed) has nothing to re-audit."""
    entry = runtime.state.policy(name)
    last = runtime.last_periodic.get(name)
    if entry is None or entry.engine is None or last is None:
        return False
    return now - last >= entry.interval


async def on_policy_tick(runtime: Runtime, name: str) -> None:
    """Re-audit a policy's workloads (its auditInterval has elapsed): catches exemptions that
    expired and PDBs that changed without any workload event."""
    if runtime.auditor is None or runtime.publisher is None:
        return
    runtime.last_periodic[name] = time.monotonic()
    state = runtime.state
    for ref in state.matched_by(name):
        state.audited.pop(ref, None)
    await runtime.auditor.audit_policy(name)
    runtime.publisher.mark_audited(name)
