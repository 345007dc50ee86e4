"""The check catalog, table-driven: every check against every one of its fixtures, through the Engine so
that class and role filtering are tested too. Plus focused tests of the arithmetic the checks rely on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import readiness.checks
from readiness.checks import all_checks, get_check
from readiness.checks._helpers import (
    image_tag,
    liveness_at_least_as_strict,
    parse_quantity,
    resolve_rolling_update,
    same_handler,
    scaled_value,
)
from readiness.checks.base import Check, param_fields
from readiness.context import AuditContext
from readiness.engine import Engine
from readiness.modelkit import described
from readiness.policy import ReadinessPolicy
from readiness.workload import Container, ContainerRole, KindRegistry, Workload, project

CHECKS_DIR = Path(readiness.checks.__file__).parent
CONTEXT_KINDS = frozenset({"PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceAccount"})
ALL_KINDS = KindRegistry().kinds()
ORIGINAL_CHECKS = frozenset({"termination-grace-period", "prestop-hook-missing"})
"""No peer checks these (docs/checks say so), so they have no references."""


def fixture_dir(check: Check[Any]) -> Path:
    return CHECKS_DIR / check.id.replace("-", "_")


def fixtures(prefix: str) -> list[Any]:
    return [
        pytest.param(check, path, id=f"{check.id}/{path.name}")
        for check in all_checks()
        for path in sorted(fixture_dir(check).glob(f"{prefix}*.yaml"))
    ]


def engine_for(check: Check[Any], parameters: Mapping[str, Any] | None) -> Engine:
    """A policy that runs this one check (with the fixture's parameters) on every kind."""
    settings: dict[str, Any] = {c.id: {"enabled": False} for c in all_checks() if c.id != check.id}
    settings[check.id] = {"enabled": True, **({"parameters": dict(parameters)} if parameters else {})}
    return Engine(ReadinessPolicy.model_validate({
        "metadata": {"name": f"only-{check.id}"},
        "spec": {"match": {"kinds": ALL_KINDS, "excludeNamespaces": []}, "checks": settings},
    }))


def load(path: Path) -> tuple[list[Workload], AuditContext, Mapping[str, Any] | None]:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    settings = [d for d in documents if d.get("kind") == "ReadinessFixture"]
    assert len(settings) <= 1, f"{path}: at most one ReadinessFixture document"
    workloads = [project(d) for d in documents if d.get("kind") not in CONTEXT_KINDS | {"ReadinessFixture"}]
    assert workloads, f"{path}: no workload"
    context = AuditContext.from_objects(d for d in documents if d.get("kind") in CONTEXT_KINDS)
    return workloads, context, settings[0].get("parameters") if settings else None


def findings_of(check: Check[Any], path: Path) -> list[tuple[Workload, list[str]]]:
    workloads, context, parameters = load(path)
    engine = engine_for(check, parameters)
    results = []
    for workload in workloads:
        evaluation = engine.evaluate(workload, context)
        assert not evaluation.errors, evaluation.errors
        results.append((workload, [f.message for f in evaluation.findings if f.check == check.id]))
    return results


@pytest.mark.parametrize(("check", "path"), fixtures("failure"))
def test_failure_fixture_fails(check: Check[Any], path: Path) -> None:
    for workload, messages in findings_of(check, path):
        assert messages, f"{workload.ref}: expected a {check.id} finding"
        for message in messages:
            assert "{" not in message, f"unfilled message template: {message}"


@pytest.mark.parametrize(("check", "path"), fixtures("success"))
def test_success_fixture_passes(check: Check[Any], path: Path) -> None:
    for workload, messages in findings_of(check, path):
        assert not messages, f"{workload.ref}: unexpected {check.id} findings: {messages}"


@pytest.mark.parametrize("check", all_checks(), ids=lambda c: c.id)
def test_catalog_entry_is_complete(check: Check[Any]) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", check.id)
    assert list(fixture_dir(check).glob("success*.yaml")), "no success fixture"
    assert list(fixture_dir(check).glob("failure*.yaml")), "no failure fixture"
    assert check.rationale and check.remediation and check.title and check.message
    assert "```yaml" in check.remediation, "remediation needs a YAML snippet"
    assert check.references or check.id in ORIGINAL_CHECKS, "references to peers' equivalents"
    for field in param_fields(check.params):
        assert described(check.params, field.name), f"parameter {field.name} has no docstring"
    check.default_params()  # defaults validate


def test_catalog_has_the_required_checks() -> None:
    required = {
        "readiness-probe-missing", "liveness-probe-missing", "startup-probe-missing",
        "liveness-probe-too-aggressive", "cpu-request-missing", "memory-request-missing",
        "memory-limit-missing", "cpu-limit-missing", "limit-request-ratio", "run-as-root",
        "privileged-container",
        "privilege-escalation-allowed", "writable-root-filesystem", "capabilities-not-dropped",
        "dangerous-capabilities", "seccomp-profile-missing", "host-namespaces", "host-path-volume",
        "service-account-token-automount", "termination-grace-period", "prestop-hook-missing",
        "rolling-update-unsafe", "replicas-too-few", "pod-disruption-budget-missing",
        "topology-spread-missing",
        "image-tag-mutable", "image-digest-missing", "secret-in-env",
    }
    assert required <= {c.id for c in all_checks()}
    off = {c.id for c in all_checks() if not c.enabled_by_default}
    assert {"startup-probe-missing", "cpu-limit-missing", "service-account-token-automount",
            "image-digest-missing"} <= off


# -- container roles ---------------------------------------------------------------------------------------

MESHED = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"template": {"spec": {
        "initContainers": [{"name": "migrate", "image": "m:1"},
                           {"name": "proxy", "image": "p:1", "restartPolicy": "Always"}],
        "containers": [{"name": "web", "image": "w:1"}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
    }}},
}


def _flagged(check_id: str, include_native_sidecars: bool = True) -> set[str | None]:
    engine = engine_for(get_check(check_id), None)
    engine_spec = engine.policy.model_copy(deep=True)
    engine_spec.spec.include_native_sidecars = include_native_sidecars
    return {f.container for f in Engine(engine_spec).evaluate(project(MESHED)).findings}


def test_probe_checks_skip_init_containers_and_follow_include_native_sidecars() -> None:
    assert _flagged("liveness-probe-missing") == {"web", "proxy"}
    assert _flagged("liveness-probe-missing", include_native_sidecars=False) == {"web"}


def test_security_checks_cover_every_role_but_ephemeral_containers() -> None:
    assert _flagged("writable-root-filesystem") == {"migrate", "proxy", "web"}
    assert _flagged("writable-root-filesystem", include_native_sidecars=False) == {"migrate", "proxy", "web"}


def test_prestop_judges_app_containers_only() -> None:
    assert _flagged("prestop-hook-missing") == {"web"}


# -- quantities ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("100m", 0.1), ("1", 1.0), ("1.5", 1.5), (".5", 0.5), (2, 2.0), (0.25, 0.25),
    ("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1Ki", 1024.0), ("2Ti", 2 * 2**40), ("1Ei", 2.0**60),
    ("1k", 1e3), ("1M", 1e6), ("1G", 1e9), ("1T", 1e12), ("1E", 1e18),
    ("1e3", 1e3), ("12E-1", 1.2), ("1e+2", 100.0), ("500u", 5e-4), ("10n", 1e-8), ("+1", 1.0),
])
def test_parse_quantity(text: Any, expected: float) -> None:
    assert parse_quantity(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1Zi", "Mi", "1 Gi", True, None, [1]])
def test_parse_quantity_rejects_garbage(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)


def test_quantities_of_equal_value_compare_equal() -> None:
    assert parse_quantity("0.5") == parse_quantity("500m")
    assert parse_quantity("1Gi") == parse_quantity("1073741824") == parse_quantity("1024Mi")


# -- rolling-update arithmetic ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "total", "round_up", "expected"), [
    ("25%", 10, False, 2), ("25%", 10, True, 3), ("25%", 1, False, 0), ("25%", 1, True, 1),
    ("100%", 7, False, 7), ("99%", 4, False, 3), (3, 10, False, 3), ("3", 10, True, 3), ("0%", 5, True, 0),
])
def test_scaled_value(value: Any, total: int, round_up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up) == expected


@pytest.mark.parametrize(("unavailable", "surge", "replicas", "expected"), [
    ("25%", "25%", 4, (1, 1)), ("25%", "25%", 1, (0, 1)), ("25%", 0, 1, (1, 0)), (0, 0, 3, (1, 0)),
    ("50%", "50%", 3, (1, 2)), ("100%", 0, 5, (5, 0)),
])
def test_resolve_rolling_update(unavailable: Any, surge: Any, replicas: int,
                                expected: tuple[int, int]) -> None:
    assert resolve_rolling_update(unavailable, surge, replicas) == expected


@pytest.mark.parametrize("bad", ["abc%", "x", None, 1.5])
def test_scaled_value_rejects_garbage(bad: Any) -> None:
    with pytest.raises(ValueError):
        scaled_value(bad, 3, True)


# -- probe comparison ----------------------------------------------------------------------------------------

def _container(spec: Mapping[str, Any]) -> Container:
    return Container("web", ContainerRole.APP, spec)


HTTP = {"httpGet": {"path": "/ready", "port": 8080}}


@pytest.mark.parametrize(("a", "b", "same"), [
    (HTTP, {"httpGet": {"path": "/ready", "port": "http"}}, True),
    (HTTP, {"httpGet": {"path": "/healthz", "port": 8080}}, False),
    (HTTP, {"httpGet": {"path": "/ready", "port": 9090}}, False),
    ({"httpGet": {"port": 8080}}, {"httpGet": {"path": "/", "port": 8080}}, True),
    ({"tcpSocket": {"port": 5432}}, {"tcpSocket": {"port": 5432}}, True),
    ({"tcpSocket": {"port": 5432}}, HTTP, False),
    ({"grpc": {"port": 9090}}, {"grpc": {"port": 9090, "service": "liveness"}}, False),
    ({"exec": {"command": ["pg_isready"]}}, {"exec": {"command": ["pg_isready"]}}, True),
    ({"exec": {"command": ["pg_isready"]}}, {"exec": {"command": ["true"]}}, False),
    ({}, {}, False),
])
def test_same_handler(a: Mapping[str, Any], b: Mapping[str, Any], same: bool) -> None:
    container = _container({"ports": [{"name": "http", "containerPort": 8080}]})
    assert same_handler(a, b, container) is same
    assert same_handler(b, a, container) is same


@pytest.mark.parametrize(("liveness", "readiness", "strict"), [
    ({}, {}, True),  # defaults on both sides: identical
    ({"periodSeconds": 10, "failureThreshold": 6}, {}, False),
    ({"periodSeconds": 5}, {}, True),
    ({"timeoutSeconds": 5}, {}, False),  # a slow response makes the pod unready, not dead
    ({"periodSeconds": 30, "failureThreshold": 1}, {"periodSeconds": 10}, True),  # 30s <= 30s
    ({}, {"periodSeconds": 5, "failureThreshold": 2}, False),
])
def test_liveness_at_least_as_strict(liveness: Mapping[str, Any], readiness: Mapping[str, Any],
                                     strict: bool) -> None:
    assert liveness_at_least_as_strict(liveness, readiness) is strict


# -- images ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "tag"), [
    ("nginx", None), ("nginx:1.27", "1.27"), ("registry:5000/app", None), ("registry:5000/app:v1", "v1"),
    ("a/b/c:latest", "latest"), ("app@sha256:abc", None), ("app:1.0@sha256:abc", "1.0"),
])
def test_image_tag(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag
