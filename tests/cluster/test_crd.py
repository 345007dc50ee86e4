"""The generated CRD on a real kube-apiserver, through real kubectl: it installs, `kubectl explain` shows
our descriptions, the examples apply, and bad policies are rejected with a message naming the field."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from readiness.crd import CRD_PATH
from readiness.envtest import ControlPlane, Kubectl, wait_established
from readiness.policy import Condition, ReadinessPolicyStatus, Summary, load_policy

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.yaml"))
CRD_NAME = "readinesspolicies.readiness.dev"
OPENAPI_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def crd(control_plane: ControlPlane) -> Iterator[None]:
    """`kubectl apply -f crds/` once for the module; the CRD must become Established.

    The CRD stays installed afterwards: the control plane is shared by the whole session, and the operator
    tests that may run later rely on it (each test here deletes the policies it created)."""
    kubectl = control_plane.kubectl
    kubectl("apply", "-f", str(CRD_PATH.parent))
    wait_established(kubectl, CRD_NAME)
    yield


def policy(name: str, spec: str) -> str:
    return (f"apiVersion: readiness.dev/v1alpha1\nkind: ReadinessPolicy\nmetadata:\n  name: {name}\n"
            f"spec:\n{spec}")


def dry_run(kubectl: Kubectl, manifest: str) -> tuple[int, str]:
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def retry(kubectl: Kubectl, *args: str) -> str:
    """The OpenAPI document that `kubectl explain` reads is published a moment after Established."""
    deadline = time.monotonic() + OPENAPI_TIMEOUT
    while True:
        result = kubectl(*args, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout
        time.sleep(2)


def test_crd_is_established_and_accepted_as_structural(crd: None, kubectl: Kubectl) -> None:
    conditions = json.loads(kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)["status"]["conditions"]
    by_type = {c["type"]: c for c in conditions}
    assert by_type["Established"]["status"] == "True"
    assert by_type.get("NonStructuralSchema", {"status": "False"})["status"] == "False"


def test_explain_shows_our_descriptions(crd: None, kubectl: Kubectl) -> None:
    spec = retry(kubectl, "explain", "readinesspolicy.spec")
    assert "enforcement" in spec and "audit: report only." in spec
    assert "exemptions" in spec and "allowWorkloadExemptions" in spec
    params = retry(kubectl, "explain", "readinesspolicy.spec.checks.termination-grace-period.parameters")
    assert "minSeconds" in params and "maxSeconds" in params
    assert "Bounds on terminationGracePeriodSeconds" in params
    expires = retry(kubectl, "explain", "readinesspolicy.spec.exemptions.expires")
    assert "RFC 3339" in expires


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_apply(crd: None, kubectl: Kubectl, path: Path) -> None:
    result = kubectl("apply", "--dry-run=server", "-f", str(path), check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # no unknown or duplicate fields either


BAD = {
    "unknown check id": (
        "  checks:\n    readines-probe-missing: {}\n",
        ['unknown field "spec.checks.readines-probe-missing"']),
    "wrong enum": (
        "  enforcement: block\n",
        ["spec.enforcement", 'Unsupported value: "block"']),
    "wrong severity": (
        "  checks:\n    run-as-root: {severity: critical}\n",
        ["spec.checks.run-as-root.severity", 'Unsupported value: "critical"']),
    "negative grace period": (
        "  checks:\n    termination-grace-period:\n      parameters: {minSeconds: -5}\n",
        ["spec.checks.termination-grace-period.parameters.minSeconds", "greater than or equal to 0"]),
    "min above max": (
        "  checks:\n    termination-grace-period:\n      parameters: {minSeconds: 60, maxSeconds: 30}\n",
        ["spec.checks.termination-grace-period.parameters", "minSeconds must not exceed maxSeconds"]),
    "min above the defaulted max": (
        "  checks:\n    termination-grace-period:\n      parameters: {minSeconds: 900}\n",
        ["minSeconds must not exceed maxSeconds"]),
    "missing exemption reason": (
        "  exemptions:\n  - {namespaces: [legacy], checks: [run-as-root]}\n",
        ["spec.exemptions[0].reason", "Required value"]),
    "malformed expires": (
        "  exemptions:\n  - {namespaces: [legacy], checks: ['*'], reason: r, expires: next tuesday}\n",
        ["spec.exemptions[0].expires"]),
    "expires without an offset": (
        "  exemptions:\n  - {namespaces: [legacy], checks: ['*'], reason: r,"
        " expires: '2030-01-31T00:00:00'}\n",
        ["spec.exemptions[0].expires"]),
    "unknown check id in an exemption": (
        "  exemptions:\n  - {namespaces: [legacy], checks: [run-as-rot], reason: r}\n",
        ["spec.exemptions[0].checks[0]", 'Unsupported value: "run-as-rot"']),
    "exemption without a scope": (
        "  exemptions:\n  - {checks: ['*'], reason: r}\n",
        ["spec.exemptions[0]", "an exemption must name namespaces, names, kinds, a selector or containers"]),
    "selector values with Exists": (
        "  match:\n    selector:\n      matchExpressions: [{key: a, operator: Exists, values: [b]}]\n",
        ["values must be non-empty for In and NotIn"]),
    "wrong type": (
        "  match:\n    kinds: Deployment\n",
        ["spec.match.kinds", "must be of type array"]),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_policy_is_rejected_with_a_readable_message(crd: None, kubectl: Kubectl, case: str) -> None:
    spec, expected = BAD[case]
    code, output = dry_run(kubectl, policy("bad", spec))
    assert code != 0, output
    for fragment in expected:
        assert fragment in output, output


def test_server_defaults_agree_with_the_model(crd: None, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=policy("defaults", "  enforcement: warn\n"))
    try:
        stored = json.loads(kubectl("get", "readinesspolicy", "defaults", "-o", "json").stdout)
    finally:
        kubectl("delete", "readinesspolicy", "defaults", "--wait=false")
    spec = stored["spec"]
    assert spec["alerting"]["for"] == "15m"  # filled in although `alerting` was never written
    assert spec["match"]["excludeNamespaces"] == ["kube-system", "kube-public", "kube-node-lease"]
    assert "checks" not in spec
    model = load_policy({"metadata": {"name": "defaults"}, "spec": {"enforcement": "warn"}}, "model")
    assert load_policy(stored, "server").spec == model.spec


def test_status_and_printer_columns(crd: None, kubectl: Kubectl) -> None:
    example = ROOT / "examples" / "policies" / "production.yaml"
    kubectl("apply", "-f", str(example))
    try:
        status = ReadinessPolicyStatus(
            observed_generation=1, summary=Summary(matched=12, violating=3),
            conditions=[Condition(type="Ready", status="True", reason="Audited", message="enforced")])
        body = json.dumps({"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)})
        kubectl("patch", "readinesspolicy", "production", "--subresource=status", "--type=merge", "-p", body)
        table = kubectl("get", "readinesspolicies").stdout.splitlines()
        short = kubectl("get", "rpol", "production", "--no-headers").stdout.split()
        wide = kubectl("get", "rpol", "production", "-o", "wide").stdout.splitlines()
    finally:
        kubectl("delete", "-f", str(example), "--wait=false")
    assert table[0].split() == ["NAME", "READY", "MODE", "MATCHED", "VIOLATING", "AGE"]
    assert short[:5] == ["production", "True", "warn", "12", "3"]
    assert wide[0].split()[6:] == ["ERRORS", "WARNINGS", "EXEMPTED", "LAST", "AUDIT", "MESSAGE"]
    assert wide[1].split()[-1] == "enforced"


def test_examples_round_trip_through_the_server(crd: None, kubectl: Kubectl) -> None:
    """What the server stores (with its defaults) still loads with load_policy, unchanged in meaning."""
    for path in EXAMPLES:
        result = kubectl("apply", "--dry-run=server", "-o", "json", "-f", str(path))
        stored = json.loads(result.stdout)
        original = load_policy(yaml.safe_load(path.read_text()), str(path))
        assert load_policy(stored, f"server:{path.name}").spec == original.spec, path.name
