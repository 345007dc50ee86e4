"""Uninstall (issue 13, item 8): policies carry no finalizer, so deleting one while the operator is gone
completes; an upgraded install's old finalizer is removed by the operator; `readiness cleanup` strips the
operator's keys from workloads (a dry run unless --apply) and frees policies stuck on the old finalizer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import yaml

from readiness.controller import output
from readiness.envtest import Kubectl, upstream_crds
from readiness.uninstall import KOPF_FINALIZER

from .conftest import (
    TEST_LABEL,
    OperatorHandle,
    annotations_of,
    deployment_yaml,
    get_json,
    policy_yaml,
    wait_until,
)

pytestmark = pytest.mark.cluster
Start = Callable[..., AbstractContextManager[OperatorHandle]]
EXEMPT = "readiness.dev/exempt"


def apply(kubectl: Kubectl, text: str) -> None:
    kubectl("apply", "-f", "-", input=text)


def unlabelled_policy(name: str, namespace: str) -> str:
    """A policy the operator fixture does not delete before it stops (it deletes the labelled ones)."""
    body = yaml.safe_load(policy_yaml(name, [namespace]))
    del body["metadata"]["labels"][TEST_LABEL]
    return yaml.safe_dump(body)


def cleanup(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "readiness.cli", "cleanup", "--kubeconfig", str(kubeconfig),
                           *args], capture_output=True, text=True, timeout=120, check=False)


def ours(kubectl: Kubectl, namespace: str, name: str) -> set[str]:
    meta = get_json(kubectl, "deployment", name, "-n", namespace)["metadata"]
    keys = set(meta.get("annotations") or {}) | set(meta.get("labels") or {})
    return keys & {*output.OUR_ANNOTATIONS, *output.OUR_LABELS}


def finalizers(kubectl: Kubectl, policy: str) -> list[str]:
    return list(get_json(kubectl, "readinesspolicy", policy)["metadata"].get("finalizers") or [])


def add_old_finalizer(kubectl: Kubectl, policy: str) -> None:
    kubectl("patch", "readinesspolicy", policy, "--type=merge", "-p",
            f'{{"metadata":{{"finalizers":["{KOPF_FINALIZER}"]}}}}')


def rules_of(kubectl: Kubectl, policy: str) -> str:
    kinds = "configmaps,prometheusrules" if kubectl(
        "get", "crd", "prometheusrules.monitoring.coreos.com", "--ignore-not-found", "-o", "name",
    ).stdout.strip() else "configmaps"
    found: str = kubectl("get", kinds, "-n", "readiness-system", "-o", "name").stdout
    return "\n".join(line for line in found.splitlines() if line.endswith(f"/readiness-{policy}"))


def test_a_policy_deleted_while_the_operator_is_gone_goes_with_what_it_owns(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, start_operator: Start, unique: str) -> None:
    policy = f"uninstall-{unique}"
    apply(kubectl, deployment_yaml("web", namespace, annotations={EXEMPT: "false"}))
    apply(kubectl, unlabelled_policy(policy, namespace))
    with start_operator():
        wait_until(lambda: annotations_of(kubectl, namespace, "web").get(output.VERDICT) == "violating", 20,
                   "the verdict")
        wait_until(lambda: rules_of(kubectl, policy), 20, "the policy's alert rules")
        assert finalizers(kubectl, policy) == []  # nothing would hold its deletion up
    kubectl("delete", "readinesspolicy", policy, "--timeout=30s")  # the operator is stopped
    # The garbage collector starts watching a new CRD's objects at its next discovery sync (every 30 s):
    # in a session whose CRD was just installed that takes up to ~40 s, in a real cluster under a second.
    wait_until(lambda: not rules_of(kubectl, policy), 90, "the garbage collector to delete its rules", 0.5)

    # The verdict stays on the workload: nothing runs that could remove it, until the cleanup.
    assert {output.VERDICT, output.POLICIES, output.VIOLATIONS, output.COMPLIANT_LABEL} <= ours(
        kubectl, namespace, "web")
    dry = cleanup(kubeconfig, "-n", namespace)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove: Deployment {namespace}/web: " in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert ours(kubectl, namespace, "web")  # a dry run changes nothing

    applied = cleanup(kubeconfig, "-n", namespace, "--apply")
    assert applied.returncode == 0, applied.stderr
    assert f"removed: Deployment {namespace}/web: " in applied.stdout
    assert ours(kubectl, namespace, "web") == set()
    assert annotations_of(kubectl, namespace, "web")[EXEMPT] == "false"  # the user's own key stays
    again = cleanup(kubeconfig, "-n", namespace)
    assert "nothing to clean up" in again.stdout, again.stdout


def test_the_operator_removes_the_finalizer_an_older_release_left(
        kubectl: Kubectl, namespace: str, start_operator: Start, unique: str) -> None:
    policy = f"upgraded-{unique}"
    apply(kubectl, unlabelled_policy(policy, namespace))
    add_old_finalizer(kubectl, policy)
    with start_operator():
        wait_until(lambda: KOPF_FINALIZER not in finalizers(kubectl, policy), 20,
                   "the operator to remove the old finalizer")
    kubectl("delete", "readinesspolicy", policy, "--timeout=30s")


def test_cleanup_frees_a_policy_stuck_on_the_old_finalizer(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, unique: str) -> None:
    policy = f"stuck-{unique}"
    apply(kubectl, unlabelled_policy(policy, namespace))
    add_old_finalizer(kubectl, policy)
    kubectl("delete", "readinesspolicy", policy, "--wait=false")
    assert get_json(kubectl, "readinesspolicy", policy)["metadata"].get("deletionTimestamp")
    dry = cleanup(kubeconfig, "-n", namespace)
    assert f"would remove: ReadinessPolicy {policy}: {KOPF_FINALIZER} (finalizer)" in dry.stdout, dry.stdout
    applied = cleanup(kubeconfig, "-n", namespace, "--apply")
    assert applied.returncode == 0, applied.stderr
    wait_until(lambda: not kubectl("get", "readinesspolicy", policy, "--ignore-not-found", "-o", "name")
               .stdout.strip(), 10, "the policy to go")


def report_yaml(name: str, namespace: str, labels: dict[str, str]) -> str:
    return yaml.safe_dump({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                           "metadata": {"name": name, "namespace": namespace, "labels": labels},
                           "results": []})


def test_cleanup_deletes_our_policy_reports_and_only_ours(
        kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    """Per-workload reports are owned by their workload, not the policy: they outlive an uninstall."""
    upstream_crds.install(kubectl, *upstream_crds.POLICY_REPORTS)
    managed_by = "app.kubernetes.io/managed-by"
    apply(kubectl, report_yaml("readiness-left", namespace, {managed_by: "readiness-operator"}))
    apply(kubectl, report_yaml("kyverno-own", namespace, {managed_by: "kyverno"}))
    dry = cleanup(kubeconfig, "-n", namespace)
    assert f"would remove: PolicyReport {namespace}/readiness-left (the object)" in dry.stdout, dry.stdout
    assert "kyverno-own" not in dry.stdout
    applied = cleanup(kubeconfig, "-n", namespace, "--apply")
    assert applied.returncode == 0, applied.stderr
    left = kubectl("get", "policyreports", "-n", namespace, "-o", "name").stdout.split()
    assert left == ["policyreport.wgpolicyk8s.io/kyverno-own"]


def test_cleanup_errors_are_one_line(kubeconfig: Path, tmp_path: Path) -> None:
    missing = cleanup(tmp_path / "nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "no kubeconfig" in missing.stderr, missing.stderr
    context = cleanup(kubeconfig, "--context", "nope")
    assert context.returncode == 2 and context.stderr.count("\n") == 1, context.stderr
    assert "nope" in context.stderr
