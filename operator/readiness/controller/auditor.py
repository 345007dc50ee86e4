"""Audits: evaluate in memory, then write only what changed (annotations, label, Events, status).

One workload's audit is synchronous up to its writes, and a per-workload lock orders concurrent audits
of the same workload (a watch event racing a policy change), so the last write always carries the
latest verdict.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from readiness.controller import output
from readiness.controller.announcer import Announcer
from readiness.controller.heap import HeapKeeper
from readiness.controller.output import Outputs, PolicyVerdict
from readiness.controller.settings import OperatorSettings
from readiness.controller.state import IndexedWorkload, PolicyEntry, State
from readiness.controller.writer import Writer, annotations_too_long, resource_path
from readiness.engine import Evaluation
from readiness.metrics import ReadinessMetrics
from readiness.workload import WorkloadRef

log = logging.getLogger(__name__)
BATCH = 500
"""Workloads audited concurrently by a policy change: bounds the tasks alive at once."""


def rewrite_delay(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """`base` doubled per failed try, capped, with equal jitter (half fixed, half random): never
    sooner than half the step, so a dead API server is not hammered, yet many workloads spread out."""
    step = min(cap, base * 2.0 ** min(attempt, 32))
    return step / 2 + rand() * step / 2


@dataclass(frozen=True, slots=True)
class Fitted:
    """A workload whose other annotations leave too little room for ours: what we wanted to write when
    its fingerprint was this, what fits, and what the truncation Event said."""

    fingerprint: str
    wanted: Outputs
    written: Outputs
    said: tuple[object, ...]


class Auditor:
    def __init__(self, settings: OperatorSettings, state: State, metrics: ReadinessMetrics,
                 writer: Writer | None = None, heap: HeapKeeper | None = None) -> None:
        self.settings = settings
        self.heap = heap
        self.state = state
        self.metrics = metrics
        self.writer = writer
        self.locks: dict[WorkloadRef, asyncio.Lock] = {}
        self.fitted: dict[WorkloadRef, Fitted] = {}
        """Workloads whose other annotations leave too little room for ours."""
        self.dirty: set[str] = set()
        """Policies whose status (and PolicyReports) may have changed since the last flush."""
        self.dirty_workloads: set[WorkloadRef] = set()
        """Workloads whose PolicyReport may have changed since the last flush."""
        self.announcer = Announcer(settings, state, metrics, writer, self._record_announced)
        self.rewrites: dict[WorkloadRef, int] = {}
        """Workloads whose last audit failed to write, with the number of failed tries."""
        self.rewrite_tasks: dict[WorkloadRef, asyncio.Task[None]] = {}

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
                    self._mark(name, ref)
                continue
            evaluation = entry.engine.evaluate(item.workload, context, now)
            evaluated += 1
            previous = results.get(ref)
            results[ref] = evaluation
            if previous is None or previous.findings != evaluation.findings:
                self.metrics.observe(name, ref, evaluation.findings)
            self._mark(name, ref)
            verdicts.append(self._verdict(entry, evaluation))
        self.metrics.evaluations.inc()
        self.metrics.observe_audit("workload", time.perf_counter() - started)
        return verdicts

    def _mark(self, policy: str, ref: WorkloadRef) -> None:
        self.dirty.add(policy)
        self.dirty_workloads.add(ref)

    # -- auditing --------------------------------------------------------------------------------------

    async def audit(self, ref: WorkloadRef) -> None:
        """Audit one workload from the index and write what changed. Never raises: one workload's
        failure must not stop the others (it is logged and counted)."""
        lock = self.locks.setdefault(ref, asyncio.Lock())
        async with lock:
            try:
                await self._audit_locked(ref)
            except Exception as error:
                self._rewrite_later(ref, error)
            else:
                self.rewrites.pop(ref, None)
        if self.heap is not None:
            self.heap.audited()

    def _rewrite_later(self, ref: WorkloadRef, error: Exception) -> None:
        """A failed audit (its write, in practice) is not an audit: forget that it ran, so the next watch
        event (the re-list after an API server restart) audits again, and try again with backoff until
        it lands. One pending try per workload; it audits the latest state, not the failed one."""
        self.state.audited.pop(ref, None)
        attempt = self.rewrites.get(ref, 0)
        self.rewrites[ref] = attempt + 1
        self.metrics.rewrites.inc()
        delay = rewrite_delay(attempt, self.settings.rewrite_base_delay, self.settings.rewrite_max_delay)
        level = logging.WARNING if attempt == 0 else logging.INFO
        log.log(level, "audit of %s failed (try %d), again in %.1fs: %s", ref, attempt + 1, delay, error)
        if ref in self.rewrite_tasks:
            return
        task = asyncio.get_running_loop().create_task(self._rewrite(ref, delay))
        self.rewrite_tasks[ref] = task
        task.add_done_callback(lambda done: self._drop_rewrite_task(ref, done))

    def _drop_rewrite_task(self, ref: WorkloadRef, task: asyncio.Task[None]) -> None:
        if self.rewrite_tasks.get(ref) is task:
            del self.rewrite_tasks[ref]

    async def _rewrite(self, ref: WorkloadRef, delay: float) -> None:
        await asyncio.sleep(delay)
        self.rewrite_tasks.pop(ref, None)  # a failure of this try schedules the next one
        if ref in self.rewrites and self.state.workload(ref) is not None:
            await self.audit(ref)

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
        previous = state.reported.get(ref)
        if previous is None:
            previous = output.announced_before(current.annotations, output.finding_keys(verdicts))
            state.reported[ref] = previous
        intent = self._intent(ref, verdicts, previous)
        # A sweep beyond the Event queue: the policy's summary Event announces it, so the digest of
        # what it announces goes with the verdict (one write, as for a workload without Events).
        summarized = intent is not None and self.announcer.full()
        keys = output.finding_keys(verdicts)
        announced = output.announced_digest(keys) if summarized else self._announced(ref, current)
        desired = output.desired_outputs(verdicts, self.settings.violations_max_bytes, announced)
        await self._write(item, current, desired)
        if intent is not None and summarized:
            state.reported[ref] = (keys, 0)
            self.announcer.summarize(ref, verdicts, intent)
            return
        self.announcer.submit(item, verdicts, intent)

    # -- events ----------------------------------------------------------------------------------------

    def _intent(self, ref: WorkloadRef, verdicts: list[PolicyVerdict],
                previous: tuple[frozenset[output.FindingKey], int]) -> output.EventIntent | None:
        """The Event this audit deserves, unless one is on its way already (it judges the latest
        verdicts). Nothing to announce: what was announced is current from now on."""
        if self.announcer.pending(ref):
            return None
        intent = output.event_intent(verdicts, *previous)
        if intent is None:
            self.state.reported[ref] = (output.finding_keys(verdicts), 0)
        return intent

    def _announced(self, ref: WorkloadRef, current: Outputs) -> str | None:
        """The announced digest to keep on the workload: of what was last announced."""
        keys, _omitted = self.state.reported.get(ref, (frozenset(), 0))
        if output.UNKNOWN in keys:
            return current.annotations.get(output.ANNOUNCED)
        return output.announced_digest(keys)

    async def _record_announced(self, ref: WorkloadRef, verdicts: Sequence[PolicyVerdict]) -> None:
        """After an Event (or a summary) announced `verdicts`: remember it, and write its digest, so a
        restart does not announce it again. A failed write is retried like any other."""
        lock = self.locks.setdefault(ref, asyncio.Lock())
        async with lock:
            item = self.state.workload(ref)
            if item is None:
                return
            keys = output.finding_keys(verdicts)
            self.state.reported[ref] = (keys, 0)
            current = self.state.known.get(ref, item.outputs)
            if output.VERDICT not in current.annotations:
                return  # no annotations of ours on it (off, or not written yet: the audit writes it)
            desired = Outputs({**current.annotations, output.ANNOUNCED: output.announced_digest(keys)},
                              current.label)
            try:
                await self._write(item, current, desired)
            except Exception as error:
                self._rewrite_later(ref, error)

    async def _write(self, item: IndexedWorkload, current: Outputs, desired: Outputs) -> None:
        patch = output.merge_patch(current, desired)
        if patch is None or self.writer is None:
            return
        ref, wanted = item.ref, desired
        fitted = self.fitted.get(ref)
        if fitted is not None and (fitted.fingerprint, fitted.wanted) == (item.fingerprint, desired):
            desired = fitted.written  # known not to fit as it is: no 422 per periodic audit
            patch = output.merge_patch(current, desired)
            if patch is None:
                return
        self.state.known[ref] = desired  # optimistic: a concurrent audit compares with what we write
        path = resource_path(item.workload.api_version, item.plural, ref.namespace or None, ref.name)
        try:
            await self.writer.patch_metadata(path, patch)
        except Exception as error:
            self.state.known.pop(ref, None)  # unknown now: the next event or audit re-derives it
            if not annotations_too_long(error):
                raise
            await self._write_what_fits(item, wanted, path)
            return
        if fitted is None or desired is not fitted.written:
            self.fitted.pop(ref, None)

    async def _write_what_fits(self, item: IndexedWorkload, desired: Outputs, path: str) -> None:
        """The workload's other annotations leave too little room for ours (422): write the label, then
        what fits (output.fit_order()), and say so once per state, in an Event and a metric. The room is
        measured on the object itself: the projection leaves out its bulkiest annotations."""
        assert self.writer is not None
        ref = item.ref
        meta = await self.writer.read_metadata(path)
        if meta is None:
            return  # deleted meanwhile
        annotations = meta.get("annotations") or {}
        observed = Outputs.observed(annotations, meta.get("labels") or {})
        room = output.ANNOTATIONS_LIMIT_BYTES - output.annotation_bytes(annotations, output.OUR_ANNOTATIONS)
        fitted = output.fit_outputs(desired, room)
        said = output.truncation_state(desired)
        before = self.fitted.get(ref)
        self.fitted[ref] = Fitted(item.fingerprint, desired, fitted, said)
        patch = output.merge_patch(observed, fitted)
        self.state.known[ref] = fitted
        if patch is None:
            return  # already written so (before a restart): already said so
        try:
            await self.writer.patch_metadata(path, patch)
        except Exception:
            self.state.known.pop(ref, None)
            raise
        self.metrics.writes_truncated.inc()
        log.info("annotations of %s are near the %d-byte limit: wrote what fits", ref,
                 output.ANNOTATIONS_LIMIT_BYTES)
        if before is not None and before.said == said:
            return  # the same verdict cut a little differently (other annotations changed): said already
        intent = output.truncation_intent(desired, fitted)
        if intent is not None and self.settings.events:
            await self._post(item, intent)

    async def _post(self, item: IndexedWorkload, intent: output.EventIntent) -> None:
        assert self.writer is not None
        if not self.writer.events.take():  # the rate limit: this one is dropped, counted
            self.metrics.events.labels("dropped").inc()
            return
        try:
            await self.writer.post_event(item.ref, item.workload.api_version, item.workload.uid, intent)
        except Exception as error:  # an Event is best-effort: never fail the audit for it
            log.info("event for %s not posted: %s", item.ref, error)

    async def close(self) -> None:
        """At shutdown, before the client closes: pending writes are the next start's, pending Events
        are posted while the shutdown allows (Announcer.close)."""
        for task in list(self.rewrite_tasks.values()):
            task.cancel()
        self.rewrite_tasks.clear()
        await self.announcer.close()

    async def audit_many(self, refs: Iterable[WorkloadRef]) -> None:
        pending = list(refs)
        for start in range(0, len(pending), BATCH):
            await asyncio.gather(*(self.audit(ref) for ref in pending[start:start + BATCH]))

    def forget(self, ref: WorkloadRef) -> None:
        """A workload is gone: drop its series and results (nothing to write on a deleted object)."""
        for name, results in self.state.results.items():
            if results.pop(ref, None) is not None:
                self.metrics.forget(name, ref)
                self._mark(name, ref)
        self.state.forget(ref)
        self.locks.pop(ref, None)
        self.fitted.pop(ref, None)
        self.announcer.forget(ref)
        self.rewrites.pop(ref, None)
        task = self.rewrite_tasks.pop(ref, None)
        if task is not None:
            task.cancel()

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
        self.dirty_workloads.update(refs)  # their reports lose this policy's results
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

