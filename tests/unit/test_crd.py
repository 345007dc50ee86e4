"""The CRD is generated from the model, committed up to date, and structural."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import yaml

from readiness import crd
from readiness.checks import CheckParams, all_checks
from readiness.checks.base import param_fields
from readiness.policy import DURATION_PATTERN, Exemption

Node = dict[str, Any]


def walk(node: Node, path: str = "") -> Iterator[tuple[str, Node]]:
    """Every schema node, with its path."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.fixture(scope="module")
def schema() -> Node:
    rendered: Node = crd.render()
    return rendered["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def props(node: Node, path: str) -> Node:
    for name in path.split("."):
        node = node["properties"][name]
    return node


def test_committed_crd_is_current() -> None:
    assert crd.CRD_PATH.read_text() == crd.render_yaml(), "run `python -m readiness.crd --write`"


def test_check_flag_reports_a_stale_file(tmp_path: Any) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text("stale\n")
    assert crd.main(["--check", "--path", str(stale)]) == 1
    assert crd.main(["--write", "--path", str(stale)]) == 0
    assert crd.main(["--check", "--path", str(stale)]) == 0


def test_committed_crd_is_plain_yaml() -> None:
    text = crd.CRD_PATH.read_text()
    assert "&id" not in text and "*id" not in text  # no anchors: reviewers read the file
    assert yaml.safe_load(text) == crd.render()


def test_names_scope_and_subresources() -> None:
    spec = crd.render()["spec"]
    assert spec["scope"] == "Cluster"
    assert spec["names"] == {"kind": "ReadinessPolicy", "listKind": "ReadinessPolicyList",
                             "plural": "readinesspolicies", "singular": "readinesspolicy",
                             "shortNames": ["rpol"], "categories": ["readiness"]}
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]
               if not c.get("priority")}
    assert columns == {"Ready": '.status.conditions[?(@.type=="Ready")].status',
                       "Mode": ".spec.enforcement", "Matched": ".status.summary.matched",
                       "Violating": ".status.summary.violating", "Age": ".metadata.creationTimestamp"}
    wide = [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority")]
    assert wide == ["Errors", "Warnings", "Exempted", "Last Audit", "Message"]


FORBIDDEN = {"$ref", "anyOf", "oneOf", "allOf", "title", "$defs", "x-kubernetes-preserve-unknown-fields"}


def test_schema_is_structural(schema: Node) -> None:
    for path, node in walk(schema):
        assert "type" in node, f"{path or '<root>'} has no type"
        assert not FORBIDDEN & node.keys(), f"{path}: {FORBIDDEN & node.keys()}"
        assert node.get("default", 0) is not None, f"{path}: null default"
        assert not ("properties" in node and "additionalProperties" in node), path


def test_every_spec_field_is_described(schema: Node) -> None:
    for path, node in walk(schema["properties"]["spec"], ".spec"):
        if not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{path} has no description"


def test_one_typed_property_per_check(schema: Node) -> None:
    checks = props(schema, "spec.checks")["properties"]
    assert list(checks) == [c.id for c in all_checks()]
    grace = checks["termination-grace-period"]["properties"]["parameters"]
    assert grace["properties"]["minSeconds"] == {
        "type": "integer", "description": grace["properties"]["minSeconds"]["description"],
        "default": 10, "minimum": 0}
    assert grace["x-kubernetes-validations"] == [{
        "rule": "!has(self.minSeconds) || !has(self.maxSeconds) || self.minSeconds <= self.maxSeconds",
        "message": "minSeconds must not exceed maxSeconds"}]


def test_defaults_enums_formats_and_patterns(schema: Node) -> None:
    spec = schema["properties"]["spec"]
    assert spec["default"] == {}
    assert props(spec, "enforcement")["default"] == "audit"
    assert props(spec, "enforcement")["enum"] == ["audit", "warn", "deny"]
    assert props(spec, "alerting")["default"] == {}  # so its nested defaults always apply
    assert props(spec, "alerting.for")["pattern"] == DURATION_PATTERN
    assert "default" not in props(spec, "checks")  # nothing to fill in: per-check settings default to unset
    exemption = props(spec, "exemptions")["items"]
    assert props(exemption, "expires")["format"] == "date-time"
    assert exemption["required"] == ["checks", "reason"]
    assert props(exemption, "reason")["minLength"] == 1
    assert props(exemption, "checks")["items"]["enum"][0] == "*"
    rules = [v["rule"] for v in exemption["x-kubernetes-validations"]]
    assert rules == [r for r, _ in Exemption.__cel_rules__]


def test_status_mirrors_the_status_model(schema: Node) -> None:
    status = schema["properties"]["status"]
    assert list(status["properties"]) == ["observedGeneration", "lastAuditTime", "conditions", "summary",
                                          "topOffenders", "exemptions", "rules"]
    conditions = status["properties"]["conditions"]
    assert list(conditions["items"]["properties"]) == ["type", "status", "reason", "message",
                                                       "lastTransitionTime", "observedGeneration"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert list(props(status, "summary")["properties"]) == ["matched", "compliant", "violating", "bySeverity",
                                                            "checks", "byCheck"]
    assert list(props(status, "summary.checks")["items"]["properties"]) == [
        "check", "severity", "violating", "findings"]
    assert props(status, "summary.byCheck")["additionalProperties"] == {"type": "integer"}  # deprecated
    assert list(props(status, "topOffenders")["items"]["properties"]) == [
        "namespace", "kind", "name", "errors", "warnings", "infos", "checks"]
    assert list(props(status, "exemptions")["properties"]) == ["active", "expired"]
    assert list(props(status, "rules")["properties"]) == ["kind", "namespace", "name"]
    assert not [p for p, node in walk(status) if "default" in node]


def test_cel_rules_iterate_only_bounded_lists(schema: Node) -> None:
    """The API server's CEL cost estimator needs bounds on what a rule can reach."""
    for path, node in walk(schema):
        if node.get("type") == "array" and any("x-kubernetes-validations" in n for _, n in walk(node)):
            assert "maxItems" in node, f"{path}: a list holding CEL rules needs maxItems"


def test_cel_rules_come_from_declarations_and_min_max_pairs() -> None:
    class Params(CheckParams):
        min_replicas: int = 1
        max_replicas: int = 10
        max_ratio: float = 4.0
        __cel_rules__: ClassVar[list[tuple[str, str]]] = [
            ("self.maxRatio >= 1.0", "maxRatio must be at least 1"),
        ]

    assert crd.cel_rules(Params) == [
        ("self.maxRatio >= 1.0", "maxRatio must be at least 1"),
        ("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
         "minReplicas must not exceed maxReplicas"),
    ]
    names = [f.name for f in param_fields(Params)]
    assert "max_ratio" in names and "__cel_rules__" not in names
