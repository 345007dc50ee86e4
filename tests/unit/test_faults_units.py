"""Issue 12, "Faults", in memory: the status merge patch (item 16), the rewrite backoff (item 15), the
announced digest and the Event queue (item 14). The cluster proof is tests/cluster/test_faults.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from readiness.checks import CATALOG
from readiness.controller import output
from readiness.controller import status as status_mod
from readiness.controller.auditor import Auditor, rewrite_delay
from readiness.controller.handlers import Runtime, index_policy, index_workload
from readiness.controller.output import EventIntent, PolicyVerdict
from readiness.controller.settings import OperatorSettings
from readiness.controller.writer import TokenBucket
from readiness.engine import Engine
from readiness.metrics import ReadinessMetrics
from readiness.workload import KindRegistry, WorkloadRef, project


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "generation": 1},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": {"containers": [{"name": "web", "image": "w:1"}]}}}}


POLICY = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
          "metadata": {"name": "probes", "uid": "uid-probes", "generation": 1},
          "spec": {"checks": {cid: {"enabled": cid == "readiness-probe-missing"} for cid in CATALOG}}}


class RecordingWriter:
    """What the Auditor calls on its Writer, recorded; `failures` calls of each kind fail first."""

    def __init__(self, failures: int = 0, error: Exception | None = None, rate: float = 1000.0,
                 burst: int = 1000) -> None:
        self.failures = failures
        self.error = error or ApiException(status=403, reason="Forbidden")
        self.patches: list[tuple[str, Mapping[str, Any]]] = []
        self.events: TokenBucket = TokenBucket(rate, burst)
        self.posted: list[tuple[WorkloadRef, EventIntent]] = []
        self.writes = 0

    async def patch_metadata(self, path: str, patch: Mapping[str, Any]) -> bool:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.patches.append((path, patch))
        return True

    async def post_event(self, ref: WorkloadRef, api_version: str, uid: str, intent: EventIntent) -> bool:
        self.posted.append((ref, intent))
        return True


def auditor_with(writer: RecordingWriter, names: list[str], **settings: Any) -> Auditor:
    runtime = Runtime(OperatorSettings(**{"event_settle_seconds": 0.0, **settings}), KindRegistry(), [])
    state = runtime.state
    for name in names:
        state.workloads.update(index_workload(runtime, deployment(name), "deployments"))
    state.policies = {"probes": [index_policy(POLICY)["probes"]]}
    state.namespaces = {"shop": [{}]}
    return Auditor(runtime.settings, state, ReadinessMetrics(), writer)  # type: ignore[arg-type]


# -- item 16 ---------------------------------------------------------------------------------------------

def test_status_patch_nulls_the_map_keys_that_disappeared() -> None:
    previous = {"summary": {"violating": 1, "byCheck": {"readiness-probe-missing": 1, "x": 2},
                            "bySeverity": {"error": 1}}, "topOffenders": [{"name": "a"}], "old": 1}
    desired = {"summary": {"violating": 0, "byCheck": {"x": 1}, "bySeverity": {}}, "topOffenders": []}
    assert status_mod.merge_patch(previous, desired) == {
        "summary": {"violating": 0, "byCheck": {"readiness-probe-missing": None, "x": 1},
                    "bySeverity": {"error": None}},
        "topOffenders": [], "old": None}
    assert status_mod.merge_patch(None, desired) == desired


# -- item 15 ---------------------------------------------------------------------------------------------

def test_rewrite_delay_doubles_from_one_second_to_a_minute_with_jitter() -> None:
    assert [rewrite_delay(n, 1.0, 60.0, rand=lambda: 1.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert rewrite_delay(0, 1.0, 60.0, rand=lambda: 0.0) == 0.5
    assert rewrite_delay(1000, 1.0, 60.0, rand=lambda: 0.0) == 30.0


def test_a_refused_write_is_retried_until_it_lands() -> None:
    writer = RecordingWriter(failures=3)
    auditor = auditor_with(writer, ["web"], rewrite_base_delay=0.01, rewrite_max_delay=0.02)
    ref = WorkloadRef("Deployment", "shop", "web")

    async def scenario() -> None:
        await auditor.audit(ref)
        assert ref not in auditor.state.audited  # not audited until written: the next event audits again
        for _ in range(100):
            if writer.patches:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert writer.patches and writer.patches[0][1]["metadata"]["annotations"][output.VERDICT] == "violating"
    assert auditor.state.audited[ref] and ref not in auditor.rewrites and not auditor.rewrite_tasks
    assert auditor.metrics.rewrites._value.get() == 3


# -- item 14 ---------------------------------------------------------------------------------------------

def verdict(*checks: str) -> list[PolicyVerdict]:
    evaluation = Engine.builtin().evaluate(project(deployment("web")))
    return [PolicyVerdict("probes", tuple(f for f in evaluation.findings if f.check in checks))]


def test_the_announced_digest_says_whether_a_restart_must_announce_again() -> None:
    current = output.finding_keys(verdict("readiness-probe-missing"))
    assert current
    announced = {output.ANNOUNCED: output.announced_digest(current)}
    assert output.announced_before(announced, current) == (current, 0)  # announced: nothing to post
    before = {output.ANNOUNCED: output.announced_digest(frozenset())}  # written, died before the Event
    previous = output.announced_before(before, current)
    intent = output.event_intent(verdict("readiness-probe-missing"), *previous)
    assert intent is not None and intent.reason == "ReadinessViolation"
    restored = output.event_intent(verdict(), *output.announced_before(announced, frozenset()))
    assert restored is not None and restored.reason == "ReadinessRestored"
    legacy = {output.VIOLATIONS: output.violations_json(verdict("readiness-probe-missing"), 10_000)}
    assert output.announced_before(legacy, current) == (current, 0)  # an older operator's annotation


def test_the_digest_is_written_with_the_verdict_and_after_the_event() -> None:
    writer = RecordingWriter()
    auditor = auditor_with(writer, ["web"])
    ref = WorkloadRef("Deployment", "shop", "web")

    async def scenario() -> None:
        await auditor.audit(ref)
        await auditor.close()

    asyncio.run(scenario())
    first, second = (patch["metadata"]["annotations"] for _path, patch in writer.patches)
    keys = auditor.state.reported[ref][0]
    assert first[output.ANNOUNCED] == output.announced_digest(frozenset())  # not announced yet
    assert [intent.reason for _ref, intent in writer.posted] == ["ReadinessViolation"]
    assert second == {output.ANNOUNCED: output.announced_digest(keys)}


def test_events_wait_for_the_rate_limit_and_a_sweep_beyond_the_queue_is_summarized() -> None:
    names = [f"w{i}" for i in range(12)]
    writer = RecordingWriter(rate=200.0, burst=1)
    auditor = auditor_with(writer, names, event_queue_max=3)

    async def scenario() -> None:
        await auditor.audit_many([WorkloadRef("Deployment", "shop", n) for n in names])
        for _ in range(300):
            if not (auditor.announcer.queue or auditor.announcer.overflow or auditor.announcer.delivering):
                break
            await asyncio.sleep(0.02)
        await auditor.close()

    asyncio.run(scenario())
    on_workloads = [ref for ref, _intent in writer.posted if ref.kind == "Deployment"]
    on_policy = [intent for ref, intent in writer.posted if ref.kind == "ReadinessPolicy"]
    summarized = auditor.metrics.events.labels("summarized")._value.get()
    assert len(on_policy) == 1 and f"{int(summarized)} workloads have new findings" in on_policy[0].message
    assert len(on_workloads) + summarized == len(names) and len(on_workloads) <= 5
    assert auditor.metrics.events.labels("dropped")._value.get() == 0
    digests = [p["metadata"]["annotations"].get(output.ANNOUNCED) for _path, p in writer.patches]
    assert digests.count(digests[-1]) == len(names)  # every workload recorded as announced


def test_the_rate_limit_waits_rather_than_drops() -> None:
    bucket = TokenBucket(rate=100.0, burst=1)

    async def take_three() -> None:
        for _ in range(3):
            await bucket.wait()

    asyncio.run(asyncio.wait_for(take_three(), 1.0))
