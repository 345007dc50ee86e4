"""Validation parity: the CLI's policy loader and the real API server (our CRD, `kubectl create
--validate=strict`, kubectl's own default for apply) accept and reject the same ReadinessPolicy documents.

The corpus is tests/fixtures/policies (see support.policy_corpus). Each document goes to the server as a
server-side dry-run create; one the dry run accepts is then really created (and deleted), because only
a real write meets etcd's size limit. Every disagreement is listed in one failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.cli import UsageError, read_policies
from readiness.envtest import ControlPlane, Kubectl
from support.policy_corpus import Case, generated_cases, stored_cases

pytestmark = pytest.mark.cluster


def server_accepts(kubectl: Kubectl, path: Path) -> tuple[bool, str]:
    dry_run = kubectl("create", "--dry-run=server", "--validate=strict", "-f", str(path), check=False)
    if dry_run.returncode != 0:
        return False, dry_run.stderr.strip()
    created = kubectl("create", "--validate=strict", "-f", str(path), "-o", "name", check=False)
    if created.returncode != 0:
        return False, created.stderr.strip()
    kubectl("delete", created.stdout.strip(), "--wait=false", check=False)
    return True, ""


def cli_accepts(path: Path) -> tuple[bool, str]:
    try:
        read_policies(str(path))
    except UsageError as error:
        return False, str(error)
    return True, ""


def test_cli_and_api_server_accept_and_reject_the_same_policies(
        operator_cluster: ControlPlane, tmp_path: Path) -> None:
    cases: list[Case] = stored_cases() + generated_cases(tmp_path)
    assert sum(c.valid for c in cases) >= 10 and sum(not c.valid for c in cases) >= 60
    disagreements = []
    for case in cases:
        server, server_says = server_accepts(operator_cluster.kubectl, case.path)
        cli, cli_says = cli_accepts(case.path)
        if server != cli or cli != case.valid:
            disagreements.append(f"{case.id}: expected {'accept' if case.valid else 'reject'}, "
                                 f"server {'accepts' if server else 'rejects'} ({server_says[:300]}), "
                                 f"CLI {'accepts' if cli else 'rejects'} ({cli_says[:300]})")
    assert not disagreements, "\n".join(disagreements)
