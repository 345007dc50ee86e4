"""Issue 11, item 8: `service-account-token-automount` reads the ServiceAccount, as the kubelet does.

The pod's own `automountServiceAccountToken` wins; unset, its ServiceAccount's applies. The CLI reads
ServiceAccounts from its input, the operator from an index of their flag; admission says "not yet".
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from readiness.controller.handlers import automount_fingerprint, index_service_account
from readiness.controller.state import State
from readiness.engine import Engine
from readiness.policy import ReadinessPolicy
from readiness.webhook import review
from readiness.workload import project

CHECK = "service-account-token-automount"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
POLICY = {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy", "metadata": {"name": "tokens"},
          "spec": {"unlistedChecks": "off", "checks": {CHECK: {"enabled": True, "severity": "error"}}}}


def deployment(name: str, account: str | None = "web", own: bool | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "app", "image": "shop/web:1.4.2"}]}
    if account is not None:
        pod["serviceAccountName"] = account
    if own is not None:
        pod["automountServiceAccountToken"] = own
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}


def account(name: str, flag: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": name, "namespace": "shop"}}
    if flag is not None:
        body["automountServiceAccountToken"] = flag
    return body


def audit_json(tmp_path: Path, *documents: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    manifests, policy = tmp_path / "app.yaml", tmp_path / "policy.yaml"
    manifests.write_text(yaml.safe_dump_all(documents))
    policy.write_text(yaml.safe_dump(POLICY))
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "audit", "-f", str(manifests), "-p",
                           str(policy), "-o", "json"], capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def findings_by_workload(report: dict[str, Any]) -> dict[str, list[str]]:
    return {w["name"]: [f["check"] for f in w["findings"]] for w in report["workloads"]}


def test_cli_reads_the_service_account_in_the_same_input(tmp_path: Path) -> None:
    code, report = audit_json(tmp_path, deployment("inherits"), account("web", False))
    assert code == 0, report
    assert findings_by_workload(report) == {"inherits": []}


def test_cli_pod_value_wins_and_unset_accounts_mount(tmp_path: Path) -> None:
    code, report = audit_json(tmp_path, deployment("overrides", own=True), deployment("other", "api"),
                              account("web", False), account("api", None))
    assert code == 1
    assert findings_by_workload(report) == {"overrides": [CHECK], "other": [CHECK]}


def test_operator_indexes_only_the_flag_of_accounts_that_set_it() -> None:
    assert index_service_account(account("web", False)) == {"shop": ("web", False)}
    assert index_service_account(account("api", None)) == {}
    assert automount_fingerprint(account("api", None)) == ""
    assert automount_fingerprint(account("web", False)) != automount_fingerprint(account("web", True))
    state = State(service_accounts={"shop": [("web", False)]})
    engine = Engine(ReadinessPolicy.model_validate(POLICY))
    context = state.context("shop")
    assert engine.evaluate(project(deployment("inherits")), context, NOW).findings == []
    assert [f.check for f in engine.evaluate(project(deployment("other", "api")), context, NOW).findings] \
        == [CHECK]


def test_admission_says_not_yet_and_does_not_deny() -> None:
    spec = {**POLICY["spec"], "enforcement": "deny"}
    deny = Engine(ReadinessPolicy.model_validate({**POLICY, "spec": spec}))
    result = review([deny], deployment("inherits"), {}, "CREATE", NOW)
    assert result.allowed, result.message
    assert result.warnings[0].startswith(f"[tokens] Deployment/inherits: {CHECK} (not yet): pod mounts the "
                                         "token of ServiceAccount web")
    assert "needs ServiceAccount" in result.warnings[1]
