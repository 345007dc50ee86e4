"""The README's demo: the whole user story on a local control plane.

1. starts a real control plane (etcd, kube-apiserver, kube-controller-manager) on 127.0.0.1;
2. installs the ReadinessPolicy CRD (plus the PrometheusRule and PolicyReport CRDs, as a cluster with
   kube-prometheus-stack and Policy Reporter would have them);
3. starts the operator, with its admission webhook, as a separate process;
4. applies the example policies and the non-compliant example workloads, and prints what a user sees:
   `kubectl get readinesspolicies`, the offenders found by label, their annotations and Events, the
   admission warnings, a PolicyReport and a metrics excerpt;
5. fixes one workload and shows it restored.

`--keep` leaves everything running for exploration until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from readiness.envtest import ControlPlane, ControlPlaneSettings, wait_established
from readiness.envtest.controlplane import KubectlError, free_port

ROOT = Path(__file__).resolve().parent.parent
NAMESPACES = {
    "shop": {"env": "prod"},
    "payments": {"env": "prod"},
    "search": {"env": "prod"},
    "billing": {"env": "prod"},
    "monitoring": {},
    "observability": {},
    "readiness-system": {},
}
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


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SystemExit(f"demo: timed out waiting for {what}")


def start_operator(plane: ControlPlane, metrics_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / "operator.log").open("wb")
    argv = [
        sys.executable, "-m", "readiness.controller",
        "--kubeconfig", str(plane.kubeconfig),
        "--metrics-port", str(metrics_port), "--metrics-address", "127.0.0.1",
        "--operator-namespace", "readiness-system",
        "--kinds", "Deployment,StatefulSet,DaemonSet,CronJob",
        "--webhook", "--webhook-port", str(free_port()), "--webhook-addr", "127.0.0.1",
        "--webhook-host", "127.0.0.1", "--webhook-cert-dir", str(workdir / "webhook-certs"),
        "--webhook-operator-namespace", "readiness-system", "--webhook-managed-config", "demo.readiness.dev",
        "--custom-kind", "argoproj.io/Rollout:rollouts=spec.template,replicas=spec.replicas",
    ]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    print(f"$ python -m readiness.controller ... (log: {log.name})", flush=True)
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def annotated_count(plane: ControlPlane) -> int:
    result = plane.kubectl("get", "deploy,sts,ds,rollouts", "-A", "-l", "readiness.dev/compliant",
                           "-o", "name", check=False)
    return len(result.stdout.split())


def metrics_excerpt(port: int, violations: int = 6) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    lines = text.splitlines()
    workloads = [line for line in lines if line.startswith("readiness_policy_workloads{")]
    findings = [line for line in lines if line.startswith("readiness_workload_violations{")
                and 'kind="Deployment"' in line]
    return "\n".join(workloads + findings[:violations])


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="readiness-demo-"))
    say("starting a local control plane (etcd, kube-apiserver, kube-controller-manager)")
    with ControlPlane(ControlPlaneSettings.from_env()) as plane:
        print(f"export KUBECONFIG={plane.kubeconfig}")
        show(plane, "version")
        say("installing the CRDs")
        show(plane, "apply", "-f", str(ROOT / "crds"))
        show(plane, "apply", "-f", str(ROOT / "tests/fixtures/crds"))
        for crd in ("readinesspolicies.readiness.dev", "prometheusrules.monitoring.coreos.com",
                    "policyreports.wgpolicyk8s.io", "rollouts.argoproj.io"):
            wait_established(plane.kubectl, crd)
        for name, labels in NAMESPACES.items():
            plane.kubectl("create", "namespace", name)
            if labels:
                plane.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))
        metrics_port = free_port()
        say("starting the operator (with its admission webhook)")
        operator = start_operator(plane, metrics_port, workdir)
        try:
            return story(plane, operator, metrics_port, workdir, args.keep)
        except KubectlError as error:
            print(f"demo: {error}".rstrip(), file=sys.stderr)
            print(f"demo: operator log: {workdir / 'operator.log'}", file=sys.stderr)
            return 1
        finally:
            os.killpg(operator.pid, signal.SIGTERM)
            try:
                operator.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)


def story(plane: ControlPlane, operator: subprocess.Popen[bytes], metrics_port: int, workdir: Path,
          keep: bool) -> int:
    wait_for("the operator's metrics endpoint",
             lambda: _metrics_up(metrics_port) or operator.poll() is not None)
    if operator.poll() is not None:
        print((workdir / "operator.log").read_text()[-3000:])
        raise SystemExit("demo: the operator exited")
    say("a platform team applies the example policies")
    show(plane, "apply", "-f", str(ROOT / "examples/policies"))
    time.sleep(1)
    say("a team deploys workloads that are not production-ready (kubectl prints the webhook's warnings)")
    show(plane, "apply", "-f", str(ROOT / "examples/workloads/non-compliant"))
    time.sleep(1)
    say("another team deploys workloads that follow the rules")
    show(plane, "apply", "-f", str(ROOT / "examples/workloads/compliant"))
    wait_for("the first verdicts", lambda: annotated_count(plane) >= 10, timeout=60)
    # Violation Events wait for the findings to settle (5 s by default): a PodDisruptionBudget applied
    # a moment after its Deployment must not cause a violation Event and then a restoration.
    wait_for("the violation Events", lambda: "legacy-web" in plane.kubectl(
        "get", "events", "-n", "shop", "--field-selector", "reason=ReadinessViolation", "--no-headers",
        "-o", "custom-columns=N:.involvedObject.name", check=False).stdout, timeout=30)
    say("what the platform team sees")
    show(plane, "get", "readinesspolicies")
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
    print(metrics_excerpt(metrics_port))
    say("the team fixes legacy-web, following `readiness explain` (the storefront manifest, renamed)")
    fixed = (ROOT / "examples/workloads/compliant/web-deployment.yaml").read_text().replace(
        "storefront", "legacy-web")
    show(plane, "apply", "-f", "-", input=fixed)
    wait_for("legacy-web to be compliant", lambda: plane.kubectl(
        "get", "deploy", "legacy-web", "-n", "shop", "-o",
        "jsonpath={.metadata.labels.readiness\\.dev/compliant}", check=False).stdout == "true", timeout=30)
    show(plane, "get", "deploy", "legacy-web", "-n", "shop", "-L", "readiness.dev/compliant")
    show(plane, "get", "events", "-n", "shop", "--field-selector", "reason=ReadinessRestored",
         "-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message")
    say("a namespace that opts into the strict policy (deny mode): the webhook rejects a risky workload")
    plane.kubectl("create", "namespace", "secure")
    plane.kubectl("label", "namespace", "secure", "readiness.dev/profile=strict")
    time.sleep(1)
    risky = (ROOT / "examples/workloads/non-compliant/web-deployment.yaml").read_text().replace(
        "namespace: shop", "namespace: secure")
    show(plane, "apply", "-f", "-", input=risky)
    if keep:
        say(f"running; export KUBECONFIG={plane.kubeconfig} to explore. Ctrl-C stops everything")
        try:
            while operator.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    say("done: everything is stopped and cleaned up")
    return 0


def _metrics_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the cluster and operator running")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
