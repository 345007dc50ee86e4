"""The local control plane the operator and webhook benchmarks run against, with our CRD installed."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from readiness.envtest import ControlPlane, ControlPlaneSettings, wait_established  # noqa: E402


@contextmanager
def policy_control_plane(use_existing_cluster: bool) -> Iterator[ControlPlane]:
    """A started control plane with the ReadinessPolicy CRD established and `readiness-system` created;
    stopped on exit, also on SIGTERM (`kill` or `timeout` must not leave it running)."""
    plane = ControlPlane(ControlPlaneSettings.from_env(use_existing_cluster=use_existing_cluster))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # exits through the `finally` below
    plane.start()
    try:
        crd = str(ROOT / "crds" / "readinesspolicies.yaml")
        plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", crd)
        wait_established(plane.kubectl, "readinesspolicies.readiness.dev")
        plane.kubectl("create", "namespace", "readiness-system", check=False)
        yield plane
    finally:
        plane.stop()
