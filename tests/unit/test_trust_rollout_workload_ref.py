"""Issue 11, item 10: an Argo Rollout with `spec.workloadRef` is judged through the referenced template.

Before: an input error in the CLI (exit 2 even with --fail-on never) and a skipped "malformed" object in
the operator, while the referenced Deployment, which Argo scales to zero, was judged and alerted on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.controller.handlers import Runtime, relink_templates, remember_workload
from readiness.controller.settings import OperatorSettings
from readiness.engine import Engine
from readiness.workload import KindRegistry, WorkloadRef

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "shop/web:1.4.2"}]}}  # no probes, root...


def rollout(scale_down: str | None = "onsuccess", kind: str = "Deployment", name: str = "web",
            ) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": "apps/v1", "kind": kind, "name": name}
    if scale_down is not None:
        ref["scaleDown"] = scale_down
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "workloadRef": ref,
                     "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}}


def deployment(replicas: int = 0) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}


def audit(tmp_path: Path, *documents: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "in.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-f", str(path), "-o", "json",
                           "--fail-on", "never"], capture_output=True, text=True, check=False)


def judged(done: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return {f"{w['kind']}/{w['name']}": [f["check"] for f in w["findings"]] for w in report["workloads"]}


@pytest.mark.parametrize("scale_down", ["onsuccess", "progressively"])
def test_cli_judges_the_rollout_through_the_template_and_not_the_scaled_down_deployment(
    tmp_path: Path, scale_down: str,
) -> None:
    verdicts = judged(audit(tmp_path, rollout(scale_down), deployment(replicas=2)))
    assert list(verdicts) == ["Rollout/web"]
    assert "readiness-probe-missing" in verdicts["Rollout/web"]
    assert "replicas-too-few" not in verdicts["Rollout/web"]  # the Rollout's 3 replicas, not the template's


def test_cli_scale_down_never_judges_a_running_deployment_too(tmp_path: Path) -> None:
    assert list(judged(audit(tmp_path, rollout(None), deployment(replicas=2)))) == ["Rollout/web",
                                                                                   "Deployment/web"]
    # At zero, whatever scaleDown says, it only lends its template.
    assert list(judged(audit(tmp_path, deployment(replicas=0), rollout("never")))) == ["Rollout/web"]


def test_cli_replica_set_and_pod_template_targets(tmp_path: Path) -> None:
    replica_set = {**deployment(), "kind": "ReplicaSet"}
    assert list(judged(audit(tmp_path, rollout(kind="ReplicaSet"), replica_set))) == ["Rollout/web"]
    pod_template = {"apiVersion": "v1", "kind": "PodTemplate",
                    "metadata": {"name": "web", "namespace": "shop"}, "template": TEMPLATE}
    verdicts = judged(audit(tmp_path, rollout(kind="PodTemplate"), pod_template))
    assert "readiness-probe-missing" in verdicts["Rollout/web"]


def test_cli_missing_or_malformed_reference_is_one_clear_line(tmp_path: Path) -> None:
    missing = audit(tmp_path, rollout())
    assert missing.returncode == 2
    assert "spec.workloadRef: Deployment shop/web, whose pod template the Rollout runs, is not in the input" \
        in missing.stderr and "Traceback" not in missing.stderr
    bad = audit(tmp_path, rollout(kind="StatefulSet"), deployment())
    assert bad.returncode == 2 and "spec.workloadRef.kind: expected Deployment, ReplicaSet, PodTemplate" \
        in bad.stderr


def observe(runtime: Runtime, body: dict[str, Any], event: str = "ADDED") -> list[WorkloadRef]:
    """What the workload event handler does to the index, without the audit queue."""
    meta = body["metadata"]
    ref = WorkloadRef(body["kind"], meta["namespace"], meta["name"])
    if event == "DELETED":
        runtime.state.workloads.pop(ref, None)
    else:
        remember_workload(runtime, ref, body, body["kind"].lower() + "s")
    return relink_templates(runtime, ref, event == "DELETED")


ROLLOUT = WorkloadRef("Rollout", "shop", "web")
DEPLOYMENT = WorkloadRef("Deployment", "shop", "web")


@pytest.mark.parametrize("deployment_first", [True, False])
def test_operator_resolves_the_template_from_its_index_in_either_order(deployment_first: bool) -> None:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    state, engine = runtime.state, Engine.builtin()
    first, second = (deployment(), rollout()) if deployment_first else (rollout(), deployment())
    observe(runtime, first)
    changed = observe(runtime, second)
    assert ROLLOUT in state.workloads and not state.malformed
    assert (ROLLOUT in changed) if not deployment_first else (DEPLOYMENT in changed)
    assert [c.name for c in state.workloads[ROLLOUT].workload.containers] == ["app"]
    assert engine.matches(state.workloads[ROLLOUT].workload)
    assert not engine.matches(state.workloads[DEPLOYMENT].workload)  # never alerted on by itself


def test_operator_follows_template_changes_and_rollout_deletion() -> None:
    runtime = Runtime(OperatorSettings(), KindRegistry(), [])
    state = runtime.state
    observe(runtime, deployment())
    observe(runtime, rollout())
    before = state.workloads[ROLLOUT].fingerprint
    probed = deployment()
    probe = {"httpGet": {"path": "/", "port": 80}}
    probed["spec"]["template"] = {**TEMPLATE, "spec": {"containers": [
        {"name": "app", "image": "shop/web:1.4.3", "readinessProbe": probe}]}}
    assert ROLLOUT in observe(runtime, probed)
    assert state.workloads[ROLLOUT].fingerprint != before  # so the auditor judges it again
    assert "readinessProbe" in state.workloads[ROLLOUT].workload.containers[0].spec
    assert DEPLOYMENT in observe(runtime, rollout(), "DELETED")
    assert not state.workloads[DEPLOYMENT].workload.controlled  # judged on its own again
