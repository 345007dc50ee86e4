"""The ecosystem's CRDs the operator writes to, fetched pinned from the Go modules that publish them.

PrometheusRule and ServiceMonitor (prometheus-operator), PolicyReport and ClusterPolicyReport (the Policy
WG's ``wgpolicyk8s.io/v1alpha2``, as Kyverno ships them) and Argo Rollouts' Rollout. Nothing is copied
into the repository: ``go mod download -json MODULE@VERSION`` puts the module in the Go module cache, and
the CRD's file is copied from there into ``${XDG_CACHE_HOME:-~/.cache}/readiness-operator/crds/`` under
its module version, so a warm run asks nothing of the network. The versions are pinned in
``readiness.envtest.binaries`` beside the binaries'. ``python -m readiness.envtest crds`` fetches them and
prints ``name path`` lines.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from readiness.envtest.binaries import (
    ARGO_ROLLOUTS_VERSION,
    KYVERNO_VERSION,
    PROMETHEUS_OPERATOR_VERSION,
    BinaryError,
    cache_root,
)
from readiness.envtest.controlplane import Kubectl
from readiness.envtest.crds import wait_established

_DOWNLOAD_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class UpstreamCrd:
    """One CRD: its name, and the file in the Go module (at a pinned version) that defines it."""

    name: str
    """``plural.group``, as ``kubectl get crd`` lists it."""
    module: str
    version: str
    path: str
    """The CRD's YAML file inside the module."""

    @property
    def cached_path(self) -> Path:
        return crds_dir() / f"{self.name}@{self.version}.yaml"


_PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
_PROMETHEUS_CRDS = "example/prometheus-operator-crd"
_KYVERNO = "github.com/kyverno/kyverno"
_KYVERNO_CRDS = "config/crds/policyreport"

PROMETHEUS_RULE = UpstreamCrd("prometheusrules.monitoring.coreos.com", _PROMETHEUS_OPERATOR,
                              PROMETHEUS_OPERATOR_VERSION,
                              f"{_PROMETHEUS_CRDS}/monitoring.coreos.com_prometheusrules.yaml")
SERVICE_MONITOR = UpstreamCrd("servicemonitors.monitoring.coreos.com", _PROMETHEUS_OPERATOR,
                              PROMETHEUS_OPERATOR_VERSION,
                              f"{_PROMETHEUS_CRDS}/monitoring.coreos.com_servicemonitors.yaml")
POLICY_REPORT = UpstreamCrd("policyreports.wgpolicyk8s.io", _KYVERNO, KYVERNO_VERSION,
                            f"{_KYVERNO_CRDS}/wgpolicyk8s.io_policyreports.yaml")
CLUSTER_POLICY_REPORT = UpstreamCrd("clusterpolicyreports.wgpolicyk8s.io", _KYVERNO, KYVERNO_VERSION,
                                    f"{_KYVERNO_CRDS}/wgpolicyk8s.io_clusterpolicyreports.yaml")
ROLLOUT = UpstreamCrd("rollouts.argoproj.io", "github.com/argoproj/argo-rollouts", ARGO_ROLLOUTS_VERSION,
                      "manifests/crds/rollout-crd.yaml")
POLICY_REPORTS = (POLICY_REPORT, CLUSTER_POLICY_REPORT)
ALL_CRDS = (PROMETHEUS_RULE, SERVICE_MONITOR, POLICY_REPORT, CLUSTER_POLICY_REPORT, ROLLOUT)
"""What a cluster with kube-prometheus-stack, Policy Reporter (or Kyverno) and Argo Rollouts has."""


def crds_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/readiness-operator/crds``."""
    return cache_root() / "crds"


def ensure(crds: Iterable[UpstreamCrd] = ALL_CRDS, progress: TextIO | None = None) -> dict[str, Path]:
    """The cached YAML file of each CRD, by CRD name, fetching what is missing (one download per module)."""
    wanted = list(crds)
    missing = [crd for crd in wanted if not crd.cached_path.is_file()]
    if missing:
        with _fetch_lock():
            _fetch([crd for crd in missing if not crd.cached_path.is_file()], progress or sys.stderr)
    return {crd.name: crd.cached_path for crd in wanted}


def install(kubectl: Kubectl, *crds: UpstreamCrd) -> None:
    """Apply the CRDs (server-side: the Rollout CRD is too large for client-side apply's annotation) and
    wait until they are served."""
    for crd in crds:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ensure([crd])[crd.name]))
    wait_established(kubectl, *(crd.name for crd in crds))


@contextmanager
def _fetch_lock() -> Iterator[None]:
    """Serialise fetches across processes (two test runs starting at once)."""
    crds_dir().mkdir(parents=True, exist_ok=True)
    with open(crds_dir() / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _fetch(crds: list[UpstreamCrd], out: TextIO) -> None:
    for module, version in dict.fromkeys((crd.module, crd.version) for crd in crds):
        print(f"==> fetching CRDs from {module}@{version} (Go module proxy)", file=out, flush=True)
        module_dir = _module_dir(module, version)
        for crd in crds:
            if (crd.module, crd.version) == (module, version):
                _copy_checked(crd, module_dir / crd.path)


def _module_dir(module: str, version: str) -> Path:
    """The module's directory in the Go module cache, downloading it when absent."""
    go = shutil.which("go")
    if go is None:
        raise BinaryError(f"`go` is not on PATH: it fetches the upstream CRDs ({module}@{version})")
    # Run outside any go.mod (the cache directory): a module's own requirements must not interfere.
    try:
        result = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=crds_dir(),
                                capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise BinaryError(f"go mod download {module}@{version}: no answer in {error.timeout:.0f}s") from None
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    directory = info.get("Dir")
    if not directory or not Path(directory).is_dir():
        detail = info.get("Error") or result.stderr.strip() or f"exit {result.returncode}"
        raise BinaryError(f"go mod download {module}@{version} failed: {detail}")
    return Path(directory)


def _copy_checked(crd: UpstreamCrd, source: Path) -> None:
    """Copy the file into the cache after checking it defines ``crd.name`` (a moved file fails here)."""
    if not source.is_file():
        raise BinaryError(f"{crd.module}@{crd.version} has no {crd.path}")
    documents = [doc for doc in yaml.safe_load_all(source.read_text()) if doc]
    names = [doc.get("metadata", {}).get("name") for doc in documents if doc.get("kind") ==
             "CustomResourceDefinition"]
    if names != [crd.name]:
        raise BinaryError(f"{crd.module}@{crd.version}/{crd.path} defines {names}, not [{crd.name!r}]")
    staging = crd.cached_path.with_suffix(".tmp")
    shutil.copyfile(source, staging)
    os.replace(staging, crd.cached_path)

