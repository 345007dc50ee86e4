"""Waiting for CustomResourceDefinitions to be served.

`kubectl wait --for=condition=Established` right after creating a CRD fails at random with
`.status.conditions accessor error: <nil>` when the API server has not written the CRD's status yet (a
known kubectl behaviour), so poll the condition instead.
"""

from __future__ import annotations

import json
import time

from readiness.envtest.controlplane import Kubectl


def wait_established(kubectl: Kubectl, *names: str, timeout: float = 60.0) -> None:
    """Wait until every named CRD (all CRDs when none is named) has Established=True."""
    deadline = time.monotonic() + timeout
    pending: list[str] = list(names)
    while True:
        pending = [name for name in (pending or _all_crds(kubectl)) if not _established(kubectl, name)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.2)


def _all_crds(kubectl: Kubectl) -> list[str]:
    result = kubectl("get", "crd", "-o", "name", check=False)
    return [line.removeprefix("customresourcedefinition.apiextensions.k8s.io/")
            for line in result.stdout.split()]


def _established(kubectl: Kubectl, name: str) -> bool:
    result = kubectl("get", "crd", name, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
