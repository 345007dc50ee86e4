"""A real, local Kubernetes control plane for tests and the demo, built from the Go module proxy."""

from readiness.envtest.binaries import BinaryError, ensure_all
from readiness.envtest.controlplane import ControlPlane, ControlPlaneError, Kubectl, KubectlError
from readiness.envtest.crds import wait_established
from readiness.envtest.settings import ControlPlaneSettings

__all__ = [
    "BinaryError",
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneSettings",
    "Kubectl",
    "KubectlError",
    "ensure_all",
    "wait_established",
]
