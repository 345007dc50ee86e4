"""Events: what an audit announces, delivered at most at the rate limit, queued rather than dropped.

The contract (docs/operator.md, "Events"): every change of a workload's findings that lasts
`event_settle_seconds` is announced at least once, across restarts and rolling upgrades. Its
`readiness.dev/announced` annotation (a digest of the announced findings) is written only after the Event
was posted, so an operator that stops before posting (SIGKILL, or more pending than the shutdown allows)
leaves the old digest, and the next one announces again. Before posting, the digest on the workload is
compared with what would be announced: during a rolling upgrade two replicas may judge the same change
(the new one takes over while the old one still has it pending), and the one that posts second finds the
first one's digest and records it instead of repeating the Event.

A sweep that would queue more than `event_queue_max` announcements (a new policy over thousands of
workloads) is not a flood: the rest are counted into one summary Event on the policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from readiness.controller import output
from readiness.controller.output import EventIntent, PolicyVerdict
from readiness.controller.settings import OperatorSettings
from readiness.controller.state import IndexedWorkload, State
from readiness.controller.writer import Writer, resource_path
from readiness.metrics import ReadinessMetrics
from readiness.policy import API_GROUP, API_VERSION, KIND
from readiness.workload import WorkloadRef

log = logging.getLogger(__name__)
SHUTDOWN_SECONDS = 5.0
"""How long a stopping operator keeps posting what is pending (Kubernetes grants 30 s by default)."""
SUMMARY_GATHER_SECONDS = 1.0
"""A summary waits until no announcement overflowed for this long, so that one sweep gets one Event."""
RETRY_SECONDS = (1.0, 60.0)
"""Backoff bounds of an Event whose POST failed (the API server is down): it stays queued."""

Record = Callable[[WorkloadRef, Sequence[PolicyVerdict]], Awaitable[None]]
"""Writes the announced digest of these verdicts on the workload (the Auditor's, under its lock)."""


class Announcer:
    def __init__(self, settings: OperatorSettings, state: State, metrics: ReadinessMetrics,
                 writer: Writer | None, record: Record) -> None:
        self.settings = settings
        self.state = state
        self.metrics = metrics
        self.writer = writer
        self.record = record
        self.unsettled: dict[WorkloadRef, Sequence[PolicyVerdict]] = {}
        """Latest verdicts of workloads whose violation waits for `event_settle_seconds`."""
        self.settle_tasks: dict[WorkloadRef, asyncio.Task[None]] = {}
        self.queue: dict[WorkloadRef, Sequence[PolicyVerdict]] = {}
        """Settled announcements in arrival order (dicts keep it), latest verdicts per workload."""
        self.overflow: dict[WorkloadRef, Sequence[PolicyVerdict]] = {}
        """Announcements the queue had no room for, to be summarized (their digest not written yet)."""
        self.summarized: dict[WorkloadRef, tuple[EventIntent, Sequence[PolicyVerdict]]] = {}
        """Announcements of a sweep, recorded with the verdict already, to be counted in the summary."""
        self.overflowed_at = 0.0
        self.delivering: WorkloadRef | None = None
        self.failures = 0
        self.poster: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self.closing = False
        """Set by close(): the projection may be stale then (a replica paused by peering stops watching),
        so the digest is read from the object before each post."""

    def pending(self, ref: WorkloadRef) -> bool:
        """Whether an announcement of this workload is on its way (it will judge the latest verdicts)."""
        return (ref in self.unsettled or ref in self.queue or ref in self.overflow
                or ref == self.delivering)

    def full(self) -> bool:
        """Whether a new announcement would find no room: the audit then leaves it to the summary."""
        return len(self.queue) + len(self.unsettled) >= self.settings.event_queue_max

    def summarize(self, ref: WorkloadRef, verdicts: Sequence[PolicyVerdict], intent: EventIntent) -> None:
        """Count this announcement in the policy's summary Event. The caller wrote the digest of
        `verdicts` with the verdict: one write per workload in a sweep, as without Events."""
        self.summarized[ref] = (intent, verdicts)
        self.overflowed_at = time.monotonic()
        self._start()

    def submit(self, item: IndexedWorkload, verdicts: Sequence[PolicyVerdict],
               intent: EventIntent | None) -> None:
        """An audit's verdicts. A violation waits `event_settle_seconds` first: `kubectl apply` of a
        Deployment with its PodDisruptionBudget or HPA lands the workload a moment before its companions,
        and announcing (then retracting) that transient state is the flood users of other tools complain
        about. Restorations are never delayed behind a pending violation."""
        ref = item.ref
        if ref in self.unsettled:
            self.unsettled[ref] = verdicts  # the pending announcement will judge the latest state
            return
        if self.pending(ref):
            self._enqueue(ref, verdicts)
            return
        if intent is None:
            return
        settle = self.settings.event_settle_seconds
        if intent.reason == "ReadinessViolation" and settle > 0:
            self.unsettled[ref] = verdicts
            self.settle_tasks[ref] = asyncio.get_running_loop().create_task(self._settle(ref, settle))
            return
        self._enqueue(ref, verdicts)

    async def _settle(self, ref: WorkloadRef, delay: float) -> None:
        await asyncio.sleep(delay)
        self.settle_tasks.pop(ref, None)
        verdicts = self.unsettled.pop(ref, None)
        if verdicts is not None and self.state.workload(ref) is not None:
            self._enqueue(ref, verdicts)

    def _enqueue(self, ref: WorkloadRef, verdicts: Sequence[PolicyVerdict]) -> None:
        if ref in self.queue or len(self.queue) < self.settings.event_queue_max:
            self.queue[ref] = verdicts
        else:
            self.overflow[ref] = verdicts
            self.overflowed_at = time.monotonic()
        self._start()

    def _start(self) -> None:
        self.wake.set()
        if self.poster is None or self.poster.done():
            self.poster = asyncio.get_running_loop().create_task(self._deliver(), name="event poster")

    def forget(self, ref: WorkloadRef) -> None:
        self.unsettled.pop(ref, None)
        self.queue.pop(ref, None)
        self.overflow.pop(ref, None)
        self.summarized.pop(ref, None)
        task = self.settle_tasks.pop(ref, None)
        if task is not None:
            task.cancel()

    # -- delivery --------------------------------------------------------------------------------------

    async def _deliver(self) -> None:
        """One poster for every Event: the rate limit is waited for, never a reason to drop."""
        while self.queue or self.overflow or self.summarized:
            if (self.overflow or self.summarized) and (not self.queue or self._gathered()):
                if not self._gathered():
                    await self._wait(SUMMARY_GATHER_SECONDS)
                    continue
                await self._summarize()
                continue
            if self.writer is not None:
                await self.writer.events.wait()
            ref = next(iter(self.queue), None)
            if ref is None:
                continue
            verdicts = self.queue.pop(ref)
            self.delivering = ref
            try:
                posted = await self._post_one(ref, verdicts)
            finally:
                self.delivering = None
            if not posted:
                self.queue.setdefault(ref, verdicts)  # not lost: at the back of the queue, tried again
                self.failures += 1
                low, high = RETRY_SECONDS
                await asyncio.sleep(min(high, low * 2.0 ** min(self.failures, 16)))
            else:
                self.failures = 0

    def _gathered(self) -> bool:
        return time.monotonic() - self.overflowed_at >= SUMMARY_GATHER_SECONDS

    async def _wait(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)

    async def _post_one(self, ref: WorkloadRef, verdicts: Sequence[PolicyVerdict]) -> bool:
        """Post what these verdicts deserve against what was last announced, then record it. False when
        the POST failed (it is then tried again)."""
        item = self.state.workload(ref)
        if item is None:
            return True  # deleted meanwhile: nothing to announce
        if await self._announced_elsewhere(item, verdicts):
            await self.record(ref, verdicts)
            return True
        previous = self.state.reported.get(ref, (frozenset(), 0))
        intent = output.event_intent(verdicts, *previous)
        if intent is not None and self.writer is not None:
            try:
                await self.writer.post_event(ref, item.workload.api_version, item.workload.uid, intent)
            except Exception as error:
                log.info("event for %s not posted (queued again): %s", ref, error)
                return False
            self.metrics.events.labels("posted").inc()
        await self.record(ref, verdicts)
        return True

    async def _announced_elsewhere(self, item: IndexedWorkload, verdicts: Sequence[PolicyVerdict]) -> bool:
        """Whether the workload's announced digest is already that of these findings. Only an announcement
        writes a digest other than that of what we last announced, so a match means another replica (the
        one before a rolling upgrade) posted this Event while ours waited out the settle window."""
        annotations: Mapping[str, Any] = item.outputs.annotations
        if self.closing and self.writer is not None:
            path = resource_path(item.workload.api_version, item.plural, item.ref.namespace or None,
                                 item.ref.name)
            try:
                meta = await self.writer.read_metadata(path)
            except Exception as error:  # unknown: post (at least once)
                log.info("announced digest of %s not read: %s", item.ref, error)
                return False
            if meta is None:
                return True  # deleted meanwhile
            found = meta.get("annotations")
            annotations = found if isinstance(found, Mapping) else {}
        digest = annotations.get(output.ANNOUNCED)
        return digest is not None and digest == output.announced_digest(output.finding_keys(verdicts))

    async def _summarize(self) -> None:
        """One Event per policy for a sweep's overflow: counts, not names (the status lists the worst)."""
        overflow, self.overflow = self.overflow, {}
        summarized, self.summarized = self.summarized, {}
        violations: Counter[str] = Counter()
        restorations: Counter[str] = Counter()
        to_record: list[tuple[WorkloadRef, Sequence[PolicyVerdict]]] = []
        intents: dict[WorkloadRef, EventIntent | None] = {
            ref: intent for ref, (intent, _verdicts) in summarized.items()}
        for ref, verdicts in overflow.items():
            if self.state.workload(ref) is not None:
                to_record.append((ref, verdicts))
                intents[ref] = output.event_intent(verdicts, *self.state.reported.get(ref, (frozenset(), 0)))
        verdicts_of = {**{ref: v for ref, (_i, v) in summarized.items()}, **dict(to_record)}
        for ref, intent in intents.items():
            if intent is None:
                continue
            tally = violations if intent.reason == "ReadinessViolation" else restorations
            restored = tally is restorations
            tally.update(v.policy for v in verdicts_of[ref] if v.events and (v.findings or restored))
        for name in sorted(set(violations) | set(restorations)):
            if not await self._post_summary(name, violations[name], restorations[name]):
                self.overflow.update(dict(to_record))  # not announced after all: tried again
                self.summarized.update(summarized)
                self.overflowed_at = time.monotonic()
                await asyncio.sleep(RETRY_SECONDS[0])
                return
        self.metrics.events.labels("summarized").inc(sum(1 for i in intents.values() if i is not None))
        for ref, verdicts in to_record:
            await self.record(ref, verdicts)

    async def _post_summary(self, policy: str, violating: int, restored: int) -> bool:
        entry = self.state.policy(policy)
        if entry is None or self.writer is None:
            return True
        await self.writer.events.wait()
        parts = []
        if violating:
            parts.append(f"{violating} workloads have new findings")
        if restored:
            parts.append(f"{restored} workloads are compliant again")
        message = (f"{' and '.join(parts)} (too many at once for one Event each): list them with "
                   f"kubectl get <kind> -A -l {output.COMPLIANT_LABEL}=false")
        intent = EventIntent("Warning" if violating else "Normal",
                             "ReadinessViolation" if violating else "ReadinessRestored", message)
        ref = WorkloadRef(KIND, "", policy)
        try:
            await self.writer.post_event(ref, f"{API_GROUP}/{API_VERSION}", entry.uid, intent)
        except Exception as error:
            log.info("summary event for policy %s not posted: %s", policy, error)
            return False
        self.metrics.events.labels("posted").inc()
        return True

    # -- shutdown --------------------------------------------------------------------------------------

    async def close(self, budget: float = SHUTDOWN_SECONDS) -> None:
        """Before the client closes: settle now, post what the rate limit lets through within `budget`.
        What is left is counted as dropped; its announced digest was never written, so the next operator
        announces it."""
        self.closing = True
        for task in self.settle_tasks.values():
            task.cancel()
        self.settle_tasks.clear()
        unsettled, self.unsettled = self.unsettled, {}
        for ref, verdicts in unsettled.items():
            self._enqueue(ref, verdicts)
        log.info("posting %d pending announcements before shutdown",
                 len(self.queue) + len(self.overflow) + len(self.summarized))
        if self.poster is not None and not self.poster.done():
            self.overflowed_at = 0.0  # no more gathering: summarize now
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self.poster), budget)
            self.poster.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.poster
        left = len(self.queue) + len(self.overflow) + len(self.unsettled) + len(self.summarized)
        if left:
            self.metrics.events.labels("dropped").inc(left)
            log.info("%d announcements not posted before shutdown: the next start posts them", left)
