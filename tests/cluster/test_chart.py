"""The Helm chart: helm (built from its Go module) lints and renders it, the real API server accepts the
rendered manifests (server-side dry run), deploy/ is in sync, and the operator passes its own strictest
policy."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from readiness.envtest import ControlPlane, Kubectl, binaries, wait_established

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "readiness-operator"
READINESS = Path(sys.executable).parent / "readiness"

# cert-manager is not part of the local control plane: these stand-ins only register its two kinds so that
# the API server can dry-run the rest of deploy/ (it cannot judge the Certificate's own fields).
CERT_MANAGER_STAND_INS = "\n---\n".join(
    f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.cert-manager.io}}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {kind_lower}}}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}"""
    for kind, plural, kind_lower in (("Certificate", "certificates", "certificate"),
                                     ("Issuer", "issuers", "issuer"))
)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """helm as binaries.py builds it, with helm's release ldflags: its default Kubernetes version is its
    client-go's (1.37), so `helm template` and `helm lint` need no --kube-version."""
    result = subprocess.run([str(binaries.helm()), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def template(namespace: str = "readiness-system", *sets: str) -> str:
    flags = [item for s in sets for item in ("--set", s)]
    return helm("template", "readiness-operator", str(CHART), "--namespace", namespace, *flags).stdout


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> None:
    for path in sorted((CHART / "crds").glob("*.yaml")):
        control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    wait_established(control_plane.kubectl, "readinesspolicies.readiness.dev", "clusterkopfpeerings.kopf.dev")


@pytest.fixture
def release_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_helm_lint() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


def test_values_schema_rejects_bad_values() -> None:
    bad = helm("template", "x", str(CHART), "--set", "webhook.failurePolicy=Sometimes", check=False)
    assert bad.returncode != 0 and "failurePolicy" in bad.stderr
    latest = helm("template", "x", str(CHART), "--set", "image.tag=latest", check=False)
    assert latest.returncode != 0


def test_deploy_is_rendered_from_the_chart() -> None:
    env = {"PATH": "/usr/bin:/bin", "HELM": str(binaries.helm()), "PYTHON": sys.executable}
    result = subprocess.run([str(REPO / "hack" / "render-deploy.sh"), "--check"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, f"stale deploy/: hack/render-deploy.sh\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("values", [
    ("webhook.tls.mode=helm",),
    # managed=true needs a certificate that stays (cert-manager or your own): the schema refuses helm mode.
    ("webhook.tls.mode=existingSecret", "webhook.managed=true", "examplePolicies.enabled=true",
     "operator.kinds={Deployment,StatefulSet,DaemonSet,Job,CronJob}"),
    ("webhook.enabled=false", "replicaCount=1", "podDisruptionBudget.enabled=false"),
], ids=["helm-tls", "managed-examples", "no-webhook"])
def test_rendered_chart_passes_a_server_side_dry_run(crds: None, kubectl: Kubectl, release_namespace: str,
                                                     values: tuple[str, ...]) -> None:
    rendered = template(release_namespace, *values)
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert result.returncode == 0, result.stderr


def test_deploy_directory_passes_a_server_side_dry_run(crds: None, kubectl: Kubectl) -> None:
    """docs/install.md's manifests path: cert-manager, then `kubectl apply --server-side -f deploy/crds/`
    (the `crds` fixture), then `kubectl apply -f deploy/`. A dry run persists nothing, so the namespace
    that 00-namespace.yaml would create first is created for real (it is also the operator tests')."""
    real_cert_manager = kubectl("get", "crd", "certificates.cert-manager.io", "--ignore-not-found",
                                "-o", "name").stdout.strip()
    if not real_cert_manager:  # never overwrite a real cert-manager's CRDs (kind: make kind-up)
        kubectl("apply", "--server-side", "-f", "-", input=CERT_MANAGER_STAND_INS)
    wait_established(kubectl, "certificates.cert-manager.io", "issuers.cert-manager.io")
    kubectl("apply", "-f", str(REPO / "deploy" / "00-namespace.yaml"))
    result = kubectl("apply", "--dry-run=server", "-f", str(REPO / "deploy"), check=False)
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/readiness-operator created (server dry run)" in result.stdout, result.stdout


def _strict_without_namespace_selector(tmp_path: Path) -> Path:
    """strict.yaml judges only namespaces labelled readiness.dev/profile=strict; a copy without that
    selector makes sure the audit really judged the operator's own workload."""
    policy = yaml.safe_load((REPO / "examples" / "policies" / "strict.yaml").read_text())
    del policy["spec"]["match"]["namespaceSelector"]
    policy["metadata"]["name"] = "strict-everywhere"
    path = tmp_path / "strict-everywhere.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def audit(rendered: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(READINESS), "audit", "--no-color", "-f", "-", *args], input=rendered,
                          capture_output=True, text=True, timeout=120)


def test_the_operator_passes_its_strictest_policy(tmp_path: Path) -> None:
    rendered = template()
    strict = REPO / "examples" / "policies" / "strict.yaml"
    result = audit(rendered, "--policy", str(strict))
    assert result.returncode == 0, result.stdout + result.stderr
    everywhere = audit(rendered, "--policy", str(_strict_without_namespace_selector(tmp_path)),
                       "-o", "json")
    assert everywhere.returncode == 0, everywhere.stdout + everywhere.stderr
    assert '"Deployment"' in everywhere.stdout  # the operator's workload was judged, not skipped
    # Pinned by digest, as production installs should be, not even a warning remains.
    pinned = template("readiness-system", "image.digest=sha256:" + "0" * 64)
    strictest = audit(pinned, "--policy", str(_strict_without_namespace_selector(tmp_path)),
                      "--fail-on", "warning")
    assert strictest.returncode == 0, strictest.stdout + strictest.stderr
