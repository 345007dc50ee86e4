"""The chart refuses values that would render something broken (issue 13, item 13): its schema, its
render-time failure for a webhook that could never be called, the `helm test` pod and the README that
`helm show readme` prints. Rendered by the real helm, as binaries.py builds it (no cluster needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.envtest import binaries

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "readiness-operator"
CA_BUNDLE = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binaries.helm()), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def template(*sets: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    flags = [item for s in sets for item in ("--set", s)]
    return helm("template", "x", str(CHART), "--namespace", "readiness-system", *flags, *extra)


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize(("values", "where"), [
    (("imagePullSecrets=regcred",), "/imagePullSecrets"),
    (("imagePullSecrets[0]=regcred",), "/imagePullSecrets/0"),
    (("service.port=443",), "/service"),
    (("service.annotations.a=b",), "/service"),
    (("webhook.managed=true", "webhook.tls.mode=helm"), "/webhook/tls/mode"),
    (("podDisruptionBudget.maxUnavailable=-1",), "/podDisruptionBudget/maxUnavailable"),
    (("podDisruptionBudget.maxUnavailable=0",), "/podDisruptionBudget/maxUnavailable"),
    (("podDisruptionBudget.maxUnavailable=half",), "/podDisruptionBudget/maxUnavailable"),
    (("resources.requests.memory=lots",), "/resources/requests/memory"),
    (("resources.limits.cpu=-1",), "/resources/limits/cpu"),
    (("resources.limit.memory=1Gi",), "/resources"),
    (("webhook.tls.caBundle=not base64!",), "/webhook/tls/caBundle"),
], ids=lambda value: value if isinstance(value, str) else ",".join(value))
def test_the_schema_rejects(values: tuple[str, ...], where: str) -> None:
    result = template(*values)
    assert result.returncode != 0, result.stdout[:200]
    assert "don't meet the specifications of the schema" in result.stderr
    assert f"at '{where}'" in result.stderr, result.stderr


@pytest.mark.parametrize("values", [
    ("imagePullSecrets[0].name=regcred",),
    ("podDisruptionBudget.maxUnavailable=2",),
    ("podDisruptionBudget.maxUnavailable=50%",),
    ("resources.requests.memory=1.5Gi", "resources.requests.cpu=250m", "resources.limits.memory=1e9"),
    ("service.type=NodePort",),
    ("webhook.managed=true", "webhook.tls.mode=certManager"),
    ("webhook.managed=true", "webhook.tls.mode=existingSecret"),  # the operator reads ca.crt itself
    ("webhook.tls.mode=existingSecret", f"webhook.tls.caBundle={CA_BUNDLE}"),
    ("webhook.tls.mode=existingSecret", "webhook.enabled=false"),
], ids=",".join)
def test_the_schema_accepts(values: tuple[str, ...]) -> None:
    result = template(*values)
    assert result.returncode == 0, result.stderr


def test_image_pull_secrets_render_as_references() -> None:
    rendered = documents(template("imagePullSecrets[0].name=regcred").stdout)
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_existing_secret_without_a_ca_bundle_fails_at_render_time() -> None:
    result = template("webhook.tls.mode=existingSecret")
    assert result.returncode != 0
    assert "webhook.tls.caBundle is required with webhook.tls.mode=existingSecret" in result.stderr
    assert "never calls it" in result.stderr


def test_existing_secret_puts_the_ca_bundle_in_the_webhook() -> None:
    rendered = documents(template("webhook.tls.mode=existingSecret", f"webhook.tls.caBundle={CA_BUNDLE}",
                                  "webhook.tls.secretName=mine").stdout)
    (config,) = [d for d in rendered if d["kind"] == "ValidatingWebhookConfiguration"]
    assert config["webhooks"][0]["clientConfig"]["caBundle"] == CA_BUNDLE
    assert not [d for d in rendered if d["kind"] in ("Secret", "Certificate")]


def test_helm_knows_the_kubernetes_version_without_a_flag() -> None:
    """The chart's kubeVersion (>=1.30) passes without --kube-version: helm is built with its release
    ldflags (chartutil.k8sVersionMajor/Minor from its client-go), not the v1.20 default."""
    rendered = template()
    assert rendered.returncode == 0, rendered.stderr
    lint = helm("lint", "--strict", str(CHART))
    assert lint.returncode == 0 and "0 chart(s) failed" in lint.stdout, lint.stdout + lint.stderr


def test_the_helm_build_carries_the_kubernetes_version_ldflags() -> None:
    version = binaries.client_go_version(binaries.MODULES_DIR / "helm" / "go.mod")
    assert version is not None and version >= (1, 30)
    for package in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        assert f"-X {package}.k8sVersionMajor={version[0]}" in binaries.HELM.ldflags
        assert f"-X {package}.k8sVersionMinor={version[1]}" in binaries.HELM.ldflags
    # A build with other flags lives at another cache path, so the old binary is never picked up.
    assert binaries.HELM.cached_path.parent.name == f"helm-{binaries.HELM_VERSION}-{binaries.HELM.build}"


def test_helm_test_pod_scrapes_the_metrics_service() -> None:
    rendered = documents(template().stdout)
    (pod,) = [d for d in rendered if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "ghcr.io/readiness-operator/readiness-operator:0.1.0"
    script = container["args"][0]
    assert '"X_READINESS_OPERATOR_SERVICE_HOST"' in script  # the kubelet's Service variable: no DNS needed
    assert '"x-readiness-operator.readiness-system.svc"' in script and ":8080/metrics" in script
    compile(script, "test-metrics", "exec")  # the script is valid Python
    # Not selected by the operator's Service or PodDisruptionBudget (their selector is name + instance).
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] != "readiness-operator"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["restartPolicy"] == "Never"
    skipped = documents(template(extra=("--skip-tests",)).stdout)
    assert not [d for d in skipped if d["kind"] == "Pod"]


def test_deploy_has_no_test_pod() -> None:
    rendered = (REPO / "deploy" / "readiness-operator.yaml").read_text()
    assert "helm.sh/hook: test" not in rendered


def _value_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        nested = isinstance(value, dict) and value and key not in (
            "resources", "podSecurityContext", "securityContext", "labels")
        paths += _value_paths(value, f"{path}.") if nested else [path]
    return paths


def test_helm_show_readme_documents_every_value() -> None:
    readme = helm("show", "readme", str(CHART))
    assert readme.returncode == 0, readme.stderr
    text = readme.stdout
    table = [line for line in text.splitlines() if line.startswith("| `")]
    names = " ".join(line.split(" | ")[0] for line in table)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in _value_paths(values):
        parent, _, leaf = path.rpartition(".")
        assert f"`{path}`" in names or (parent and f".{leaf}`" in names and f"`{parent}." in names), path


def test_the_readme_says_that_metrics_need_the_service_monitor_and_its_release_label() -> None:
    text = (CHART / "README.md").read_text()
    assert "metrics.serviceMonitor.labels.release=" in text
    assert "never scrapes" in text and "release: <its Helm release name>" in text
    assert "helm test" in text and "readiness cleanup" in text
