"""Audits: evaluate in memory, then write only what changed (annotations, label, Events, status).

One workload's audit is synchronous up to its writes, and a per-workload lock orders concurrent audits
of the same workload (a watch event racing a policy change), so the last write always carries the
latest verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from readiness.controller import output
from readiness.controller.heap import HeapKeeper
from readiness.controller.output import Outputs, PolicyVerdict
from readiness.controller.settings import OperatorSettings
from readiness.controller.state import IndexedWorkload, PolicyEntry, State
from readiness.controller.writer import Writer, resource_path
from readiness.engine import Evaluation
from readiness.metrics import ReadinessMetrics
from readiness.workload import WorkloadRef

log = logging.getLogger(__name__)
BATCH = 500
"""Workloads audited concurrently by a policy change: bounds the tasks alive at once."""


class Auditor:
    def __init__(self, settings: OperatorSettings, state: State, metrics: ReadinessMetrics,
                 writer: Writer | None = None, heap: HeapKeeper | None = None) -> None:
        self.settings = settings
        self.heap = heap
        self.state = state
        self.metrics = metrics
        self.writer = writer
        self.locks: dict[WorkloadRef, asyncio.Lock] = {}
        self.dirty: set[str] = set()
        """Policies whose status (and PolicyReports) may have changed since the last flush."""
        self.dirty_namespaces: dict[str, set[str]] = {}
        self.unsettled: dict[WorkloadRef, list[PolicyVerdict]] = {}
        """Latest verdicts of workloads whose ReadinessViolation Event waits for `event_settle_seconds`."""
        self.settle_tasks: set[asyncio.Task[None]] = set()

    # -- evaluating ------------------------------------------------------------------------------------

    def _verdict(self, entry: PolicyEntry, evaluation: Evaluation) -> PolicyVerdict:
        reporting = entry.engine.policy.spec.reporting  # type: ignore[union-attr]
        return PolicyVerdict(
            entry.name, tuple(evaluation.findings), tuple(evaluation.notices),
            annotations=reporting.annotations and self.settings.annotations,
            labels=reporting.labels and self.settings.labels,
            events=reporting.events and self.settings.events,
        )

    def evaluate(self, item: IndexedWorkload) -> list[PolicyVerdict]:
        """Judge one workload with every valid policy, updating results and metrics."""
        state, ref = self.state, item.ref
        labels = state.namespace_labels(ref.namespace)
        context = state.context(ref.namespace)
        now = datetime.now(UTC)
        verdicts: list[PolicyVerdict] = []
        started = time.perf_counter()
        evaluated = 0
        for name in list(state.policies):
            entry = state.policy(name)
            results = state.results.setdefault(name, {})
            if entry is None or entry.engine is None or not entry.engine.matches(item.workload, labels):
                if results.pop(ref, None) is not None:
                    self.metrics.forget(name, ref)
                    self._mark(name, ref.namespace)
                continue
            evaluation = entry.engine.evaluate(item.workload, context, now)
            evaluated += 1
            previous = results.get(ref)
            results[ref] = evaluation
            if previous is None or previous.findings != evaluation.findings:
                self.metrics.observe(name, ref, evaluation.findings)
            self._mark(name, ref.namespace)
            verdicts.append(self._verdict(entry, evaluation))
        self.metrics.evaluations.inc()
        self.metrics.observe_audit("workload", time.perf_counter() - started)
        return verdicts

    def _mark(self, policy: str, namespace: str) -> None:
        self.dirty.add(policy)
        self.dirty_namespaces.setdefault(policy, set()).add(namespace)

    # -- auditing --------------------------------------------------------------------------------------

    async def audit(self, ref: WorkloadRef) -> None:
        """Audit one workload from the index and write what changed. Never raises: one workload's
        failure must not stop the others (it is logged and counted)."""
        lock = self.locks.setdefault(ref, asyncio.Lock())
        async with lock:
            try:
                await self._audit_locked(ref)
            except Exception as error:
                log.warning("audit of %s failed: %s", ref, error)
        if self.heap is not None:
            self.heap.audited()

    async def _audit_locked(self, ref: WorkloadRef) -> None:
        state = self.state
        item = state.workload(ref)
        if item is None:
            self.forget(ref)
            return
        state.remember(ref)
        verdicts = self.evaluate(item)
        state.audited[ref] = item.fingerprint
        current = state.known.get(ref, item.outputs)
        desired = output.desired_outputs(verdicts, self.settings.violations_max_bytes)
        previous = state.reported.get(ref)
        if previous is None:
            previous = output.parse_violations(current.annotations.get(output.VIOLATIONS))
            state.reported[ref] = previous
        await self._write(item, current, desired)
        await self._announce(item, verdicts, previous)

    # -- events ----------------------------------------------------------------------------------------

    async def _announce(self, item: IndexedWorkload, verdicts: list[PolicyVerdict],
                  previous: tuple[frozenset[output.FindingKey], int]) -> None:
        """Post the Event this audit deserves. A violation waits `event_settle_seconds` first: a
        `kubectl apply` of a Deployment with its PodDisruptionBudget or HPA lands the workload a moment
        before its companions, and announcing (then retracting) that transient state is the event flood
        users of other tools complain about. Restorations are never delayed behind a pending violation."""
        ref = item.ref
        if ref in self.unsettled:
            self.unsettled[ref] = verdicts  # the pending announcement will judge the latest state
            return
        intent = output.event_intent(verdicts, *previous)
        settle = self.settings.event_settle_seconds
        if intent is not None and intent.reason == "ReadinessViolation" and settle > 0:
            self.unsettled[ref] = verdicts
            task = asyncio.get_running_loop().create_task(self._settle(item, settle))
            self.settle_tasks.add(task)
            task.add_done_callback(self.settle_tasks.discard)
            return
        self.state.reported[ref] = (output.finding_keys(verdicts), 0)
        if intent is not None and self.writer is not None:
            await self._post(item, intent)

    async def _settle(self, item: IndexedWorkload, delay: float) -> None:
        await asyncio.sleep(delay)
        ref = item.ref
        verdicts = self.unsettled.pop(ref, None)
        if verdicts is None or self.state.workload(ref) is None:
            return  # deleted meanwhile: nothing to announce
        previous = self.state.reported.get(ref, (frozenset(), 0))
        intent = output.event_intent(verdicts, *previous)
        self.state.reported[ref] = (output.finding_keys(verdicts), 0)
        if intent is not None and self.writer is not None:
            await self._post(item, intent)

    async def _write(self, item: IndexedWorkload, current: Outputs, desired: Outputs) -> None:
        patch = output.merge_patch(current, desired)
        if patch is None or self.writer is None:
            return
        ref = item.ref
        self.state.known[ref] = desired  # optimistic: a concurrent audit compares with what we write
        path = resource_path(item.workload.api_version, item.plural, ref.namespace or None, ref.name)
        try:
            await self.writer.patch_metadata(path, patch)
        except Exception:
            self.state.known.pop(ref, None)  # unknown now: the next event or audit re-derives it
            raise

    async def _post(self, item: IndexedWorkload, intent: output.EventIntent) -> None:
        assert self.writer is not None
        try:
            await self.writer.post_event(item.ref, item.workload.api_version, item.workload.uid, intent)
        except Exception as error:  # an Event is best-effort: never fail the audit for it
            log.info("event for %s not posted: %s", item.ref, error)

    async def audit_many(self, refs: Iterable[WorkloadRef]) -> None:
        pending = list(refs)
        for start in range(0, len(pending), BATCH):
            await asyncio.gather(*(self.audit(ref) for ref in pending[start:start + BATCH]))

    def forget(self, ref: WorkloadRef) -> None:
        """A workload is gone: drop its series and results (nothing to write on a deleted object)."""
        for name, results in self.state.results.items():
            if results.pop(ref, None) is not None:
                self.metrics.forget(name, ref)
                self._mark(name, ref.namespace)
        self.state.forget(ref)
        self.locks.pop(ref, None)
        self.unsettled.pop(ref, None)

    # -- policy-wide -----------------------------------------------------------------------------------

    def affected_by(self, name: str) -> set[WorkloadRef]:
        """Workloads a policy matches now or matched at its last audit (walks memory only)."""
        refs = self.state.matched_by(name)
        entry = self.state.policy(name)
        if entry is not None and entry.engine is not None:
            engine = entry.engine
            for item in self.state.all_workloads():
                if engine.matches(item.workload, self.state.namespace_labels(item.ref.namespace)):
                    refs.add(item.ref)
        return refs

    async def audit_policy(self, name: str) -> int:
        started = time.perf_counter()
        refs = self.affected_by(name)
        await self.audit_many(refs)
        self.dirty.add(name)
        self.metrics.observe_audit("policy", time.perf_counter() - started)
        return len(refs)

    def drop_policy(self, name: str) -> set[WorkloadRef]:
        """Forget a deleted policy's results and series; returns the workloads it had matched."""
        refs = set(self.state.results.pop(name, {}))
        self.metrics.forget_policy(name)
        self.dirty.discard(name)
        self.dirty_namespaces.pop(name, None)
        return refs

    def summary_inputs(self, name: str) -> dict[WorkloadRef, Evaluation]:
        return self.state.results.get(name, {})

    def stats(self) -> dict[str, Any]:
        return {"workloads": self.state.workload_count(), "policies": len(self.state.policies),
                "writes": self.writer.writes if self.writer else 0}


class AuditQueue:
    """Workload audits asked for by watch events, run by a fixed pool of tasks.

    Kopf's handler for a workload event only queues the audit, so Kopf's per-object worker (its task, its
    frames and the raw body) does not wait for our PATCH. At start-up every workload of the cluster gets
    an event at once: awaiting the write inside the handler kept all of them alive together, about 20 KB
    each. Here a waiting audit costs one entry in a set; the projection it reads is kept anyway.

    A workload queued twice is audited once, with its latest projection (the audit reads the state when
    it runs, not when it was queued). Policy-wide audits do not go through this queue.
    """

    def __init__(self, auditor: Auditor, workers: int) -> None:
        self.auditor = auditor
        self.workers = workers
        self.queue: asyncio.Queue[WorkloadRef] = asyncio.Queue()
        self.queued: set[WorkloadRef] = set()
        self.tasks: list[asyncio.Task[None]] = []

    def put(self, ref: WorkloadRef) -> None:
        if ref not in self.queued:
            self.queued.add(ref)
            self.queue.put_nowait(ref)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._work(), name=f"audit worker {index}")
                      for index in range(self.workers)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def join(self) -> None:
        """Wait until every queued audit has run (tests, benchmarks)."""
        await self.queue.join()

    async def _work(self) -> None:
        while True:
            ref = await self.queue.get()
            self.queued.discard(ref)  # from now on, a new event queues it again: it may see a newer state
            try:
                await self.auditor.audit(ref)  # never raises
            finally:
                self.queue.task_done()

