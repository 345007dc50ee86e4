"""`helm test` on the real node (issue 13, item 13): the chart's test pod, run from the operator's own
image, scrapes the operator's metrics through its Service and passes against the installed release."""

from __future__ import annotations

import pytest

from readiness.envtest.release import Release

pytestmark = [pytest.mark.cluster, pytest.mark.node]


def test_helm_test_passes_against_the_release(release: Release) -> None:
    # No --logs: the pod is deleted once it passes (hook-succeeded), and helm's --logs then fails to find
    # it (helm/helm#9098); a failed pod is kept for `kubectl logs`.
    result = release.helm("test", release.name, "--namespace", release.namespace, "--timeout=3m",
                          timeout=240)
    assert "Phase:          Succeeded" in result.stdout, result.stdout
    # hook-succeeded: the pod is gone after a pass, so the namespace holds only the operator's pods.
    pods = release.cluster.kubectl("get", "pods", "-n", release.namespace, "-o", "name").stdout
    assert "test-metrics" not in pods
