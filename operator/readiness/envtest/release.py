"""The operator installed the way users install it: its CRDs, then ``helm upgrade --install`` of the chart.

Used by the node end-to-end suite, the demo and the benchmarks, so that all three run the same release:
the image built from the project's ``Dockerfile`` (`readiness.envtest.images`), ``pullPolicy: Never``
(there is no registry), webhook certificates from the chart's ``helm`` mode (no cert-manager here).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from readiness.envtest import binaries
from readiness.envtest.controlplane import ControlPlane
from readiness.envtest.crds import wait_established

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "readiness-operator"
RELEASE = "readiness-operator"
NAMESPACE = "readiness-system"


@dataclass(frozen=True)
class Release:
    """One Helm release of the chart on a cluster."""

    cluster: ControlPlane
    image: str
    """``repository:tag`` of the operator image the release runs."""
    digest: str = ""
    """``sha256:...`` of that image: the chart then pins it by digest (as the strict policy asks)."""
    name: str = RELEASE
    namespace: str = NAMESPACE
    sets: tuple[str, ...] = field(default=())
    """Extra ``--set`` values, e.g. ``webhook.failurePolicy=Fail``."""

    @property
    def deployment(self) -> str:
        return self.name

    def helm(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [str(binaries.helm()), f"--kubeconfig={self.cluster.kubeconfig}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args[:2])} failed:\n{result.stderr.strip()}")
        return result

    def install(self, *more_sets: str, wait_timeout: str = "5m") -> float:
        """Apply the CRDs, install or upgrade the release and wait for the rollout; return its seconds."""
        kubectl = self.cluster.kubectl
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
        wait_established(kubectl, "readinesspolicies.readiness.dev")
        repository, tag = self.image.rsplit(":", 1)
        values = [f"image.repository={repository}", f"image.tag={tag}", "image.pullPolicy=Never",
                  *([f"image.digest={self.digest}"] if self.digest else []),
                  "webhook.tls.mode=helm", *self.sets, *more_sets]
        began = time.monotonic()
        self.helm("upgrade", "--install", self.name, str(CHART), "--namespace", self.namespace,
                  "--create-namespace", "--wait", f"--timeout={wait_timeout}",
                  *(item for value in values for item in ("--set", value)))
        self.wait_rolled_out()
        return time.monotonic() - began

    def wait_rolled_out(self, timeout: str = "300s") -> None:
        self.cluster.kubectl("rollout", "status", f"deployment/{self.deployment}", "-n", self.namespace,
                             f"--timeout={timeout}", timeout=330)

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--namespace", self.namespace, "--wait")

    def pods(self, terminating: bool = False) -> list[dict[str, Any]]:
        """The release's pods, without those being deleted unless ``terminating``."""
        listed = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l",
                                      f"app.kubernetes.io/instance={self.name}", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(listed)["items"]
        return [pod for pod in items if terminating or not pod["metadata"].get("deletionTimestamp")]

    def ready_pods(self) -> list[str]:
        return [pod["metadata"]["name"] for pod in self.pods() if is_ready(pod)]

    def scale(self, replicas: int) -> None:
        self.cluster.kubectl("scale", f"deployment/{self.deployment}", "-n", self.namespace,
                             f"--replicas={replicas}")

    def active_peer(self) -> str | None:
        """The pod whose Kopf peering priority is highest: the one that audits (the others stand by)."""
        peering = json.loads(self.cluster.kubectl("get", "clusterkopfpeering", self.name, "-o", "json",
                                                  check=False).stdout or "{}")
        peers: dict[str, Any] = peering.get("status") or {}
        live = set(self.ready_pods())
        ranked = sorted(((info.get("priority", 0), identity) for identity, info in peers.items()
                         if isinstance(info, dict) and identity in live), reverse=True)
        return ranked[0][1] if ranked else None


def is_ready(pod: dict[str, Any]) -> bool:
    conditions: Sequence[dict[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
