"""Issue 12, "Faults", on the real control plane: no Event lost to a restart and no flood from a sweep
(item 14), failed writes retried until they land (item 15), no stale keys in the policy status (item 16).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
import yaml

from readiness.controller import output
from readiness.envtest import ControlPlane, Kubectl
from readiness.workload import WorkloadRef
from support.cluster import get_json, wait_until

from .conftest import OperatorHandle, annotations_of, deployment_yaml, policy_yaml

pytestmark = pytest.mark.cluster
Start = Callable[..., AbstractContextManager[OperatorHandle]]


def apply_all(kubectl: Kubectl, names: list[str], namespace: str, probe: bool) -> None:
    """Every Deployment in one `kubectl apply`: the changes arrive together, as in a rollout of many."""
    kubectl("apply", "-f", "-", input="\n---\n".join(deployment_yaml(n, namespace, probe=probe)
                                                     for n in names))


def verdicts(kubectl: Kubectl, namespace: str) -> dict[str, str | None]:
    items = get_json(kubectl, "deployments", "-n", namespace)["items"]
    return {i["metadata"]["name"]: (i["metadata"].get("annotations") or {}).get(output.VERDICT)
            for i in items}


def all_are(kubectl: Kubectl, namespace: str, names: list[str], verdict: str) -> bool:
    seen = verdicts(kubectl, namespace)
    return all(seen.get(name) == verdict for name in names)


def violation_events(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    items = get_json(kubectl, "events", "-n", namespace, "--field-selector",
                     "reason=ReadinessViolation")["items"]
    return list(items)


# -- item 15: failed writes are retried until they land ---------------------------------------------------

def test_writes_lost_to_an_apiserver_outage_land_once_it_is_back(
        control_plane: ControlPlane, kubectl: Kubectl, namespace: str, start_operator: Start,
        unique: str) -> None:
    """A change that flips 40 verdicts at once (the namespace starts to match the policy), then
    kube-apiserver killed at once and restarted 10 s later, longer than the writer's own retries: every
    verdict is written soon after, not at the next periodic audit (10 minutes by default)."""
    names = [f"w{i}" for i in range(40)]
    match = {"namespaces": [namespace], "namespaceSelector": {"matchLabels": {"fault": unique}}}
    kubectl("apply", "-f", "-", input=policy_yaml(f"outage-{unique}", [namespace], match=match))
    apply_all(kubectl, names, namespace, probe=False)
    # One write at a time: the outage catches most of the 40 writes in flight or waiting.
    with start_operator(write_concurrency=1, retry_attempts=2) as op:
        wait_until(lambda: op.evaluations >= len(names), 30, "the first audits")
        time.sleep(1)
        assert not any(verdicts(kubectl, namespace).values())  # not matched yet
        kubectl("label", "namespace", namespace, f"fault={unique}")
        control_plane.kill_apiserver()
        try:
            time.sleep(10)
        finally:
            control_plane.start_apiserver()
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 40,
                   "every verdict written after the outage")
        assert op.metric("readiness_write_retries_total") > 0, "the outage caught no write"


@pytest.fixture
def admin_binding(kubectl: Kubectl, unique: str) -> Iterator[tuple[str, str]]:
    """A user bound to cluster-admin by a ClusterRoleBinding the test may delete: (user, binding)."""
    user, binding = f"fault-operator-{unique}", f"fault-operator-{unique}"
    kubectl("create", "clusterrolebinding", binding, "--clusterrole=cluster-admin", f"--user={user}")
    yield user, binding
    kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


def test_writes_refused_while_rbac_is_missing_land_once_it_is_back(
        control_plane: ControlPlane, kubectl: Kubectl, namespace: str, start_operator: Start,
        unique: str, admin_binding: tuple[str, str]) -> None:
    """A 403 (the ClusterRoleBinding removed for 5 s, as a botched RBAC upgrade does) is retried too."""
    user, binding = admin_binding
    names = [f"w{i}" for i in range(10)]
    kubectl("apply", "-f", "-", input=policy_yaml(f"rbac-{unique}", [namespace]))
    apply_all(kubectl, names, namespace, probe=False)
    with start_operator(kubeconfig=str(control_plane.kubeconfig_for_user(user))) as op:
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 30, "the first verdicts")
        kubectl("delete", "clusterrolebinding", binding)
        apply_all(kubectl, names, namespace, probe=True)
        wait_until(lambda: op.metric("readiness_api_errors_total", operation="patch_workload", code="403"),
                   20, "the refused writes")
        time.sleep(5)
        kubectl("create", "clusterrolebinding", binding, "--clusterrole=cluster-admin", f"--user={user}")
        wait_until(lambda: all_are(kubectl, namespace, names, "compliant"), 30,
                   "every verdict written once RBAC is back")


# -- item 14: no Event lost to a restart, no flood from a sweep --------------------------------------------

@pytest.fixture
def lasting_policy(kubectl: Kubectl, namespace: str, unique: str) -> Iterator[str]:
    """A policy that outlives the operators of a test (the fixture's operator deletes its test-labelled
    policies before it stops, which would retract the findings being announced)."""
    name = f"lasting-{unique}"
    body = yaml.safe_load(policy_yaml(name, [namespace]))
    del body["metadata"]["labels"]
    kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    yield name
    kubectl("delete", "readinesspolicy", name, "--ignore-not-found", "--wait=false")
    kubectl("patch", "readinesspolicy", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
            check=False)


def test_a_graceful_stop_inside_the_settle_window_still_posts_the_events(
        kubectl: Kubectl, namespace: str, start_operator: Start, lasting_policy: str) -> None:
    """SIGTERM (a rolling upgrade) while violations wait out `event_settle_seconds`: they are posted
    before the client closes, not lost with it."""
    names = [f"w{i}" for i in range(5)]
    with start_operator(event_settle_seconds=30.0):
        apply_all(kubectl, names, namespace, probe=False)
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 30, "the verdicts")
    involved = {e["involvedObject"]["name"] for e in violation_events(kubectl, namespace)}
    assert involved == set(names)
    for name in names:  # announced: the next operator will not announce them again
        assert output.ANNOUNCED in annotations_of(kubectl, namespace, name)


def test_events_an_operator_died_before_posting_are_posted_by_the_next_one(
        kubectl: Kubectl, namespace: str, start_operator: Start, lasting_policy: str) -> None:
    """A SIGKILL inside the settle window (the announcement never runs) leaves the verdict written but
    the announced digest as it was: the restarted operator announces the findings, once."""
    names = [f"w{i}" for i in range(5)]
    with start_operator(event_settle_seconds=30.0) as op:
        apply_all(kubectl, names, namespace, probe=False)
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 30, "the verdicts")
        auditor = op.runtime.auditor
        assert auditor is not None

        async def killed(budget: float = 0.0) -> None:  # dies here: nothing pending is posted
            for task in auditor.announcer.settle_tasks.values():
                task.cancel()

        auditor.announcer.close = killed  # type: ignore[method-assign]
    assert violation_events(kubectl, namespace) == []
    with start_operator(event_settle_seconds=1.0):
        wait_until(lambda: len(violation_events(kubectl, namespace)) == len(names), 30,
                   "the restarted operator's Events")
        time.sleep(3)
        assert len(violation_events(kubectl, namespace)) == len(names), "announced twice"
    with start_operator(event_settle_seconds=1.0) as third:
        wait_until(lambda: third.evaluations >= len(names), 30, "the third operator's audits")
        time.sleep(3)
        assert len(violation_events(kubectl, namespace)) == len(names), "announced again after a restart"


def test_two_replicas_judging_the_same_change_announce_it_once(
        kubectl: Kubectl, namespace: str, start_operator: Start, lasting_policy: str) -> None:
    """A rolling upgrade whose new replica takes over while the old one still waits out the settle window:
    both judge the same violations; the one posting second finds the first one's digest and records it
    instead of repeating the Event."""
    names = [f"w{i}" for i in range(4)]
    with start_operator(event_settle_seconds=10.0) as old:
        apply_all(kubectl, names, namespace, probe=False)
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 30, "the verdicts")
        with start_operator(event_settle_seconds=10.0) as new:
            wait_until(lambda: new.evaluations >= len(names), 30, "the new replica's audits")
            assert violation_events(kubectl, namespace) == [], "the old replica posted before the overlap"
            assert old.runtime.auditor is not None and new.runtime.auditor is not None
            wait_until(lambda: not new.runtime.auditor.announcer.pending(  # type: ignore[union-attr]
                WorkloadRef("Deployment", namespace, names[-1])), 40, "the new replica's settle window")
            time.sleep(1)
    per_workload = Counter(e["involvedObject"]["name"] for e in violation_events(kubectl, namespace))
    assert per_workload == dict.fromkeys(names, 1), per_workload


def test_a_stopping_replica_does_not_repeat_what_its_successor_announced(
        kubectl: Kubectl, namespace: str, start_operator: Start, lasting_policy: str) -> None:
    """The old replica's shutdown flush (SIGTERM) after the new one announced the same findings: it reads
    the digest from the object (a replica paused by peering has a stale view) and posts nothing."""
    names = [f"w{i}" for i in range(4)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(start_operator(event_settle_seconds=60.0))  # pending until it stops
        apply_all(kubectl, names, namespace, probe=False)
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 30, "the verdicts")
        with start_operator(event_settle_seconds=1.0):
            wait_until(lambda: len(violation_events(kubectl, namespace)) == len(names), 30,
                       "the new replica's Events")
            wait_until(lambda: all(output.ANNOUNCED in annotations_of(kubectl, namespace, n)
                                   and annotations_of(kubectl, namespace, n)[output.ANNOUNCED]
                                   != output.announced_digest([]) for n in names), 30, "its digests")
            stack.close()  # the old replica stops first, with its announcements pending
    per_workload = Counter(e["involvedObject"]["name"] for e in violation_events(kubectl, namespace))
    assert per_workload == dict.fromkeys(names, 1), per_workload


def test_a_sweep_queues_what_the_rate_allows_and_summarizes_the_rest_on_the_policy(
        kubectl: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    """A new policy over 30 violating workloads with room for 5 announcements in the queue: a few
    per-workload Events, then one summary Event on the policy for the rest. None is dropped: every
    workload is announced one way or the other."""
    names = [f"w{i}" for i in range(30)]
    policy = f"sweep-{unique}"
    apply_all(kubectl, names, namespace, probe=False)
    with start_operator(event_rate=2.0, event_burst=1, event_queue_max=5) as op:
        kubectl("apply", "-f", "-", input=policy_yaml(policy, [namespace]))
        wait_until(lambda: all_are(kubectl, namespace, names, "violating"), 30, "the verdicts")
        summary = wait_until(lambda: [e for e in get_json(kubectl, "events", "-n", "default")["items"]
                                      if e["involvedObject"].get("name") == policy], 30, "the summary Event")
        assert len(summary) == 1 and summary[0]["reason"] == "ReadinessViolation", summary
        summarized = wait_until(lambda: op.metric("readiness_events_total", outcome="summarized"), 10,
                                "the summarized count")
        assert f"{int(summarized)} workloads have new findings" in summary[0]["message"]
        wait_until(lambda: all(output.ANNOUNCED in annotations_of(kubectl, namespace, n) for n in names), 30,
                   "every workload recorded as announced")
        posted = len(violation_events(kubectl, namespace))
        assert posted + summarized == len(names) and posted <= 8, (posted, summarized)
        assert op.metric("readiness_events_total", outcome="dropped") == 0


# -- item 16: the status drops keys of checks that no longer fail ------------------------------------------

def test_status_maps_lose_the_keys_of_checks_that_no_longer_fail(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    name = f"stale-{unique}"
    kubectl("apply", "-f", "-", input=policy_yaml(name, [namespace]))
    kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace))

    def summary() -> dict[str, Any]:
        status = get_json(kubectl, "readinesspolicy", name).get("status", {})
        found: dict[str, Any] = status.get("summary", {})
        return found

    wait_until(lambda: [c["check"] for c in summary().get("checks", [])] == ["readiness-probe-missing"], 20,
               "the first summary")
    kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace, probe=True))
    wait_until(lambda: summary().get("violating") == 0, 20, "the fixed summary")
    time.sleep(1)  # one more flush interval
    final = summary()
    assert final["checks"] == [] and final["bySeverity"] == {"error": 0, "warning": 0, "info": 0}, \
        json.dumps(final)
