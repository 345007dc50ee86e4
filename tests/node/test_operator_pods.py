"""The operator as users run it: pods from its own image and chart on a real node.

Every test here would have caught the crash loop of the first in-cluster run (`getpass.getuser()` under
uid 65532): the release fixture waits for both replicas to become Ready through their own probes.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any

import pytest
import yaml

from readiness.envtest import Kubectl, binaries
from readiness.envtest.node import NodeCluster
from readiness.envtest.release import Release, is_ready
from support.cluster import get_json, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.node]

VERDICT = "readiness.dev/verdict"
LABEL = "readiness.dev/e2e"


def policy(name: str, namespaces: list[str], mode: str = "warn", checks: dict[str, Any] | None = None,
           **spec: Any) -> str:
    body = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": name, "labels": {LABEL: "true"}},
            "spec": {"enforcement": mode, "match": {"namespaces": namespaces},
                     "unlistedChecks": "off",
                     "checks": checks or {"readiness-probe-missing": {"severity": "error"}}, **spec}}
    return yaml.safe_dump(body)


def deployment(name: str, namespace: str, image: str, *, probe: bool = True, replicas: int = 1,
               grace: int = 30, pre_stop: int | None = None, labels: dict[str, str] | None = None) -> str:
    container: dict[str, Any] = {
        "name": "app", "image": image, "imagePullPolicy": "IfNotPresent",  # loaded on the node, never pulled
        # Any busybox image: the page is written to an emptyDir. sh as PID 1 passes SIGTERM on (a bare
        # httpd as PID 1 would ignore it until SIGKILL).
        "command": ["/bin/sh", "-c", "echo ok > /srv/healthz; trap 'kill $p; exit 0' TERM; "
                    "httpd -f -p 8080 -h /srv & p=$!; wait"],
        "volumeMounts": [{"name": "srv", "mountPath": "/srv"}],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
    }
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    if pre_stop is not None:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    pod_labels = {"app": name, **(labels or {})}
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"terminationGracePeriodSeconds": grace,
                                           "volumes": [{"name": "srv", "emptyDir": {}}],
                                           "containers": [container]}}}}
    return yaml.safe_dump(body)


@pytest.fixture
def cleanup_policies(node_kubectl: Kubectl) -> Any:
    yield
    node_kubectl("delete", "readinesspolicies", "-l", f"{LABEL}=true", "--ignore-not-found",
                 "--timeout=60s", check=False)


def verdict(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    meta = get_json(kubectl, "deployment", name, "-n", namespace)["metadata"]
    value: str | None = (meta.get("annotations") or {}).get(VERDICT)
    return value


def ready_replicas(kubectl: Kubectl, namespace: str, name: str) -> int:
    status = get_json(kubectl, "deployment", name, "-n", namespace).get("status") or {}
    return int(status.get("readyReplicas") or 0)


def test_operator_pods_ready_through_their_own_probes(release: Release, node_kubectl: Kubectl) -> None:
    pods = release.pods()
    assert len(pods) == 2 and all(is_ready(pod) for pod in pods)
    for pod in pods:
        statuses = pod["status"]["containerStatuses"]
        assert [s["restartCount"] for s in statuses] == [0], statuses
        assert pod["spec"]["securityContext"]["runAsUser"] == 65532
        log = node_kubectl("logs", "-n", release.namespace, pod["metadata"]["name"]).stdout
        assert "Traceback" not in log and "getpwuid" not in log, log[-2000:]
    peering = get_json(node_kubectl, "clusterkopfpeering", release.name)
    assert {pod["metadata"]["name"] for pod in pods} <= set(peering.get("status") or {})


def test_own_deployment_is_compliant_under_the_strict_policy(
    release: Release, node_kubectl: Kubectl, cleanup_policies: None,
) -> None:
    from readiness.envtest.release import REPO_ROOT
    strict = yaml.safe_load((REPO_ROOT / "examples" / "policies" / "strict.yaml").read_text())
    strict["metadata"] = {"name": "e2e-strict-self", "labels": {LABEL: "true"}}
    strict["spec"]["match"] = {"namespaces": [release.namespace], "kinds": ["Deployment"]}
    node_kubectl("apply", "-f", "-", input=yaml.safe_dump(strict))
    found = wait_until(lambda: verdict(node_kubectl, release.namespace, release.deployment), 90,
                     "a verdict on the operator's own Deployment")
    violations = get_json(node_kubectl, "deployment", release.deployment, "-n", release.namespace)[
        "metadata"]["annotations"].get("readiness.dev/violations")
    assert found == "compliant", violations


def test_examples_become_ready_and_violations_are_reported(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=policy("e2e-story", [node_namespace]))
    node_kubectl("apply", "-f", "-", input=deployment("good", node_namespace, workload_image))
    node_kubectl("apply", "-f", "-", input=deployment("bad", node_namespace, workload_image, probe=False))
    wait_until(lambda: ready_replicas(node_kubectl, node_namespace, "good") == 1, 90, "good to be Ready")
    wait_until(lambda: ready_replicas(node_kubectl, node_namespace, "bad") == 1, 90, "bad to run")
    assert wait_until(lambda: verdict(node_kubectl, node_namespace, "good"), 60) == "compliant"
    assert wait_until(lambda: verdict(node_kubectl, node_namespace, "bad"), 60) == "violating"
    offenders = node_kubectl("get", "deploy", "-n", node_namespace, "-l", "readiness.dev/compliant=false",
                             "-o", "name").stdout.split()
    assert offenders == ["deployment.apps/bad"]
    wait_until(lambda: any(e["involvedObject"]["name"] == "bad" for e in get_json(
        node_kubectl, "events", "-n", node_namespace, "--field-selector", "reason=ReadinessViolation",
    )["items"]), 60, "a ReadinessViolation Event for bad")


def test_admission_warns_and_denies_through_the_service(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=policy("e2e-warn", [node_namespace], "warn"))
    warned = wait_until(lambda: _warned(node_kubectl, node_namespace, workload_image), 60,
                      "a Warning: line from the webhook")
    assert "readiness-probe-missing" in warned
    node_kubectl("apply", "-f", "-", input=policy("e2e-warn", [node_namespace], "deny"))
    denied = wait_until(lambda: _denied(node_kubectl, node_namespace, workload_image), 60, "a denial")
    assert "denied the request" in denied and "readiness-probe-missing" in denied
    allowed = node_kubectl("apply", "-f", "-", check=False,
                           input=deployment("fine", node_namespace, workload_image))
    assert allowed.returncode == 0, allowed.stderr


def test_failure_policy_when_the_operator_is_scaled_to_zero(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=policy("e2e-down", [node_namespace], "deny"))
    wait_until(lambda: _denied(node_kubectl, node_namespace, workload_image), 60, "deny to take effect")
    webhook = _webhook_configuration(node_kubectl)
    release.scale(0)
    try:
        wait_until(lambda: not release.pods(terminating=True), 120, "the operator's pods to go")
        # failurePolicy Ignore (the default): an outage never blocks a deploy; the audit catches it later.
        ignored = node_kubectl("apply", "-f", "-", check=False,
                               input=deployment("during-outage", node_namespace, workload_image, probe=False))
        assert ignored.returncode == 0, ignored.stderr
        # failurePolicy Fail: deny mode is airtight, and every deploy depends on the operator.
        _set_failure_policy(node_kubectl, webhook, "Fail")
        try:
            failed = node_kubectl("apply", "-f", "-", check=False,
                                  input=deployment("fail-closed", node_namespace, workload_image))
            assert failed.returncode != 0 and "failed calling webhook" in failed.stderr, failed.stderr
        finally:
            _set_failure_policy(node_kubectl, webhook, "Ignore")
    finally:
        release.scale(2)
        release.wait_rolled_out()
    # Back up: the audit judges what was admitted during the outage.
    assert wait_until(lambda: verdict(node_kubectl, node_namespace, "during-outage"), 120) == "violating"


def test_failover_when_the_active_replica_is_deleted(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=policy("e2e-ha", [node_namespace], "audit"))
    active = wait_until(release.active_peer, 60, "an active peer")
    node_kubectl("delete", "pod", active, "-n", release.namespace, "--wait=false")
    deleted = time.monotonic()
    # Only once the old replica is gone (after its preStop sleep) can a verdict be the standby's.
    wait_until(lambda: active not in {p["metadata"]["name"] for p in release.pods(terminating=True)}, 120,
             "the deleted replica to exit")
    gone = time.monotonic()
    node_kubectl("apply", "-f", "-", input=deployment("after-failover", node_namespace, workload_image,
                                                      probe=False))
    assert wait_until(lambda: verdict(node_kubectl, node_namespace, "after-failover"), 120,
                    "a verdict from the standby") == "violating"
    print(f"\nfailover: old replica gone {gone - deleted:.1f}s after its deletion; a new workload's "
          f"verdict {time.monotonic() - gone:.1f}s after that")
    release.wait_rolled_out()


def test_no_event_is_lost_when_the_active_replica_is_killed(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    """SIGKILL (a force delete) of the active replica between a verdict's write and its Event (the settle
    window): the standby reads `readiness.dev/announced`, sees the findings were never announced, and
    posts the Events."""
    node_kubectl("apply", "-f", "-", input=policy("e2e-kill", [node_namespace], "audit"))
    active = wait_until(release.active_peer, 60, "an active peer")
    names = [f"k{i}" for i in range(3)]
    node_kubectl("apply", "-f", "-", input="---\n".join(
        deployment(name, node_namespace, workload_image, probe=False) for name in names))
    for name in names:
        wait_until(lambda n=name: verdict(node_kubectl, node_namespace, n), 60)  # type: ignore[misc]
    unannounced = not _violation_events(node_kubectl, node_namespace)
    node_kubectl("delete", "pod", active, "-n", release.namespace, "--grace-period=0", "--force")
    print(f"\nkilled {active} with {'no' if unannounced else 'some'} Event posted yet")
    wait_until(lambda: sorted(_violation_events(node_kubectl, node_namespace)) == names, 180,
               "a ReadinessViolation Event for each workload")
    release.wait_rolled_out()  # (at least once: a kill just after a POST may repeat an Event, never drop one)


def _violation_events(kubectl: Kubectl, namespace: str) -> dict[str, int]:
    events = get_json(kubectl, "events", "-n", namespace, "--field-selector",
                      "reason=ReadinessViolation")["items"]
    per_workload: dict[str, int] = {}
    for event in events:
        name = event["involvedObject"]["name"]
        per_workload[name] = per_workload.get(name, 0) + int(event.get("count") or 1)
    return per_workload


def test_rolling_upgrade_loses_no_verdict_and_no_event(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=policy("e2e-roll", [node_namespace], "audit"))
    names = [f"w{i}" for i in range(6)]
    node_kubectl("apply", "-f", "-", input="---\n".join(
        deployment(name, node_namespace, workload_image, probe=False) for name in names[:3]))
    for name in names[:3]:
        wait_until(lambda n=name: verdict(node_kubectl, node_namespace, n), 60)  # type: ignore[misc]
    node_kubectl("set", "env", f"deployment/{release.deployment}", "-n", release.namespace,
                 f"READINESS_E2E_ROLL={time.monotonic_ns()}")
    # Workloads created while the replicas roll over are judged too.
    node_kubectl("apply", "-f", "-", input="---\n".join(
        deployment(name, node_namespace, workload_image, probe=False) for name in names[3:]))
    release.wait_rolled_out()
    for name in names:
        assert wait_until(lambda n=name: verdict(node_kubectl, node_namespace, n), 120) == "violating"  # type: ignore[misc]
    per_workload = _violation_events(node_kubectl, node_namespace)
    assert sorted(per_workload) == names, per_workload  # every workload got its Event...
    assert set(per_workload.values()) == {1}, per_workload  # ...once: the new replicas did not repeat it


def test_verdict_flips_never_restart_pods(
    release: Release, node_cluster: NodeCluster, node_kubectl: Kubectl, node_namespace: str,
    workload_image: str, cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=deployment("steady", node_namespace, workload_image, replicas=2,
                                                      probe=False))
    wait_until(lambda: ready_replicas(node_kubectl, node_namespace, "steady") == 2, 90, "steady to run")
    before = _pod_identities(node_kubectl, node_namespace)
    flips = 100
    with VerdictWatch(node_cluster, node_namespace, "steady") as watch:
        for flip in range(flips):
            enabled = flip % 2 == 0  # readiness-probe-missing on: violating; off: compliant
            checks = {"readiness-probe-missing": {"enabled": enabled},
                      "replicas-too-few": {"enabled": False}}
            node_kubectl("apply", "-f", "-", input=policy("e2e-flip", [node_namespace], "audit", checks))
            watch.wait_for("violating" if enabled else "compliant", 60, f"flip {flip}")
    assert _pod_identities(node_kubectl, node_namespace) == before
    # The API server bumps a Deployment's generation on annotation changes too (the deployment controller
    # copies them to the ReplicaSet), but the pod template, and so the ReplicaSet, never changes.
    replica_sets = get_json(node_kubectl, "replicasets", "-n", node_namespace, "-l", "app=steady")["items"]
    assert len(replica_sets) == 1, [rs["metadata"]["name"] for rs in replica_sets]


class VerdictWatch:
    """One ``kubectl get --watch`` printing a Deployment's verdict on every change: a hundred flips read
    from one stream instead of a kubectl process per poll."""

    def __init__(self, cluster: NodeCluster, namespace: str, name: str) -> None:
        self._command = [str(binaries.kubectl()), f"--kubeconfig={cluster.kubeconfig}", "get", "deployment",
                         name, "-n", namespace, "--watch", "--output-watch-events=false",
                         "-o", r'jsonpath={.metadata.annotations.readiness\.dev/verdict}{"\n"}']
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> VerdictWatch:
        self._process = subprocess.Popen(self._command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._process.kill()
        self._process.wait(timeout=10)

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def wait_for(self, expected: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"{what}: the watch ended (exit {self._process.poll()}) after {seen}")
            if line == expected:
                return
            seen.append(line)
        raise AssertionError(f"{what}: no {expected!r} within {timeout:.0f}s; saw {seen[-5:]}")


def test_eviction_is_refused_for_the_workload_pdb_blocks_evictions_flags(
    release: Release, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
    cleanup_policies: None,
) -> None:
    node_kubectl("apply", "-f", "-", input=policy("e2e-pdb", [node_namespace], "audit",
                                                  {"pdb-blocks-evictions": {"severity": "error"}}))
    budgets = (("blocked", 2, {"maxUnavailable": 0}), ("drainable", 2, {"maxUnavailable": 1}))
    for name, replicas, pdb in budgets:
        node_kubectl("apply", "-f", "-", input=deployment(name, node_namespace, workload_image,
                                                          replicas=replicas))
        node_kubectl("apply", "-f", "-", input=yaml.safe_dump({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": node_namespace},
            "spec": {**pdb, "selector": {"matchLabels": {"app": name}}}}))
        wait_until(lambda n=name, r=replicas: ready_replicas(node_kubectl, node_namespace, n) == r, 90)  # type: ignore[misc]
    assert wait_until(lambda: verdict(node_kubectl, node_namespace, "blocked"), 60) == "violating"
    assert wait_until(lambda: verdict(node_kubectl, node_namespace, "drainable"), 60) == "compliant"
    wait_until(lambda: _pdb_settled(node_kubectl, node_namespace), 60, "the PDB controller's status")
    refused = _evict(node_kubectl, node_namespace, _pods_of(node_kubectl, node_namespace, "blocked")[0])
    assert refused.returncode != 0 and "disruption budget" in refused.stderr, refused.stderr
    allowed = _evict(node_kubectl, node_namespace, _pods_of(node_kubectl, node_namespace, "drainable")[0])
    assert allowed.returncode == 0, allowed.stderr


def test_pre_stop_sleep_keeps_serving_through_the_grace_period(
    node_cluster: NodeCluster, node_kubectl: Kubectl, node_namespace: str, workload_image: str,
) -> None:
    """A pod with a preStop sleep still answers after deletion; one without stops at once."""
    served = {}
    for name, pre_stop in (("with-prestop", 5), ("without-prestop", None)):
        node_kubectl("apply", "-f", "-", input=deployment(name, node_namespace, workload_image, grace=20,
                                                          pre_stop=pre_stop))
        wait_until(lambda n=name: ready_replicas(node_kubectl, node_namespace, n) == 1, 90)  # type: ignore[misc]
        served[name] = serving_after_delete(node_kubectl, node_namespace, _pods_of(
            node_kubectl, node_namespace, name)[0])
    print(f"\nserving after delete: {served}")
    # Both wait for kubelet to see the deletion; only the preStop sleep keeps serving after that.
    assert served["with-prestop"] - served["without-prestop"] >= 3.0, served


def serving_after_delete(kubectl: Kubectl, namespace: str, pod: str, limit: float = 15.0) -> float:
    """Seconds a pod keeps answering ``/healthz`` (through the API server's pod proxy) after deletion."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}:8080/proxy/healthz"
    kubectl("delete", "pod", pod, "-n", namespace, "--wait=false")
    began = time.monotonic()
    last_ok = 0.0
    while time.monotonic() - began < limit:
        if _answers(kubectl, path):
            last_ok = time.monotonic() - began
        elif time.monotonic() - began > last_ok + 2:
            break
        time.sleep(0.1)
    return last_ok


# -- helpers ----------------------------------------------------------------------------------------


def _answers(kubectl: Kubectl, path: str) -> bool:
    """Whether the pod answers through the API server's proxy (a vanished pod IP just times out)."""
    try:
        return kubectl("get", "--raw", path, "--request-timeout=1s", check=False, timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _warned(kubectl: Kubectl, namespace: str, image: str) -> str:
    name = f"warned-{time.monotonic_ns()}"
    result = kubectl("apply", "-f", "-", input=deployment(name, namespace, image, probe=False))
    return result.stderr if "Warning: [" in result.stderr else ""


def _denied(kubectl: Kubectl, namespace: str, image: str) -> str:
    name = f"denied-{time.monotonic_ns()}"
    result = kubectl("apply", "-f", "-", check=False, input=deployment(name, namespace, image, probe=False))
    return result.stderr if result.returncode != 0 else ""


def _webhook_configuration(kubectl: Kubectl) -> str:
    names = kubectl("get", "validatingwebhookconfigurations", "-o", "name").stdout.split()
    ours = [name for name in names if "readiness" in name]
    assert len(ours) == 1, names
    return ours[0]


def _set_failure_policy(kubectl: Kubectl, webhook: str, policy_value: str) -> None:
    patch = [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": policy_value}]
    kubectl("patch", webhook, "--type=json", "-p", json.dumps(patch))


def _pod_identities(kubectl: Kubectl, namespace: str) -> dict[str, tuple[int, ...]]:
    pods = get_json(kubectl, "pods", "-n", namespace)["items"]
    return {pod["metadata"]["uid"]: tuple(s["restartCount"] for s in pod["status"]["containerStatuses"])
            for pod in pods}


def _pods_of(kubectl: Kubectl, namespace: str, app: str) -> list[str]:
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return [pod["metadata"]["name"] for pod in pods if is_ready(pod)]


def _pdb_settled(kubectl: Kubectl, namespace: str) -> bool:
    pdbs = get_json(kubectl, "pdb", "-n", namespace)["items"]
    return all((pdb.get("status") or {}).get("observedGeneration") == pdb["metadata"]["generation"]
               and (pdb["status"].get("currentHealthy") or 0) >= 1 for pdb in pdbs)


def _evict(kubectl: Kubectl, namespace: str, pod: str) -> Any:
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": namespace}})
    return kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
                   input=body, check=False)


def test_the_demo_story_with_the_example_web_shops(
    release: Release, node_cluster: NodeCluster, node_kubectl: Kubectl, workload_image: str,
    cleanup_policies: None,
) -> None:
    """The examples as `make demo` applies them: the compliant web shop's pods become Ready and it is
    judged compliant by the production policy; the legacy one is violating and its `:latest` image is
    never pulled (there is no registry)."""
    from readiness.envtest.release import REPO_ROOT
    examples = REPO_ROOT / "examples"
    production = yaml.safe_load((examples / "policies" / "production.yaml").read_text())
    production["metadata"] = {"name": "e2e-production", "labels": {LABEL: "true"}}
    node_kubectl("create", "namespace", "shop", check=False)
    node_kubectl("label", "namespace", "shop", "env=prod", "--overwrite")
    try:
        node_kubectl("apply", "-f", "-", input=yaml.safe_dump(production))
        if not node_cluster.settings.use_existing_cluster:
            node_cluster.tag_image(workload_image, "ghcr.io/acme/storefront:4.12.0")
        node_kubectl("apply", "-f", str(examples / "workloads" / "compliant" / "web-deployment.yaml"))
        node_kubectl("apply", "-f", str(examples / "workloads" / "non-compliant" / "web-deployment.yaml"))
        wait_until(lambda: ready_replicas(node_kubectl, "shop", "storefront") == 3, 120, "storefront Ready")
        assert wait_until(lambda: verdict(node_kubectl, "shop", "storefront"), 60) == "compliant"
        assert wait_until(lambda: verdict(node_kubectl, "shop", "legacy-web"), 60) == "violating"
        selector = "app.kubernetes.io/name=legacy-web"
        pods = get_json(node_kubectl, "pods", "-n", "shop", "-l", selector)["items"]
        waiting = [s.get("state", {}).get("waiting", {}).get("reason") for p in pods
                   for s in p["status"].get("containerStatuses", [])]
        assert ready_replicas(node_kubectl, "shop", "legacy-web") == 0, waiting
    finally:
        node_kubectl("delete", "namespace", "shop", "--wait=false", check=False)
