"""Issue 11, items 1 and 8: context that arrives in the same apply, in the real cluster.

`kubectl apply -f` of the compliant examples (each Deployment before its HorizontalPodAutoscaler and
PodDisruptionBudget, as Helm installs them) and of a Deployment before the ServiceAccount that turns its
token off: a deny policy must admit them all, say "not yet" for what depends on the objects that follow,
and the audit (operator and CLI alike) must call them compliant once those objects exist.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.envtest import Kubectl
from readiness.envtest.release import REPO_ROOT, Release
from support.cluster import get_json, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.node]

LABEL = "readiness.dev/e2e-context"
EXAMPLES = REPO_ROOT / "examples" / "workloads" / "compliant"
SKIPPED_EXAMPLES = ("argo-rollout.yaml",)
"""Argo Rollouts' CRD is not installed on the test node."""
CONTEXT_DEPENDENT = (("deployment", "checkout"), ("deployment", "storefront"), ("deployment", "accounted"))
"""Compliant only through objects later in the apply: an HPA, PodDisruptionBudgets, a ServiceAccount."""
OPERATOR_KINDS = ("deployment", "statefulset", "daemonset")
"""The kinds the chart's operator watches by default (operator.kinds): only they carry a verdict."""


def deny_policy(namespace: str) -> str:
    """Deny on every check that reads context, as errors: before the fix each of them blocked the apply."""
    body = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": f"e2e-context-{namespace}", "labels": {LABEL: "true"}},
            "spec": {"enforcement": "deny", "match": {"namespaces": [namespace]},
                     "checks": {"readiness-probe-missing": {"severity": "error"},
                                "replicas-too-few": {"severity": "error"},
                                "pod-disruption-budget-missing": {"severity": "error"},
                                "topology-spread-missing": {"severity": "error"},
                                "service-account-token-automount": {"enabled": True, "severity": "error"}}}}
    return yaml.safe_dump(body)


def examples_in(namespace: str) -> list[dict[str, Any]]:
    """The compliant examples, moved into `namespace`, in file order."""
    documents: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name in SKIPPED_EXAMPLES:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                document["metadata"]["namespace"] = namespace
                documents.append(document)
    return documents


def token_from_its_account(examples: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The storefront Deployment again, leaving the token to its ServiceAccount, which comes after it."""
    storefront = next(d for d in examples if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == "storefront")
    deployment = copy.deepcopy(storefront)
    labels = {"app.kubernetes.io/name": "accounted"}
    deployment["metadata"].update(name="accounted", labels=labels)
    deployment["spec"]["selector"] = {"matchLabels": labels}
    pod = deployment["spec"]["template"]
    pod["metadata"]["labels"] = labels
    del pod["spec"]["automountServiceAccountToken"]
    pod["spec"]["serviceAccountName"] = "accounted"
    for constraint in pod["spec"]["topologySpreadConstraints"]:
        constraint["labelSelector"] = {"matchLabels": labels}
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "accounted", "namespace": namespace},
               "automountServiceAccountToken": False}
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "accounted", "namespace": namespace},
              "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}
    return [deployment, account, budget]


def probe_less(namespace: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "canary", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "canary"}},
                 "template": {"metadata": {"labels": {"app": "canary"}},
                              "spec": {"containers": [{"name": "app", "image": "canary:1"}]}}}})


@pytest.fixture
def cleanup_context_policies(node_kubectl: Kubectl) -> Iterator[None]:
    yield
    node_kubectl("delete", "readinesspolicies", "-l", f"{LABEL}=true", "--ignore-not-found",
                 "--timeout=60s", check=False)


def verdict(kubectl: Kubectl, kind: str, namespace: str, name: str) -> str | None:
    meta = get_json(kubectl, kind, name, "-n", namespace)["metadata"]
    value: str | None = (meta.get("annotations") or {}).get("readiness.dev/verdict")
    return value


def test_one_apply_in_deny_mode_is_admitted_and_judged_compliant(
    release: Release, node_kubectl: Kubectl, node_namespace: str, cleanup_context_policies: None,
    tmp_path: Path,
) -> None:
    node_kubectl("apply", "-f", "-", input=deny_policy(node_namespace))
    wait_until(lambda: node_kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                                    input=probe_less(node_namespace)).returncode != 0,
               60, "the deny policy to take effect")
    examples = examples_in(node_namespace)
    documents = examples + token_from_its_account(examples, node_namespace)
    text = yaml.safe_dump_all(documents)

    applied = node_kubectl("apply", "-f", "-", input=text, check=False)

    assert applied.returncode == 0, applied.stderr
    assert "replicas-too-few (not yet)" in applied.stderr  # checkout, before its HPA
    assert "service-account-token-automount (not yet)" in applied.stderr  # accounted, before its account
    assert "not yet: needs " in applied.stderr and "[readiness] Deployment/checkout: " in applied.stderr
    # The CLI, given the same file and policy, judges them all; the context-dependent ones pass.
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(deny_policy(node_namespace))
    audited = subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-f", "-", "-o", "json",
                              "-p", str(policy_file), "--fail-on", "never"],
                             input=text, capture_output=True, text=True, check=False)
    assert audited.returncode == 0, audited.stdout[-2000:] + audited.stderr
    offline = {(w["kind"].lower(), w["name"]): w for w in json.loads(audited.stdout)["workloads"]}
    for key in CONTEXT_DEPENDENT:
        assert offline[key]["compliant"], offline[key]["findings"]
    # The operator, once the objects that followed exist, agrees with it workload by workload.
    watched = [(kind, name) for kind, name in offline if kind in OPERATOR_KINDS]
    assert len(watched) >= 5, sorted(offline)
    for kind, name in watched:
        found = wait_until(lambda k=kind, n=name: verdict(node_kubectl, k, node_namespace, n), 90,  # type: ignore[misc]
                           f"a verdict on {kind} {name}")
        annotations = get_json(node_kubectl, kind, name, "-n", node_namespace)["metadata"]["annotations"]
        expected = "compliant" if offline[(kind, name)]["compliant"] else "violating"
        assert found == expected, (kind, name, annotations.get("readiness.dev/violations"))
    # Once the webhook's cached context (refreshed every policy_refresh_seconds) holds the objects that
    # followed, the context-dependent workloads are admitted without a warning.
    dependent = yaml.safe_dump_all([d for d in documents
                                    if (d["kind"].lower(), d["metadata"]["name"]) in CONTEXT_DEPENDENT])
    wait_until(lambda: "Warning:" not in node_kubectl("apply", "--dry-run=server", "-f", "-", input=dependent,
                                                      check=False).stderr,
               60, "the webhook to see the autoscaler, budgets and account")
    again = node_kubectl("apply", "-f", "-", input=text, check=False)
    assert again.returncode == 0, again.stderr

