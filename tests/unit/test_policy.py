"""The ReadinessPolicy model: the examples load, and every bad policy gets one line naming the field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.engine import Engine
from readiness.policy import Enforcement, PolicyError, load_policy

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "policies").glob("*.yaml"))

BASE: dict[str, Any] = {
    "apiVersion": "readiness.dev/v1alpha1",
    "kind": "ReadinessPolicy",
    "metadata": {"name": "p"},
    "spec": {"exemptions": [{"namespaces": ["legacy"], "checks": ["run-as-root"], "reason": "vendor image"}]},
}


def policy_with(path: str, value: Any) -> dict[str, Any]:
    """BASE with one value set at a dotted path (`spec.exemptions.0.reason`); `...` deletes the key."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if value is ...:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_compile(path: Path) -> None:
    policy = load_policy(yaml.safe_load(path.read_text()), str(path))
    assert Engine(policy).active


def test_examples_cover_every_enforcement_mode() -> None:
    modes = {load_policy(yaml.safe_load(p.read_text()), p.name).spec.enforcement for p in EXAMPLES}
    assert modes == set(Enforcement)


BAD = [
    ("unknown check id", "spec.checks.readines-probe-missing", {},
     "p.yaml: spec.checks: unknown check id 'readines-probe-missing' "
     "(did you mean readiness-probe-missing?)"),
    ("unknown check id in an exemption", "spec.exemptions.0.checks", ["run-as-rot"],
     "p.yaml: spec.exemptions[0].checks[0]: unknown check id 'run-as-rot' (did you mean run-as-root?)"),
    ("wrong enum", "spec.enforcement", "block",
     "p.yaml: spec.enforcement: input should be 'audit', 'warn' or 'deny' (got 'block')"),
    ("wrong severity", "spec.checks.run-as-root", {"severity": "critical"},
     "p.yaml: spec.checks.run-as-root.severity: "
     "input should be 'info', 'warning' or 'error' (got 'critical')"),
    ("negative grace period", "spec.checks.termination-grace-period", {"parameters": {"minSeconds": -5}},
     "p.yaml: spec.checks.termination-grace-period.parameters.minSeconds: "
     "input should be greater than or equal to 0 (got -5)"),
    ("min above max", "spec.checks.termination-grace-period",
     {"parameters": {"minSeconds": 60, "maxSeconds": 30}},
     "p.yaml: spec.checks.termination-grace-period.parameters: minSeconds must not exceed maxSeconds"),
    ("min above the default max", "spec.checks.termination-grace-period", {"parameters": {"minSeconds": 900}},
     "p.yaml: spec.checks.termination-grace-period.parameters: minSeconds must not exceed maxSeconds"),
    ("missing exemption reason", "spec.exemptions.0.reason", ...,
     "p.yaml: spec.exemptions[0].reason: required field is missing"),
    ("malformed expires", "spec.exemptions.0.expires", "next tuesday",
     "p.yaml: spec.exemptions[0].expires: must be an RFC 3339 date-time such as 2030-01-31T00:00:00Z, "
     "got 'next tuesday'"),
    ("expires without a time", "spec.exemptions.0.expires", "2030-01-31",
     "p.yaml: spec.exemptions[0].expires: must be an RFC 3339 date-time such as 2030-01-31T00:00:00Z, "
     "got '2030-01-31'"),
    ("wrong type", "spec.match.kinds", "Deployment",
     "p.yaml: spec.match.kinds: input should be a valid list (got 'Deployment')"),
    ("unknown field", "spec.match.kind", ["Deployment"],
     "p.yaml: spec.match.kind: unknown field 'kind' (did you mean kinds?)"),
    ("bad duration", "spec.auditInterval", "ten minutes",
     "p.yaml: spec.auditInterval: must be a Prometheus duration such as 30s, 15m or 1h30m "
     "(got 'ten minutes')"),
    ("bad kind", "spec.match.kinds", ["deployment"],
     "p.yaml: spec.match.kinds[0]: must be a CamelCase kind such as Deployment (got 'deployment')"),
    ("exemption without a scope", "spec.exemptions.0.namespaces", ...,
     "p.yaml: spec.exemptions[0]: an exemption must name namespaces, names, kinds, a selector or containers; "
     "write namespaces: ['*'] to exempt every workload"),
]


@pytest.mark.parametrize(("path", "value", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_policy_gets_one_line_naming_the_field(path: str, value: Any, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(policy_with(path, value), "p.yaml")
    assert str(caught.value) == expected
    assert "\n" not in str(caught.value)


def test_more_errors_are_counted_not_listed() -> None:
    data = policy_with("spec.enforcement", "block")
    data["spec"]["auditInterval"] = "soon"
    with pytest.raises(PolicyError, match=r"^p\.yaml: spec\.enforcement: .* \(and 1 more\)$"):
        load_policy(data, "p.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match=r"^x\.yaml: expected a ReadinessPolicy mapping, got list$"):
        load_policy([], "x.yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize("expires", ["2030-01-31T00:00:00Z", "2030-01-31T02:00:00+02:00",
                                     "2030-01-31T00:00:00.5Z", datetime(2030, 1, 31, tzinfo=UTC)])
def test_expires_accepts_rfc3339(expires: Any) -> None:
    policy = load_policy(policy_with("spec.exemptions.0.expires", expires), "p.yaml")
    exemption = policy.spec.exemptions[0]
    assert exemption.expired(datetime(2030, 2, 1, tzinfo=UTC))
    assert not exemption.expired(datetime(2030, 1, 30, tzinfo=UTC))


def test_explicit_global_exemption_is_allowed() -> None:
    policy = load_policy(policy_with("spec.exemptions.0.namespaces", ["*"]), "p.yaml")
    assert policy.spec.exemptions[0].namespaces == ["*"]


def test_defaults_match_the_documented_ones() -> None:
    spec = load_policy({"metadata": {"name": "p"}}, "p.yaml").spec
    assert spec.enforcement is Enforcement.AUDIT
    assert spec.match.exclude_namespaces == ["kube-system", "kube-public", "kube-node-lease"]
    assert spec.alerting.for_ == "15m"
    assert not spec.allow_workload_exemptions


def test_snake_case_paths_are_reported_in_camel_case() -> None:
    data = copy.deepcopy(BASE)
    data["spec"]["audit_interval"] = "soon"
    with pytest.raises(PolicyError, match=r"^p\.yaml: spec\.auditInterval: "):
        load_policy(data, "p.yaml")
