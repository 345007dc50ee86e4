"""probe-cannot-fail: the seed's "mock health checks" (issue 11, item 12). The catalog's fixture test runs
its success/failure fixtures; these pin the rules one by one, the line reports give, and `explain`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from readiness.checks import get_check
from readiness.engine import Engine
from readiness.loader import load_text
from readiness.report.model import audit
from readiness.workload import project

ROOT = Path(__file__).resolve().parents[2]


def judge(probe: dict[str, Any], *others: dict[str, Any], ports: list[Any] | None = None) -> str | None:
    check = get_check("probe-cannot-fail")
    app = {"name": "app", "image": "app:1", "readinessProbe": probe, **({"ports": ports} if ports else {})}
    workload = project({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                        "spec": {"template": {"spec": {"containers": [app, *others]}}}})
    assert check.container_fn is not None
    outcome = check.container_fn(workload.containers[0], workload, check.default_params())
    return None if outcome is None else check.message.format(container="app", **outcome)


@pytest.mark.parametrize("probe", [
    {"exec": {"command": ["true"]}},
    {"exec": {"command": ["/bin/true"]}},
    {"exec": {"command": ["echo", "ok"]}},
    {"exec": {"command": ["sh", "-c", "exit 0"]}},
    {"exec": {"command": ["/bin/sh", "-c", ":"]}},
    {"exec": {"command": ["bash", "-c", "curl -f localhost:8080/healthz || true"]}},
    {"exec": {"command": ["sh", "-c", "pg_isready -h localhost; exit 0"]}},
    {"exec": {"command": ["cat", "/etc/hostname"]}},
    {"exec": {"command": ["test", "-e", "/proc/1/status"]}},
    {"exec": {"command": ["[", "-f", "/etc/hosts", "]"]}},
    {"httpGet": {"path": "/favicon.ico", "port": 8080}},
])
def test_cannot_fail(probe: dict[str, Any]) -> None:
    message = judge(probe)
    assert message is not None and message.startswith("container app: readinessProbe cannot fail (")


def test_a_port_that_another_container_declares_tests_that_container() -> None:
    proxy = {"name": "istio-proxy", "image": "proxy:1",
             "ports": [{"name": "status-port", "containerPort": 15021}]}
    assert judge({"httpGet": {"path": "/healthz/ready", "port": 15021}}, proxy) == (
        "container app: readinessProbe cannot fail (port 15021 belongs to container istio-proxy)")
    assert judge({"tcpSocket": {"port": "status-port"}}, proxy) is not None
    # declared by this container too (or by none): its own port
    assert judge({"tcpSocket": {"port": 15021}}, proxy, ports=[{"containerPort": 15021}]) is None
    assert judge({"tcpSocket": {"port": 9000}}, proxy) is None


@pytest.mark.parametrize("probe", [
    {"exec": {"command": ["cat", "/tmp/healthy"]}},          # the app creates and removes it
    {"exec": {"command": ["sh", "-c", "curl -f localhost:8080/healthz || exit 1"]}},
    {"exec": {"command": ["sh", "-c", "test -f /tmp/ready && exit 0"]}},
    {"exec": {"command": ["sh", "-c", "echo ok > /dev/tcp/localhost/8080"]}},
    {"exec": {"command": ["pg_isready", "-h", "localhost"]}},
    {"exec": {"command": ["ls"]}},
    {"httpGet": {"path": "/healthz", "port": 8080}},
    {"grpc": {"port": 9090}},
])
def test_can_fail(probe: dict[str, Any]) -> None:
    assert judge(probe) is None


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
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /readyz, port: http}
          livenessProbe:
            exec:
              command: ["true"]
"""


def test_the_finding_points_at_the_probe() -> None:
    result = audit(load_text(MANIFEST, "web.yaml").documents, [Engine.builtin()])
    [workload] = result.workloads
    [finding] = [f for _, f in workload.findings if f.check == "probe-cannot-fail"]
    assert finding.severity == "warning" and finding.field == "livenessProbe"
    assert workload.line_of(finding) == 13


def test_explain_prints_the_page() -> None:
    explained = subprocess.run([sys.executable, "-m", "readiness.cli", "explain", "probe-cannot-fail"],
                               capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith("probe-cannot-fail: ")
    assert "mock health check" in explained.stdout and "alwaysPresentFiles" in explained.stdout
