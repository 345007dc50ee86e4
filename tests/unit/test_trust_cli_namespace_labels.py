"""Issue 11, item 2: a policy's namespaceSelector offline. `readiness audit` run as users run it (a real
subprocess) on the real examples: labels from --namespace-labels or Namespace objects, unknown labels
assumed to match and said so in every format, and "nothing was judged" never a silent pass."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIOLATING = ROOT / "examples" / "workloads" / "non-compliant"
PRODUCTION = ROOT / "examples" / "policies" / "production.yaml"
README_CI_EXAMPLE = ("audit", "-f", "examples/workloads/non-compliant", "--policy",
                     "examples/policies/production.yaml")
NAMESPACES = ("shop", "search", "billing", "monitoring", "payments")
"""The namespaces of the non-compliant examples."""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "readiness.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


def labelled(**labels: str) -> list[str]:
    """--namespace-labels for every example namespace: `labels[ns]` ('' for none)."""
    return [arg for ns in NAMESPACES for arg in ("--namespace-labels", f"{ns}:{labels.get(ns, '')}")]


def test_readme_ci_example_judges_and_says_it_assumed_the_labels() -> None:
    text = run(*README_CI_EXAMPLE)
    assert text.returncode == 1, text  # the examples violate the policy: the gate fails
    assert "(0 judgements)" not in text.stdout
    assert "namespace shop: labels unknown" in text.stdout
    assert "assumed to match the namespaceSelector of policy production" in text.stdout

    data = json.loads(run(*README_CI_EXAMPLE, "-o", "json").stdout)
    assert data["summary"]["workloads"] == 6 and data["summary"]["judgements"] > 0
    assert not data["summary"]["nothingJudged"]
    assert any(n.startswith("namespace shop: labels unknown") and "policy production" in n
               for n in data["notices"])

    sarif = run(*README_CI_EXAMPLE, "-o", "sarif")
    assert "namespace shop: labels unknown" in sarif.stderr  # stdout is a file in CI: the log says it
    invocation = json.loads(sarif.stdout)["runs"][0]["invocations"][0]
    said = [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
    assert any(t.startswith("namespace shop: labels unknown") and "assumed" in t for t in said)

    junit = ET.fromstring(run(*README_CI_EXAMPLE, "-o", "junit").stdout)
    suite = junit.find("testsuite[@name='production']")
    assert suite is not None and int(suite.get("tests", "0")) > 0
    out = suite.findtext("system-out") or ""
    assert "namespace shop: labels unknown" in out and "assumed to match" in out


def test_namespace_labels_flag_decides_the_match() -> None:
    data = json.loads(run(*README_CI_EXAMPLE, *labelled(shop="env=prod,tier=web"), "-o", "json").stdout)
    assert {w["namespace"] for w in data["workloads"]} == {"shop"}
    assert data["notices"] == []  # every namespace's labels are known: nothing assumed
    assert data["summary"]["unmatched"] == 4  # the other namespaces' (one a CronJob, not a kind it matches)


def test_namespace_objects_in_the_input_still_count(tmp_path: Path) -> None:
    manifests = tmp_path / "in.yaml"
    namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}, labels: {{env: dev}}}}\n"
    namespaces = "".join(namespace.format(ns) for ns in NAMESPACES if ns != "payments")
    examples = "".join(f"---\n{p.read_text()}" for p in sorted(VIOLATING.glob("*.yaml")))
    manifests.write_text(namespaces + examples)
    data = json.loads(run("audit", "-f", str(manifests), "-p", str(PRODUCTION), "-o", "json",
                          "--namespace-labels", "payments:env=prod").stdout)
    assert {w["namespace"] for w in data["workloads"]} == {"payments"}
    assert data["notices"] == []
    policy = tmp_path / "by-name.yaml"
    policy.write_text(PRODUCTION.read_text().replace("matchLabels: {env: prod}",
                                                     "matchLabels: {kubernetes.io/metadata.name: shop}"))
    by_name = json.loads(run("audit", "-f", str(manifests), "-p", str(policy), "-o", "json").stdout)
    assert {w["namespace"] for w in by_name["workloads"]} == {"shop", "payments"}  # payments: assumed
    assert [n.split(":")[0] for n in by_name["notices"]] == ["namespace payments"]


def test_nothing_judged_is_never_a_silent_pass() -> None:
    nowhere = (*README_CI_EXAMPLE, *labelled(shop="env=dev"))
    text = run(*nowhere)
    assert text.returncode == 3, text
    assert "nothing was judged: no policy (production) matched any of the 7 workload(s)" in text.stdout
    data = json.loads(run(*nowhere, "-o", "json").stdout)
    assert data["summary"]["nothingJudged"] and data["notices"][-1].startswith("nothing was judged: ")
    sarif = run(*nowhere, "-o", "sarif")
    assert sarif.returncode == 3 and "readiness: nothing was judged: " in sarif.stderr
    invocation = json.loads(sarif.stdout)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert any(n["level"] == "error" and n["message"]["text"].startswith("nothing was judged")
               for n in invocation["toolExecutionNotifications"])
    junit = run(*nowhere, "-o", "junit")
    assert junit.returncode == 3
    assert ET.fromstring(junit.stdout).find(".//testcase[@name='nothing was judged']/error") is not None
    # --fail-on is about findings; only --allow-empty accepts an empty audit, and it still says so
    assert run(*nowhere, "--fail-on", "never").returncode == 3
    allowed = run(*nowhere, "--allow-empty")
    assert allowed.returncode == 0 and "nothing was judged: " in allowed.stdout
    skipped = ET.fromstring(run(*nowhere, "--allow-empty", "-o", "junit").stdout)
    assert skipped.find(".//testcase[@name='nothing was judged']/skipped") is not None


def test_no_workload_at_all_is_nothing_judged(tmp_path: Path) -> None:
    service = tmp_path / "svc.yaml"
    service.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
    result = run("audit", "-f", str(service))
    assert result.returncode == 3
    assert "nothing was judged: the input holds no workload (1 other object(s) skipped)" in result.stdout


def test_bad_namespace_labels_are_one_line_errors() -> None:
    for bad in ("shop", "Shop:env=prod", "shop:env", "shop:env=prod,=x", "shop:env=has space"):
        result = run(*README_CI_EXAMPLE, "--namespace-labels", bad)
        assert result.returncode == 2, (bad, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "--namespace-labels" in lines[0] and "Traceback" not in result.stderr
