"""Pods that run to completion are judged like Jobs (no probe findings), and ReplicationControllers are
workloads the CLI, the operator (with its chart's RBAC) and the webhook all judge (issue 11, item 11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.controller.handlers import watched_kinds
from readiness.controller.settings import OperatorSettings
from readiness.engine import Engine
from readiness.policy import Match
from readiness.webhook import RESOURCES, WebhookSettings
from readiness.workload import KindRegistry, WorkloadClass, project

REPO = Path(__file__).resolve().parents[2]
PROBE_CHECKS = {"readiness-probe-missing", "liveness-probe-missing", "startup-probe-missing"}


def pod(restart_policy: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "task", "image": "tools/migrate:1.0"}]}
    if restart_policy is not None:
        spec["restartPolicy"] = restart_policy
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "migrate", "namespace": "shop"},
            "spec": spec}


def probe_findings(manifest: dict[str, Any]) -> set[str]:
    engine = Engine.builtin()
    evaluation = engine.evaluate(project(manifest))
    startup = Engine(_policy_with_startup_probes())
    found = {f.check for f in evaluation.findings}
    found |= {f.check for f in startup.evaluate(project(manifest)).findings}
    return found & PROBE_CHECKS


def _policy_with_startup_probes() -> Any:
    from readiness.policy import ReadinessPolicy

    return ReadinessPolicy.model_validate({
        "metadata": {"name": "startup"},
        "spec": {"match": {"kinds": KindRegistry().kinds(), "excludeNamespaces": []},
                 "checks": {"startup-probe-missing": {"enabled": True}}}})


@pytest.mark.parametrize("restart_policy", ["Never", "OnFailure"])
def test_a_pod_that_runs_to_completion_gets_no_probe_findings(restart_policy: str) -> None:
    assert project(pod(restart_policy)).workload_class is WorkloadClass.BATCH
    assert probe_findings(pod(restart_policy)) == set()


@pytest.mark.parametrize("restart_policy", [None, "Always"])
def test_a_pod_that_keeps_running_still_needs_probes(restart_policy: str | None) -> None:
    assert project(pod(restart_policy)).workload_class is WorkloadClass.POD
    assert probe_findings(pod(restart_policy)) == PROBE_CHECKS


def test_a_job_gets_no_probe_findings() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"},
           "spec": {"template": {"spec": {**pod("Never")["spec"]}}}}
    assert probe_findings(job) == set()


RC = {"apiVersion": "v1", "kind": "ReplicationController",
      "metadata": {"name": "legacy", "namespace": "shop"},
      "spec": {"replicas": 3, "selector": {"app": "legacy"},
               "template": {"metadata": {"labels": {"app": "legacy"}},
                            "spec": {"containers": [{"name": "web", "image": "legacy/web:1.0"}]}}}}


def test_a_replication_controller_is_a_replicated_service() -> None:
    workload = project(RC)
    assert workload.workload_class is WorkloadClass.SERVICE
    assert workload.replicas == 3 and workload.pod_labels == {"app": "legacy"}
    assert "readiness-probe-missing" in {f.check for f in Engine.builtin().evaluate(workload).findings}


def test_the_cli_judges_a_replication_controller_rather_than_skipping_it(tmp_path: Path) -> None:
    manifest = tmp_path / "rc.yaml"
    manifest.write_text(yaml.safe_dump(RC))
    command = [sys.executable, "-m", "readiness.cli", "audit", "-f", str(manifest), "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert "ReplicationController" not in json.dumps(report.get("skipped", {}))
    assert "readiness-probe-missing" in result.stdout and "legacy" in result.stdout


def test_policies_judge_replication_controllers_wherever_they_judge_deployments() -> None:
    assert "ReplicationController" in Match().kinds
    for name in ("baseline", "production", "strict"):
        policy = yaml.safe_load((REPO / "examples" / "policies" / f"{name}.yaml").read_text())
        kinds = policy["spec"]["match"]["kinds"]
        assert "Deployment" in kinds and "ReplicationController" in kinds, name


def test_the_operator_watches_replication_controllers_by_default() -> None:
    settings = OperatorSettings()
    assert "ReplicationController" in settings.kinds
    watched = {w.kind: (w.group, w.version, w.plural) for w in watched_kinds(settings, KindRegistry())}
    assert watched["ReplicationController"] == ("", "v1", "replicationcontrollers")
    assert "ReplicationController" in WebhookSettings().kinds
    assert RESOURCES["ReplicationController"] == ("", "v1", "replicationcontrollers")


def test_the_chart_grants_what_the_default_kinds_need() -> None:
    values = yaml.safe_load((REPO / "charts" / "readiness-operator" / "values.yaml").read_text())
    assert "ReplicationController" in values["operator"]["kinds"]
    assert "ReplicationController" in values["webhook"]["kinds"]
    rendered = [d for d in yaml.safe_load_all((REPO / "deploy" / "readiness-operator.yaml").read_text()) if d]
    (role,) = [d for d in rendered if d["kind"] == "ClusterRole"]
    assert any("" in rule["apiGroups"] and "replicationcontrollers" in rule["resources"]
               and "patch" in rule["verbs"] and "watch" in rule["verbs"] for rule in role["rules"])
    (hooks,) = [d for d in rendered if d["kind"] == "ValidatingWebhookConfiguration"]
    rules = [rule for hook in hooks["webhooks"] for rule in hook["rules"]]
    assert any("replicationcontrollers" in rule["resources"] for rule in rules)
