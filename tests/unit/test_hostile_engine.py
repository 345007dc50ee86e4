"""Issue 12, "Input that crashes or aborts", the engine's side: each minimal reproduction the fuzzer found
(tests/support/fuzz.py) gets a clear finding or a MalformedWorkload naming the field, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from readiness.checks._helpers import parse_quantity, scaled_value
from readiness.context import AuditContext
from readiness.engine import Engine, Evaluation
from readiness.loader import load_json, load_text
from readiness.report.model import audit
from readiness.workload import MalformedWorkload, project

ENGINE = Engine.builtin()
CONTAINER = {"name": "app", "image": "nginx:1.25"}


def deployment(pod: dict[str, Any], **spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": pod}
    return {"kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"replicas": 2, "template": template, **spec}}


def evaluate(obj: dict[str, Any]) -> Evaluation:
    return ENGINE.evaluate(project(obj), AuditContext())


def messages(evaluation: Evaluation, check: str) -> list[str]:
    return [f.message for f in evaluation.findings if f.check == check]


# 1. seccompProfile.type as a list or a map

@pytest.mark.parametrize("kind", [["RuntimeDefault"], {"RuntimeDefault": True}])
def test_seccomp_type_of_the_wrong_type_is_a_finding(kind: Any) -> None:
    pod = {"containers": [{**CONTAINER, "securityContext": {"seccompProfile": {"type": kind}}}]}
    result = evaluate(deployment(pod))
    assert result.errors == []
    [message] = messages(result, "seccomp-profile-missing")
    assert "seccompProfile.type" in message and ("a list" in message or "a mapping" in message)


# 2. huge numbers

def test_a_310_digit_memory_quantity_is_judged() -> None:
    resources = {"requests": {"memory": "1Gi"}, "limits": {"memory": int("1" + "0" * 320)}}
    result = evaluate(deployment({"containers": [{**CONTAINER, "resources": resources}]}))
    assert result.errors == []
    assert messages(result, "limit-request-ratio")  # the limit is indeed far above the request


def test_quantities_beyond_float_range_read_as_infinite() -> None:
    assert parse_quantity(10**309) == float("inf")
    assert parse_quantity(-(10**400)) == float("-inf")


def test_percentages_of_huge_totals_resolve_exactly() -> None:
    assert scaled_value("25%", 10**309, round_up=False) == 25 * 10**307
    assert scaled_value("25%", 10**309 + 1, round_up=True) == 25 * 10**307 + 1


def test_replicas_beyond_int32_are_malformed_naming_the_field() -> None:
    obj = deployment({"containers": [CONTAINER]}, replicas=10**309,
                     strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}})
    with pytest.raises(MalformedWorkload, match=r"spec\.replicas: .*310-digit number"):
        project(obj)


@pytest.mark.parametrize("where", ["name", "labels"])
def test_integers_of_over_4300_digits_in_metadata_are_malformed(where: str) -> None:
    obj = deployment({"containers": [CONTAINER]})
    huge = 10**5000
    if where == "name":
        obj["metadata"]["name"] = huge
    else:
        obj["metadata"]["labels"] = {"app": huge}
    with pytest.raises(MalformedWorkload, match=rf"metadata\.{where}.*5001-digit number"):
        project(obj)


# 3. ports as a number

def test_ports_as_a_number_is_malformed_naming_the_container() -> None:
    probe = {"httpGet": {"path": "/", "port": "http"}}
    pod = {"containers": [{**CONTAINER, "ports": 8080, "livenessProbe": probe, "readinessProbe": probe}]}
    expected = r"spec\.containers\[0\]\.ports: expected a list, got a number \(8080\)"
    with pytest.raises(MalformedWorkload, match=expected):
        project(deployment(pod))


def test_restart_policy_of_the_wrong_type_is_malformed() -> None:
    obj = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [CONTAINER], "restartPolicy": []}}
    with pytest.raises(MalformedWorkload, match=r"spec\.restartPolicy: expected a string, got a list"):
        project(obj)


# 9. strings for booleans, null List items, Lists in Lists

def test_host_network_as_a_string_is_malformed() -> None:
    with pytest.raises(MalformedWorkload, match=r"spec\.hostNetwork: expected true or false, got a string"):
        project(deployment({"containers": [CONTAINER], "hostNetwork": "false"}))


def test_a_null_list_item_is_named_as_such() -> None:
    loaded = load_text("kind: List\nitems:\n- kind: ConfigMap\n- null\n", "list.yaml")
    [error] = [*loaded.errors, *audit(loaded.documents, [ENGINE]).errors]
    assert "NoneType" not in error.message
    assert str(error) == "list.yaml:4: items[1]: a null item, expected a Kubernetes object"


def test_a_list_nested_in_a_list_is_judged() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "inner"}, "spec": {"containers": [CONTAINER]}}
    nested = {"kind": "List", "items": [{"kind": "List", "items": [pod]}]}
    loaded = load_json(json.dumps(nested), "nested.json")
    result = audit(loaded.documents, [ENGINE])
    assert [w.workload.ref.name for w in result.workloads] == ["inner"]
    assert not result.skipped


def test_a_port_of_over_4300_digits_owned_by_another_container_is_a_finding() -> None:
    huge = 10**5000
    pod = {"containers": [{**CONTAINER, "readinessProbe": {"tcpSocket": {"port": huge}}},
                          {"name": "proxy", "image": "envoy:1", "ports": [{"containerPort": huge}]}]}
    result = evaluate(deployment(pod))
    assert result.errors == []
    [message] = messages(result, "probe-cannot-fail")
    assert "port a 5001-digit number belongs to container proxy" in message
