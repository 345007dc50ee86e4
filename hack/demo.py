"""The README's demo: the whole user story on a real one-node cluster, the operator installed by Helm.

1. starts a one-node cluster from local processes (etcd, kube-apiserver, kube-controller-manager,
   kube-scheduler, containerd, kubelet, kube-proxy) in its own network namespace, with the images built
   from this repository loaded (there is no registry: the example workloads' images are the small test
   image under their names, so their pods really run);
2. installs the CRDs: ours, and the upstream PrometheusRule, ServiceMonitor, PolicyReport and Argo Rollout
   CRDs (pinned, from the Go modules that publish them: `readiness.envtest.upstream_crds`), as a cluster
   with kube-prometheus-stack, Policy Reporter and Argo Rollouts has them;
3. installs the operator as a user does: ``helm upgrade --install`` of charts/readiness-operator
   (2 replicas, webhook certificates from the chart's helm mode);
4. applies the example policies and workloads, and prints what a user sees: the webhook's warnings (each
   under the object it is about),
   `kubectl get readinesspolicies`, pods running, the offenders found by label, their annotations and
   Events, a PolicyReport, the generated PrometheusRules and a metrics excerpt;
5. fixes one workload and shows it restored; a deny-mode namespace rejects a risky one.

`--keep` leaves everything running for exploration until Ctrl-C. Whatever happens (an error, Ctrl-C), the
node's processes stop and its run directory (certificates and keys included) is removed: the last line says
so only once it is true.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from readiness.controller import OperatorSettings
from readiness.envtest import ControlPlane, binaries, upstream_crds
from readiness.envtest.controlplane import KubectlError
from readiness.envtest.images import ImageArchive, ensure_images
from readiness.envtest.node import NodeCluster, NodeSettings
from readiness.envtest.release import Release

ROOT = Path(__file__).resolve().parent.parent
NAMESPACES = {
    "shop": {"env": "prod"},
    "payments": {"env": "prod"},
    "search": {"env": "prod"},
    "billing": {"env": "prod"},
    "monitoring": {},
    "observability": {},
}
KINDS = "{Deployment,StatefulSet,DaemonSet,CronJob,Rollout}"
"""What the demo's operator watches and its webhook judges: the examples' kinds, Argo Rollouts included."""
EVENT_WAIT_SECONDS = OperatorSettings().event_settle_seconds + 25.0
"""A violation Event waits for the settle window; then the writer's queue and a watch delivery."""
OBJECT_LINE = re.compile(r"^[a-z0-9.-]+/\S+ (created|configured|unchanged)")
"""What `kubectl apply` prints for each object it applied."""
BOLD = "\033[1m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def show(plane: ControlPlane, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    print(f"$ kubectl {' '.join(args)}", flush=True)
    result = plane.kubectl(*args, check=False, input=input)
    out = (result.stdout + result.stderr).rstrip()
    if out:
        print(out, flush=True)
    return result


def apply(plane: ControlPlane, path: Path | None = None, manifest: str | None = None) -> None:
    """`kubectl apply -f PATH` (or `-f -` with `manifest`), each admission warning printed under the line of
    the object it is about. kubectl writes an object's warnings (stderr) just before its `... created` line
    (stdout): one pipe for both keeps that order, and the warnings are moved below their object."""
    source = str(path.relative_to(ROOT)) if path is not None else "-"
    print(f"$ kubectl apply -f {source}", flush=True)
    command = [str(binaries.kubectl()), f"--kubeconfig={plane.kubeconfig}", "apply", "-f",
               str(path) if path is not None else "-"]
    result = subprocess.run(command, input=manifest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=120)
    print("\n".join(group_warnings(result.stdout.splitlines())), flush=True)


def group_warnings(lines: list[str]) -> list[str]:
    """kubectl's output with each run of `Warning:` lines indented, and moved below the object's line
    (`deployment.apps/web created`) that follows it; before anything else (a denial's message) they stay."""
    grouped: list[str] = []
    pending: list[str] = []
    for line in lines:
        if line.startswith("Warning: "):
            pending.append(f"    {line}")
            continue
        grouped += [line, *pending] if OBJECT_LINE.match(line) else [*pending, line]
        pending = []
    return grouped + pending


def wait_for_event(plane: ControlPlane, reason: str, name: str, namespace: str = "shop") -> None:
    """Until the operator has posted a `reason` Event on `name`: bounded by the settle window plus the
    time to write it, never a fixed sleep that may be too short (an empty table) or too long."""
    wait_for(f"the {reason} Event of {name}", lambda: name in plane.kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"reason={reason}", "--no-headers",
        "-o", "custom-columns=N:.involvedObject.name", check=False).stdout.split(), EVENT_WAIT_SECONDS)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SystemExit(f"demo: timed out waiting for {what}")


def example_images() -> set[str]:
    """Every image the example workloads name."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("image"), str):
                found.add(node["image"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((ROOT / "examples" / "workloads").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            walk(document)
    return found


def annotated_count(plane: ControlPlane) -> int:
    result = plane.kubectl("get", "deploy,sts,ds,rollouts", "-A", "-l", "readiness.dev/compliant",
                           "-o", "name", check=False)
    return len(result.stdout.split())


def metrics_excerpt(release: Release, violations: int = 6) -> str:
    """The active replica's /metrics, through the API server's pod proxy (what Prometheus scrapes)."""
    pod = release.active_peer() or release.ready_pods()[0]
    text = release.cluster.kubectl(
        "get", "--raw", f"/api/v1/namespaces/{release.namespace}/pods/{pod}:8080/proxy/metrics").stdout
    lines = text.splitlines()
    workloads = [line for line in lines if line.startswith("readiness_policy_workloads{")]
    findings = [line for line in lines if line.startswith("readiness_workload_violations{")
                and 'kind="Deployment"' in line]
    return "\n".join(workloads + findings[:violations])


def run(args: argparse.Namespace) -> int:
    say("building (or reusing) the images: the operator from ./Dockerfile, pause, a test workload")
    images = ensure_images(progress=sys.stderr, names=("operator", "pause", "workload"))
    upstream_crds.ensure(progress=sys.stderr)
    say("starting a one-node cluster (control plane, containerd, kubelet, kube-proxy) in its own namespaces")
    node = NodeSettings(image_archives=tuple(image.archive for image in images.values()))
    cluster = NodeCluster(None, node)
    run_dir: Path | None = None
    code = 1
    try:
        with cluster:
            run_dir = cluster.run_dir
            code = on_the_node(cluster, images, args.keep)
    finally:  # also on Ctrl-C and errors: the node is stopped by then, its directory should be gone
        cleaned = not (run_dir is not None and run_dir.exists())
        print(f"demo: stopped the node and removed {run_dir or 'its run directory'} (TLS keys included)"
              if cleaned else f"demo: could not remove {run_dir}: remove it by hand", file=sys.stderr,
              flush=True)
    if not cleaned:
        return 1
    if code == 0:
        say("done: everything is stopped and cleaned up")
    return code


def on_the_node(cluster: NodeCluster, images: dict[str, ImageArchive], keep: bool) -> int:
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    print(f"# up in {cluster.startup_seconds.get('node Ready', 0):.1f}s; logs in {cluster.run_dir}")
    # No registry here: the examples' images are the test workload under their names.
    cluster.tag_image(images["workload"].ref, *sorted(example_images()))
    show(cluster, "get", "nodes", "-o", "wide")
    say("installing the ecosystem's CRDs the operator writes to (upstream, pinned)")
    for crd in upstream_crds.ALL_CRDS:
        print(f"# {crd.name}: {crd.module}@{crd.version} {crd.path}")
    upstream_crds.install(cluster.kubectl, *upstream_crds.ALL_CRDS)
    for name, labels in NAMESPACES.items():
        cluster.kubectl("create", "namespace", name)
        if labels:
            cluster.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))
    say("installing the operator with Helm, as a user does")
    digest = cluster.image_digest(images["operator"].ref) or ""
    release = Release(cluster, images["operator"].ref, digest=digest,
                      sets=(f"operator.kinds={KINDS}", f"webhook.kinds={KINDS}"))
    print("$ helm upgrade --install readiness-operator charts/readiness-operator -n readiness-system "
          f"--set image.repository=... --set webhook.tls.mode=helm --set operator.kinds={KINDS} --wait")
    seconds = release.install()
    print(f"# rolled out in {seconds:.1f}s")
    show(cluster, "get", "pods", "-n", release.namespace, "-o", "wide")
    try:
        return story(cluster, release, keep)
    except KubectlError as error:
        print(f"demo: {error}".rstrip(), file=sys.stderr)
        print(cluster.kubectl("logs", "-n", release.namespace, "-l", "app.kubernetes.io/instance="
                              + release.name, "--tail=40", check=False).stdout, file=sys.stderr)
        return 1


def story(plane: NodeCluster, release: Release, keep: bool) -> int:
    say("a platform team applies the example policies")
    apply(plane, ROOT / "examples/policies")
    time.sleep(1)
    say("a team deploys a web shop that follows the rules: its pods run, and become Ready")
    apply(plane, ROOT / "examples/workloads/compliant/web-deployment.yaml")
    wait_for("storefront's pods to be Ready", lambda: plane.kubectl(
        "get", "deploy", "storefront", "-n", "shop", "-o", "jsonpath={.status.readyReplicas}",
        check=False).stdout == "3", timeout=120)
    show(plane, "get", "pods", "-n", "shop", "-o", "wide")
    say("a team deploys workloads that are not production-ready (kubectl prints the webhook's warnings, "
        "here under the object each is about)")
    apply(plane, ROOT / "examples/workloads/non-compliant")
    time.sleep(1)
    say("other teams deploy workloads that follow the rules")
    apply(plane, ROOT / "examples/workloads/compliant")
    wait_for("the first verdicts", lambda: annotated_count(plane) >= 10, timeout=90)
    # Violation Events wait for the findings to settle (5 s by default): a PodDisruptionBudget applied
    # a moment after its Deployment must not cause a violation Event and then a restoration.
    wait_for_event(plane, "ReadinessViolation", "legacy-web")
    say("what the platform team sees")
    show(plane, "get", "readinesspolicies")
    say("the pods on the node: :latest images cannot be pulled (no registry); what the examples request "
        "beyond the node's 2 CPUs stays Pending")
    show(plane, "get", "pods", "-A", "-o", "wide")
    show(plane, "get", "deploy,sts,ds,rollouts", "-A", "-l", "readiness.dev/compliant=false")
    say("why a workload is violating: its annotations")
    result = plane.kubectl("get", "deploy", "legacy-web", "-n", "shop", "-o", "json")
    annotations = json.loads(result.stdout)["metadata"].get("annotations", {})
    for key in ("readiness.dev/verdict", "readiness.dev/policies"):
        print(f"{key}: {annotations.get(key)}")
    for item in json.loads(annotations.get("readiness.dev/violations", "[]"))[:8]:
        print("  ", json.dumps(item))
    say("the Events the operator posted")
    show(plane, "get", "events", "-n", "shop", "--field-selector", "reason=ReadinessViolation",
         "-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message")
    say("the policy's status summary")
    show(plane, "get", "readinesspolicy", "production", "-o", "jsonpath={.status.summary}")
    print()
    say("PolicyReports (for Policy Reporter) and the generated alert rules")
    show(plane, "get", "policyreports", "-A")
    show(plane, "get", "prometheusrules", "-n", "readiness-system")
    say("metrics excerpt (what Prometheus scrapes)")
    print(metrics_excerpt(release))
    say("the team fixes legacy-web, following `readiness explain` (the storefront manifest, renamed)")
    fixed = (ROOT / "examples/workloads/compliant/web-deployment.yaml").read_text().replace(
        "storefront", "legacy-web")
    apply(plane, manifest=fixed)
    wait_for("legacy-web to be compliant", lambda: plane.kubectl(
        "get", "deploy", "legacy-web", "-n", "shop", "-o",
        "jsonpath={.metadata.labels.readiness\\.dev/compliant}", check=False).stdout == "true", timeout=30)
    show(plane, "get", "deploy", "legacy-web", "-n", "shop", "-L", "readiness.dev/compliant")
    wait_for_event(plane, "ReadinessRestored", "legacy-web")
    show(plane, "get", "events", "-n", "shop", "--field-selector", "reason=ReadinessRestored",
         "-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message")
    say("a namespace that opts into the strict policy (deny mode): the webhook rejects a risky workload")
    plane.kubectl("create", "namespace", "secure")
    plane.kubectl("label", "namespace", "secure", "readiness.dev/profile=strict")
    time.sleep(1)
    risky = (ROOT / "examples/workloads/non-compliant/web-deployment.yaml").read_text().replace(
        "namespace: shop", "namespace: secure")
    apply(plane, manifest=risky)
    if keep:
        say(f"running; export KUBECONFIG={plane.kubeconfig} to explore. Ctrl-C stops everything")
        try:
            while not plane.exited():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the cluster and operator running")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
