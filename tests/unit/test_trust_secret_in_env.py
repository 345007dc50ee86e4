"""secret-in-env judges values as well as names (issue 11, item 7), and points at the env entry's line.

The catalog's fixture test runs `success_values.yaml` (Bitnami's boolean flags and other non-secrets) and
`failure_values.yaml` (a PEM key under a harmless name, vendor key names, placeholders); these tests pin the
messages and the line every report gives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from readiness.checks import get_check
from readiness.engine import Engine
from readiness.loader import load_text
from readiness.report import RenderOptions, renderer
from readiness.report.model import audit
from readiness.workload import Container, ContainerRole, project

CHECK = get_check("secret-in-env")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aozN3tihPmljnnudb9G3HecZwR\n"
       "-----END RSA PRIVATE KEY-----\n")


def judge(*env: dict[str, Any]) -> str | None:
    """The check's message on one container with this env, or None when it passes."""
    container = Container("app", ContainerRole.APP, {"name": "app", "image": "app:1", "env": list(env)})
    workload = project({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": {"containers": [container.spec]}})
    assert CHECK.container_fn is not None
    outcome = CHECK.container_fn(container, workload, CHECK.default_params())
    return None if outcome is None else CHECK.message.format(container="app", **outcome)


@pytest.mark.parametrize("var", [
    {"name": "ALLOW_EMPTY_PASSWORD", "value": "no"},          # Bitnami's flags
    {"name": "RABBITMQ_SECURE_PASSWORD", "value": "yes"},
    {"name": "MARIADB_SKIP_TEST_DB", "value": "yes"},
    {"name": "REDIS_TLS_AUTH_CLIENTS", "value": "true"},
    {"name": "PASSWORD_MIN_LENGTH", "value": "12"},           # a number
    {"name": "SECRET_ROTATION_DAYS", "value": "30"},
    {"name": "TOKEN_ISSUER", "value": "https://auth.example.com/"},  # a URL without credentials
    {"name": "SESSION_SECRET", "value": "${SESSION_SECRET}"},  # an unexpanded placeholder of a template
    {"name": "ROUTING_KEY", "value": "orders.created"},      # a key that is no secret
    {"name": "CACHE_KEY_PREFIX", "value": "shop:"},
    {"name": "MONKEY_PATCH", "value": "on"},
    {"name": "GREETING", "value": "example"},                # placeholder words under a harmless name
])
def test_not_a_secret(var: dict[str, Any]) -> None:
    assert judge(var) is None


@pytest.mark.parametrize(("var", "said"), [
    ({"name": "STARTUP_BLOB", "value": PEM}, "STARTUP_BLOB (a private key)"),
    ({"name": "AZURE_BATCH_KEY", "value": "mF2kq8Qw9Zr1Lx0Vb7Nc3Yt5Hs4Jd6Pg"}, "AZURE_BATCH_KEY"),
    ({"name": "OCI_CLI_KEY_CONTENT", "value": PEM}, "OCI_CLI_KEY_CONTENT (a private key)"),
    ({"name": "azureStorageKey", "value": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u"}, "azureStorageKey"),
    ({"name": "DB_PASSWORD", "value": "changeme"}, "DB_PASSWORD (a placeholder)"),
    ({"name": "ADMIN_PASSWORD", "value": "TODO"}, "ADMIN_PASSWORD (a placeholder)"),
    ({"name": "API_TOKEN", "value": "<your-token-here>"}, "API_TOKEN (a placeholder)"),
    ({"name": "SIGNING_KEY", "value": "example"}, "SIGNING_KEY (a placeholder)"),
    ({"name": "DB_PASSWORD", "value": "hunter2"}, "DB_PASSWORD"),
])
def test_secret(var: dict[str, Any], said: str) -> None:
    message = judge(var)
    assert message is not None and f"sets {said} as literal" in message
    assert str(var["value"]).strip() not in message.replace(var["name"], ""), "values are never printed"


MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: web
          image: shop/web:1.4.2
          env:
            - name: LOG_LEVEL
              value: info
            - name: ALLOW_EMPTY_PASSWORD
              value: "no"
            - {name: DB_PASSWORD, value: hunter2}
            - {name: API_TOKEN, value: t0ken}
"""


def test_the_finding_points_at_the_first_leaking_entry_in_every_format() -> None:
    result = audit(load_text(MANIFEST, "web.yaml").documents, [Engine.builtin()])
    [workload] = result.workloads
    [finding] = [f for _, f in workload.findings if f.check == "secret-in-env"]
    assert finding.field == "env[2]"
    assert workload.line_of(finding) == 15  # `- {name: DB_PASSWORD ...}`, not the container's line 8
    report = json.loads(renderer("json")(result, RenderOptions()))
    [entry] = [f for f in report["workloads"][0]["findings"] if f["check"] == "secret-in-env"]
    assert entry["line"] == 15
    assert "line 15" in renderer("text")(result, RenderOptions(color=False))


FLOW = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
    - name: sidecar
      image: shop/proxy:1.0.0
      env: [{name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}]
    - name: web
      image: shop/web:1.4.2
      env: [{name: X, value: y}, {name: DB_PASSWORD, value: hunter2}]
"""


def test_flow_style_entries_point_at_their_own_container() -> None:
    result = audit(load_text(FLOW, "pod.yaml").documents, [Engine.builtin()])
    [workload] = result.workloads
    [finding] = [f for _, f in workload.findings if f.check == "secret-in-env"]
    assert (finding.container, finding.field) == ("web", "env[1]")
    assert workload.line_of(finding) == 11  # not the sidecar's DB_PASSWORD on line 8
