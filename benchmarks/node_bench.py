"""Figures of the real node: bring-up, the operator's rollout, failover, and the preStop grace period.

    .venv/bin/python benchmarks/node_bench.py [--runs 3]

Each run starts a fresh one-node cluster (images from the cache: build them first with
``python -m readiness.envtest.images``), installs the chart with Helm and measures:
- node bring-up: from nothing to the Node being Ready (containerd, kubelet, kube-proxy, control plane);
- rollout: ``helm upgrade --install --wait`` until both replicas are Ready through their probes;
- failover (graceful): the active replica deleted; time until it has exited (its preStop sleep) and then
  until a workload created at that moment gets its verdict from the standby;
- failover (force): the active replica force-deleted (``--grace-period=0 --force``: the API object goes at
  once, kubelet still stops the container); time until a workload created at once gets its verdict;
- grace: how long a pod keeps answering through the API server's proxy after ``kubectl delete``, with a
  5 s preStop sleep and without one.
Prints each figure per run, then the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from readiness.envtest.images import ensure_images
from readiness.envtest.node import NodeCluster, NodeSettings
from readiness.envtest.release import Release


def wait(predicate: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # not there yet
            pass
        time.sleep(0.05)
    raise SystemExit("node_bench: timed out")


def deployment(name: str, image: str, pre_stop: int | None = None, probe: bool = True) -> str:
    container: dict[str, Any] = {
        "name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", "echo ok > /srv/healthz; trap 'kill $p; exit 0' TERM; "
                    "httpd -f -p 8080 -h /srv & p=$!; wait"],
        "volumeMounts": [{"name": "srv", "mountPath": "/srv"}],
    }
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    if pre_stop:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "bench"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 20,
                                       "volumes": [{"name": "srv", "emptyDir": {}}],
                                       "containers": [container]}}}})


POLICY = yaml.safe_dump({
    "apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "metadata": {"name": "bench"},
    "spec": {"enforcement": "audit", "match": {"namespaces": ["bench"]}, "unlistedChecks": "off",
             "checks": {"readiness-probe-missing": {"severity": "error"}}}})


def verdict(cluster: NodeCluster, name: str) -> str | None:
    meta = json.loads(cluster.kubectl("get", "deploy", name, "-n", "bench", "-o", "json").stdout)["metadata"]
    value: str | None = (meta.get("annotations") or {}).get("readiness.dev/verdict")
    return value


def failover(cluster: NodeCluster, release: Release, tag: str, force: bool) -> tuple[float, float]:
    """(seconds until the old replica is gone, seconds from then until a new workload's verdict)."""
    active = wait(release.active_peer)
    flags = ["--grace-period=0", "--force"] if force else []
    cluster.kubectl("delete", "pod", active, "-n", release.namespace, "--wait=false", *flags)
    began = time.monotonic()
    if not force:
        wait(lambda: active not in {p["metadata"]["name"] for p in release.pods(terminating=True)})
    gone = time.monotonic()
    name = f"failover-{tag}"
    cluster.kubectl("apply", "-f", "-", input=deployment(name, "localhost/readiness-workload:1.0",
                                                         probe=False))
    wait(lambda: verdict(cluster, name), timeout=300)
    judged = time.monotonic()
    release.wait_rolled_out()
    return gone - began, judged - gone


def serving_after_delete(cluster: NodeCluster, name: str, image: str, pre_stop: int | None) -> float:
    cluster.kubectl("apply", "-f", "-", input=deployment(name, image, pre_stop))
    cluster.kubectl("rollout", "status", f"deploy/{name}", "-n", "bench", "--timeout=120s", timeout=150)
    pods = json.loads(cluster.kubectl("get", "pods", "-n", "bench", "-l", f"app={name}", "-o",
                                      "json").stdout)["items"]
    pod = pods[0]["metadata"]["name"]
    path = f"/api/v1/namespaces/bench/pods/{pod}:8080/proxy/healthz"
    cluster.kubectl("delete", "pod", pod, "-n", "bench", "--wait=false")
    began, last_ok = time.monotonic(), 0.0
    while time.monotonic() - began < 25:
        try:
            ok = cluster.kubectl("get", "--raw", path, "--request-timeout=1s", check=False,
                                 timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            last_ok = time.monotonic() - began
        elif time.monotonic() - began > last_ok + 2:
            break
        time.sleep(0.05)
    return last_ok


def one_run(run: int, figures: dict[str, list[float]]) -> None:
    images = ensure_images(names=("operator", "pause", "workload"))
    cluster = NodeCluster(None, NodeSettings(image_archives=tuple(i.archive for i in images.values())))
    began = time.monotonic()
    with cluster:
        results = {"node bring-up (s)": time.monotonic() - began}
        ref = images["operator"].ref
        release = Release(cluster, ref, digest=cluster.image_digest(ref) or "")
        results["rollout, helm --wait (s)"] = release.install()
        cluster.kubectl("create", "namespace", "bench")
        cluster.kubectl("apply", "-f", "-", input=POLICY)
        exit_s, judged_s = failover(cluster, release, f"g{run}", force=False)
        results["graceful failover: old replica exits (s)"] = exit_s
        results["graceful failover: then a new verdict (s)"] = judged_s
        results["force-delete failover: a new verdict (s)"] = sum(failover(cluster, release, f"c{run}",
                                                                           force=True))
        workload = images["workload"].ref
        results["serving after delete, preStop 5 s (s)"] = serving_after_delete(cluster, "pre", workload, 5)
        results["serving after delete, no preStop (s)"] = serving_after_delete(cluster, "bare", workload,
                                                                               None)
    for name, value in results.items():
        figures.setdefault(name, []).append(value)
        print(f"run {run}: {name}: {value:.2f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    for run in range(1, args.runs + 1):
        one_run(run, figures)
    print(f"\nmedians of {args.runs} runs:")
    for name, values in figures.items():
        low, high = min(values), max(values)
        print(f"  {name:45} {statistics.median(values):7.2f}   (min {low:.2f}, max {high:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
