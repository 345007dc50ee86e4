"""The chart's RBAC, proven: the operator runs with a real ServiceAccount token (TokenRequest) and RBAC
enforced, does its whole job, and cannot do anything else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.envtest import ControlPlane, Kubectl, binaries
from readiness.envtest.controlplane import free_port

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "readiness-operator"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)
    return value


@pytest.fixture(scope="module")
def identity(control_plane: ControlPlane) -> Iterator[dict[str, str]]:
    """The chart's ServiceAccount, ClusterRole, Role and bindings, applied as rendered (managed webhook)."""
    kubectl = control_plane.kubectl
    for path in sorted((CHART / "crds").glob("*.yaml")):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    namespace = f"rbac-{uuid.uuid4().hex[:8]}"
    release = namespace
    kubectl("create", "namespace", namespace)
    rendered = subprocess.run(
        [str(binaries.helm()), "template", release, str(CHART), "--namespace", namespace,
         "--set", "webhook.managed=true", "--set", "webhook.tls.mode=existingSecret",
         "--kube-version", binaries.KUBERNETES_VERSION],
        capture_output=True, text=True, check=True, timeout=120).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
    assert {d["kind"] for d in docs} == RBAC_KINDS
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    account = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    fullname = f"{release}-readiness-operator"
    yield {"namespace": namespace, "account": account, "fullname": fullname,
           "user": f"system:serviceaccount:{namespace}:{account}"}
    for doc in docs:
        if doc["kind"].startswith("Cluster"):
            kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], "--ignore-not-found", check=False)
    kubectl("delete", "validatingwebhookconfiguration", f"{fullname}.readiness.dev", "--ignore-not-found",
            check=False)
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def can_i(kubectl: Kubectl, identity: dict[str, str], verb: str, resource: str, *args: str) -> bool:
    """`kubectl auth can-i VERB RESOURCE[.GROUP] [-n NS | -A] [--subresource=S]` as the operator, asked as
    a SubjectAccessReview: unlike `kubectl auth can-i`, it needs no discovery, so it also answers for
    optional CRDs (PrometheusRule, PolicyReport) that this control plane may not have installed."""
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    attributes: dict[str, str] = {"verb": verb, "resource": plural, "group": group}
    if subresource:
        attributes["subresource"] = subresource
    options = list(args)
    while options:
        option = options.pop(0)
        if option == "-n":
            attributes["namespace"] = options.pop(0)
        elif option.startswith("--subresource="):
            attributes["subresource"] = option.partition("=")[2]
        elif option != "-A":
            raise ValueError(f"can_i: unsupported option {option!r}")
    namespace = identity["namespace"]
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": identity["user"], "resourceAttributes": attributes,
                       "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                  "system:authenticated"]}}
    result = kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return bool(json.loads(result.stdout)["status"].get("allowed"))


def test_can_i_agrees_with_kubectl(kubectl: Kubectl, identity: dict[str, str]) -> None:
    """The SubjectAccessReview helper answers as `kubectl auth can-i --as` does for built-in kinds."""
    for args in (("patch", "deployments.apps", "-A"), ("get", "secrets", "-n", "default")):
        expected = kubectl("auth", "can-i", *args, f"--as={identity['user']}", check=False).stdout.strip()
        assert can_i(kubectl, identity, *args) == (expected == "yes"), args


@pytest.mark.parametrize("args", [
    ("patch", "deployments.apps", "-A"), ("watch", "statefulsets.apps", "-A"), ("list", "namespaces"),
    ("list", "poddisruptionbudgets.policy", "-A"), ("list", "horizontalpodautoscalers.autoscaling", "-A"),
    ("patch", "readinesspolicies.readiness.dev"),
    ("patch", "readinesspolicies.readiness.dev", "--subresource=status"),
    ("create", "events", "-n", "default"), ("create", "events.events.k8s.io", "-n", "default"),
    ("create", "policyreports.wgpolicyk8s.io", "-n", "default"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"), ("patch", "clusterkopfpeerings.kopf.dev"),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
])
def test_the_role_grants_what_the_operator_needs(kubectl: Kubectl, identity: dict[str, str],
                                                 args: tuple[str, ...]) -> None:
    assert can_i(kubectl, identity, *args)


def test_rules_live_only_in_the_operator_namespace(kubectl: Kubectl, identity: dict[str, str]) -> None:
    own = identity["namespace"]
    assert can_i(kubectl, identity, "create", "prometheusrules.monitoring.coreos.com", "-n", own)
    assert can_i(kubectl, identity, "create", "configmaps", "-n", own)
    assert not can_i(kubectl, identity, "create", "configmaps", "-n", "default")
    assert not can_i(kubectl, identity, "create", "prometheusrules.monitoring.coreos.com", "-n", "default")


@pytest.mark.parametrize("args", [
    ("get", "secrets", "-n", "default"), ("list", "secrets", "-A"), ("watch", "secrets", "-A"),
    ("delete", "deployments.apps", "-n", "default"), ("create", "deployments.apps", "-n", "default"),
    ("update", "deployments.apps", "-n", "default"), ("create", "pods", "-n", "default"),
    ("patch", "pods", "-n", "default"), ("create", "pods/exec", "-n", "default"), ("patch", "nodes"),
    ("delete", "namespaces"), ("create", "readinesspolicies.readiness.dev"),
    ("delete", "readinesspolicies.readiness.dev"),
    ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("delete", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts/token", "-n", "default"), ("impersonate", "users"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("get", "configmaps", "-n", "kube-system"),
])
def test_the_operator_cannot_touch_anything_else(kubectl: Kubectl, identity: dict[str, str],
                                                 args: tuple[str, ...]) -> None:
    assert not can_i(kubectl, identity, *args)


def test_no_wildcards_in_the_rendered_roles(identity: dict[str, str], kubectl: Kubectl) -> None:
    for kind, extra in (("clusterrole", ()), ("role", ("-n", identity["namespace"]))):
        role = json.loads(kubectl("get", kind, identity["fullname"], *extra, "-o", "json").stdout)
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (kind, rule)


def test_operator_does_its_job_with_the_service_account_token(
        control_plane: ControlPlane, kubectl: Kubectl, identity: dict[str, str], namespace: str,
        tmp_path: Path) -> None:
    token = kubectl("create", "token", identity["account"], "-n", identity["namespace"],
                    "--duration=1h").stdout.strip()
    kubeconfig = control_plane.kubeconfig_for_token(token, name=identity["account"])
    config_name = f"{identity['fullname']}.readiness.dev"
    policy = f"rbac-{uuid.uuid4().hex[:8]}"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "metadata": {"name": policy},
        "spec": {"enforcement": "warn", "match": {"namespaces": [namespace]}}}))
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "-n", namespace)
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    with log.open("w") as out:
        operator = subprocess.Popen(
            [sys.executable, "-m", "readiness.controller", "--kubeconfig", str(kubeconfig), "--standalone",
             "--operator-namespace", identity["namespace"], "--metrics-port", "0", "--webhook",
             "--webhook-addr", "127.0.0.1", "--webhook-port", str(free_port()),
             "--webhook-managed-config", config_name, "--webhook-cert-dir", str(tmp_path / "tls")],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        def annotated() -> bool:
            result = kubectl("get", "deployment", "web", "-n", namespace, "-o",
                             "jsonpath={.metadata.annotations.readiness\\.dev/verdict}", check=False)
            return result.stdout == "violating"

        wait_for(annotated, timeout=90, what="the verdict annotation")
        wait_for(lambda: "ReadinessViolation" in kubectl("get", "events", "-n", namespace).stdout,
                 what="a ReadinessViolation event")
        wait_for(lambda: kubectl("get", "readinesspolicy", policy, "-o",
                                 "jsonpath={.status.summary.violating}").stdout == "1", what="policy status")
        def rules() -> Any:
            target = json.loads(kubectl("get", "readinesspolicy", policy, "-o", "json").stdout)
            found = (target.get("status") or {}).get("rules") or {}
            return found if found.get("kind") in ("ConfigMap", "PrometheusRule") else None

        target = wait_for(rules, what="the policy's alert rules (status.rules)")
        assert target["namespace"] == identity["namespace"]
        resource = {"ConfigMap": "configmap", "PrometheusRule": "prometheusrules.monitoring.coreos.com"}
        kubectl("get", resource[target["kind"]], target["name"], "-n", target["namespace"])
        wait_for(lambda: kubectl("get", "validatingwebhookconfiguration", config_name,
                                 check=False).returncode == 0, what="the managed webhook configuration")
        # The managed configuration points at this machine's 127.0.0.1, which only the local control
        # plane's API server can reach (not kind's: see tests/cluster/test_webhook.py).
        if not control_plane.settings.use_existing_cluster:
            warned = wait_for(lambda: _warned_create(kubectl, namespace), timeout=30,
                              what="an admission warning")
            assert policy in warned.stderr
        assert "forbidden" not in log.read_text().lower(), log.read_text()[-3000:]
    finally:
        operator.terminate()
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
        print(log.read_text()[-6000:])  # shown by pytest when the test fails
        kubectl("delete", "readinesspolicy", policy, "--ignore-not-found", "--wait=false", check=False)


def _warned_create(kubectl: Kubectl, namespace: str) -> Any:
    result = kubectl("create", "deployment", "second", "--image=nginx:1.27", "-n", namespace,
                     "--dry-run=server", check=False)
    return result if result.returncode == 0 and "Warning: [" in result.stderr else None
