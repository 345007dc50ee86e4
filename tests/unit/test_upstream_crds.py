"""Issue 13, item 1: the upstream CRDs are pinned, one file per CRD, and a file that does not define the
CRD it should (upstream moved or renamed it) is refused with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.envtest import binaries, upstream_crds
from readiness.envtest.binaries import BinaryError


def test_every_crd_the_operator_or_the_chart_writes_to_is_pinned() -> None:
    names = {crd.name for crd in upstream_crds.ALL_CRDS}
    assert names == {"prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com",
                     "policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io",
                     "rollouts.argoproj.io"}
    pins = {binaries.PROMETHEUS_OPERATOR_VERSION, binaries.KYVERNO_VERSION, binaries.ARGO_ROLLOUTS_VERSION}
    assert all(crd.version in pins and crd.version.startswith("v") for crd in upstream_crds.ALL_CRDS)
    assert len({crd.cached_path for crd in upstream_crds.ALL_CRDS}) == len(upstream_crds.ALL_CRDS)


def test_the_cache_lives_beside_the_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = f"rollouts.argoproj.io@{binaries.ARGO_ROLLOUTS_VERSION}.yaml"
    assert upstream_crds.ROLLOUT.cached_path == tmp_path / "readiness-operator" / "crds" / expected


def test_a_file_defining_another_crd_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = tmp_path / "moved.yaml"
    source.write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                      "metadata: {name: analysisruns.argoproj.io}\n")
    upstream_crds.crds_dir().mkdir(parents=True)
    with pytest.raises(BinaryError, match=r"defines \['analysisruns.argoproj.io'\], not \['rollouts"):
        upstream_crds._copy_checked(upstream_crds.ROLLOUT, source)
    assert not upstream_crds.ROLLOUT.cached_path.exists()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BinaryError, match=r"has no manifests/crds/rollout-crd\.yaml"):
        upstream_crds._copy_checked(upstream_crds.ROLLOUT, tmp_path / "absent.yaml")
