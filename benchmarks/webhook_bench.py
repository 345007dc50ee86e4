"""Admission latency: a real HTTPS client against the real webhook server (not a timed test: it prints).

    .venv/bin/python benchmarks/webhook_bench.py                        # 100 clients, 20,000 requests
    .venv/bin/python benchmarks/webhook_bench.py --policy-refresh 0     # read policies on every request
    .venv/bin/python benchmarks/webhook_bench.py --operator-source /tmp/base/operator   # A/B: a copy

The operator runs as a subprocess, as the chart runs it (`python -m readiness.controller --webhook`),
against the local control plane (readiness.envtest), with `--webhook-policy-source api` (what standby
replicas use: policies and namespace labels cached from the API server, refreshed every
`--policy-refresh` seconds). A deny policy and a warn policy match the benchmark's namespace; half the
Deployments comply, so both the allowed and the denied path run. Each of `--clients` aiohttp clients posts
AdmissionReviews back to back over HTTPS (keep-alive, as the API server does); the figures are p50, p99
and max per request, and errors (anything but HTTP 200 with an AdmissionReview for our uid).
Goal (issue 12): p99 < 50 ms and no request over 1 s at 100 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from _plane import policy_control_plane  # noqa: E402

from readiness.envtest import ControlPlane  # noqa: E402
from readiness.envtest.controlplane import free_port  # noqa: E402
from readiness.tls import Authority, write_serving_certificate  # noqa: E402

LOG = Path("/tmp/webhook-bench.log")


def deployment(name: str, namespace: str, compliant: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1.0",
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    if compliant:
        container |= {"readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                      "securityContext": {"runAsNonRoot": True, "runAsUser": 10001}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "labels": {"app": name}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container]}}}}


def admission_review(uid: str, obj: dict[str, Any]) -> bytes:
    meta = obj["metadata"]
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": meta["name"], "namespace": meta["namespace"], "operation": "CREATE",
        "userInfo": {"username": "bench", "groups": ["system:authenticated"]},
        "object": obj, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}).encode()


def policies(namespace: str) -> str:
    return "\n---\n".join(json.dumps({
        "apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
        "metadata": {"name": f"{mode}-{namespace}"},
        "spec": {"enforcement": mode, "match": {"namespaces": [namespace]}}}) for mode in ("deny", "warn"))


def start_operator(args: argparse.Namespace, kubeconfig: str, port: int, tls: Path,
                   ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(args.operator_source)}
    profiler = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    return subprocess.Popen(
        [sys.executable, *profiler, "-m", "readiness.controller", "--kubeconfig", kubeconfig, "--standalone",
         "--metrics-port", str(free_port()), "--metrics-address", "127.0.0.1", "--no-events",
         "--no-prometheus-rules", "--webhook", "--webhook-addr", "127.0.0.1", "--webhook-port", str(port),
         "--webhook-certfile", str(tls / "tls.crt"), "--webhook-pkeyfile", str(tls / "tls.key"),
         "--webhook-policy-source", "api", "--webhook-policy-refresh-seconds", str(args.policy_refresh)],
        env=env, stdout=subprocess.DEVNULL, stderr=LOG.open("wb"))


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.denied = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def one(session: aiohttp.ClientSession, url: str, body: bytes, uid: str, tally: Tally,
              started: float | None = None) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time() if started is None else started
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as reply:
            text = await reply.read()
            elapsed = loop.time() - started
            if reply.status != 200:
                tally.error(f"HTTP {reply.status}")
                return
            response = json.loads(text)["response"]
            if response.get("uid") != uid:
                tally.error("wrong uid")
                return
            tally.denied += not response["allowed"]
            tally.latencies.append(elapsed)
    except (TimeoutError, aiohttp.ClientError, ValueError, KeyError) as error:
        tally.error(type(error).__name__)


async def client(session: aiohttp.ClientSession, url: str, namespace: str, turns: int, tally: Tally) -> None:
    for turn in range(turns):
        uid = str(uuid.uuid4())
        await one(session, url, admission_review(uid, deployment(f"web-{turn}", namespace, turn % 2 == 0)),
                  uid, tally)


async def open_loop(session: aiohttp.ClientSession, url: str, namespace: str, count: int, rate: float,
                    tally: Tally) -> None:
    """`count` requests at `rate` per second in all, whatever the answers' latency (at most `--clients`
    connections: a request waiting for one counts that wait). Latency from the request's scheduled time,
    so a stall shows in every request it delayed."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for turn in range(count):
        due = start + turn / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        uid = str(uuid.uuid4())
        body = admission_review(uid, deployment(f"web-{turn % 20}", namespace, turn % 2 == 0))
        tasks.append(asyncio.create_task(one(session, url, body, uid, tally, started=due)))
    await asyncio.gather(*tasks)


async def wait_serving(session: aiohttp.ClientSession, url: str, namespace: str,
                       operator: subprocess.Popen[bytes]) -> float:
    """Until the webhook answers (after Kopf's start-up); returns the first answer's latency."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited: see {LOG}")
        tally = Tally()
        uid = str(uuid.uuid4())
        await one(session, url, admission_review(uid, deployment("warm", namespace, False)), uid, tally)
        if tally.latencies:
            if not tally.denied:
                await asyncio.sleep(0.5)  # policies not read yet
                continue
            return tally.latencies[0]
        await asyncio.sleep(0.5)
    raise SystemExit(f"the webhook did not answer within 120 s: see {LOG}")


async def run(args: argparse.Namespace, plane: ControlPlane, tls: Path) -> None:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("apply", "-f", "-", input=policies(namespace))
    port = free_port()
    operator = start_operator(args, str(plane.kubeconfig), port, tls)
    url = f"https://127.0.0.1:{port}/readiness"
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    connector = aiohttp.TCPConnector(ssl=context, limit=args.clients)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            first = await wait_serving(session, url, namespace, operator)
            print(f"webhook serving; a warm-up request took {first * 1000:.1f} ms")
            tally = Tally()
            started = time.perf_counter()
            if args.rate:
                await open_loop(session, url, namespace, args.requests, args.rate, tally)
            else:
                turns = args.requests // args.clients
                await asyncio.gather(*(client(session, url, namespace, turns, tally)
                                       for _ in range(args.clients)))
            wall = time.perf_counter() - started
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
    report(args, tally, wall)


def report(args: argparse.Namespace, tally: Tally, wall: float) -> None:
    lat = sorted(tally.latencies)
    total = len(lat) + sum(tally.errors.values())
    how = (f"at {args.rate:g}/s on up to {args.clients} connections" if args.rate
           else f"from {args.clients} clients back to back")
    print(f"{total} requests {how} in {wall:.1f}s ({total / wall:.0f}/s), "
          f"policy refresh {args.policy_refresh:g}s; {tally.denied} denied")
    if lat:
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"latency p50 {statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {lat[-1] * 1000:.1f} ms; over 1 s: {sum(x > 1 for x in lat)}")
    errors = ", ".join(f"{what}: {count}" for what, count in sorted(tally.errors.items())) or "none"
    print(f"errors: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=20_000, help="requests in all")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests per second in all (open loop); 0: each client sends back to back")
    parser.add_argument("--policy-refresh", type=float, default=10.0,
                        help="--webhook-policy-refresh-seconds of the operator (its default: 10)")
    parser.add_argument("--timeout", type=float, default=30.0, help="client timeout per request (s)")
    parser.add_argument("--operator-source", type=Path, default=ROOT / "operator",
                        help="the operator's source root (PYTHONPATH), for A/B runs against a copy")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the operator under cProfile (slower) and write its stats to FILE on exit")
    parser.add_argument("--use-existing-cluster", action="store_true")
    args = parser.parse_args()
    with policy_control_plane(args.use_existing_cluster) as plane, \
            tempfile.TemporaryDirectory(prefix="webhook-bench-") as tls:
        write_serving_certificate(Path(tls), ["127.0.0.1"], Authority.create())
        asyncio.run(run(args, plane, Path(tls)))


if __name__ == "__main__":
    main()
