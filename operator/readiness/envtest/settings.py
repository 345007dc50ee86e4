"""Settings of the local control plane; every field documents its default and the trade-off."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

USE_EXISTING_CLUSTER_ENV = "READINESS_USE_EXISTING_CLUSTER"


@dataclass(frozen=True)
class ControlPlaneSettings:
    use_existing_cluster: bool = False
    """False: start etcd, kube-apiserver and kube-controller-manager locally. True: start nothing and use
    the cluster of the current ``KUBECONFIG`` (``READINESS_USE_EXISTING_CLUSTER=1`` or pytest
    ``--use-existing-cluster``); helpers that need our own CA (``kubeconfig_for_user``) then refuse."""

    run_dir: Path | None = None
    """Where certificates, kubeconfigs, etcd data and process logs go. None: a fresh temporary directory,
    deleted on stop. A given directory is kept, but its etcd data is wiped at start (state is never
    reused: it would hold objects signed by an older CA)."""

    keep_run_dir: bool = False
    """False: delete the temporary run directory on stop. True keeps logs for a post-mortem, at the cost
    of a few MB in /tmp per run."""

    start_timeout: float = 90.0
    """Seconds to wait for etcd, then kube-apiserver ``/readyz``, then kube-controller-manager. A warm
    start takes a few seconds; the margin covers a loaded 2-core CI machine."""

    stop_timeout: float = 10.0
    """Seconds each process gets to exit after SIGTERM before its process group is SIGKILLed."""

    service_cluster_ip_range: str = "10.0.0.0/24"
    """Required by kube-apiserver; nothing ever sends traffic to it, so any private range works."""

    controllers: tuple[str, ...] = (
        "namespace-controller", "garbage-collector-controller", "serviceaccount-controller",
        "clusterrole-aggregation-controller",
    )
    """kube-controller-manager controllers. namespace: deleted namespaces go away instead of staying
    Terminating. garbage-collector: ownerReferences cascade. serviceaccount: each namespace gets its
    ``default`` ServiceAccount. clusterrole-aggregation: fills the aggregated ``view``/``edit``/``admin``
    ClusterRoles (empty without it). Workload controllers are left out: without nodes they only add
    noise."""

    with_controller_manager: bool = True
    """False skips kube-controller-manager (about 1 s faster to start), leaving namespaces Terminating
    forever and owned objects uncollected."""

    wait_for_controller_manager: bool = True
    """True: start() also waits for visible proof that the controllers run (the ``default/default``
    ServiceAccount exists, ``view`` has rules): about 0.5 s, and tests never race the startup."""

    etcd_flags: tuple[str, ...] = ()
    """Extra etcd flags, appended last so they override ours."""

    apiserver_flags: tuple[str, ...] = ()
    """Extra kube-apiserver flags, appended last (e.g. ``--feature-gates=...``, ``--v=4``)."""

    controller_manager_flags: tuple[str, ...] = ()
    """Extra kube-controller-manager flags, appended last."""

    @classmethod
    def from_env(cls, **overrides: Any) -> ControlPlaneSettings:
        """Defaults, with ``READINESS_USE_EXISTING_CLUSTER`` honoured, then ``overrides``."""
        existing = os.environ.get(USE_EXISTING_CLUSTER_ENV, "").lower() in {"1", "true", "yes"}
        return replace(cls(use_existing_cluster=existing), **overrides)
