"""Issue 13, item 14: the demo prints each admission warning under the object it is about."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

DEMO = Path(__file__).parents[2] / "hack" / "demo.py"


def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readiness_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_warnings_move_below_their_object() -> None:
    kubectl = [
        "Warning: [production] Deployment/legacy-web: readiness-probe-missing: no readinessProbe (web)",
        "Warning: [production] Deployment/legacy-web: replicas-too-few: replicas is 1",
        "deployment.apps/legacy-web created",
        "poddisruptionbudget.policy/legacy-web created",
        "Warning: [production] StatefulSet/db: run-as-root: runs as root (db)",
        "statefulset.apps/db created",
    ]
    assert demo().group_warnings(kubectl) == [
        "deployment.apps/legacy-web created",
        "    Warning: [production] Deployment/legacy-web: readiness-probe-missing: no readinessProbe (web)",
        "    Warning: [production] Deployment/legacy-web: replicas-too-few: replicas is 1",
        "poddisruptionbudget.policy/legacy-web created",
        "statefulset.apps/db created",
        "    Warning: [production] StatefulSet/db: run-as-root: runs as root (db)",
    ]


def test_trailing_warnings_are_kept() -> None:
    assert demo().group_warnings(["Warning: x"]) == ["    Warning: x"]


def test_a_denial_keeps_its_message_whole() -> None:
    kubectl = ["Warning: [strict] Deployment/web: replicas-too-few (not yet): replicas is 1",
               "Error from server: error when creating \"STDIN\": admission webhook denied the request:",
               "- [strict] readiness-probe-missing (web): no readinessProbe. Fix: Add a readinessProbe"]
    assert demo().group_warnings(kubectl) == [f"    {kubectl[0]}", *kubectl[1:]]
